"""``Security(scheme, scopes=[...])``: a dependency that authenticates, then checks scopes.

Routes find these in their plan when registered: they run before the body is read (so an
unauthenticated request never learns the body's schema nor costs a decode), and the OpenAPI
document lists them as the operation's ``security`` with 401 and 403 answers.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass
from typing import Any

from kit.di import Dependency, Depends, Plan
from kit.security.base import SecurityScheme

_CHECKS: dict[tuple[int, frozenset[str]], Callable[..., Any]] = {}


@dataclass(frozen=True)
class Requirement:
    scheme: SecurityScheme
    scopes: tuple[str, ...]


class Security(Depends):
    """Provide what ``scheme`` authenticates (claims, a key, credentials), refusing with 401
    without valid credentials and with 403 when they lack one of ``scopes``; run before the
    body is read, wherever it is declared."""

    before_body = True

    def __init__(self, scheme: SecurityScheme, *, scopes: Sequence[str] = ()) -> None:
        if not isinstance(scheme, SecurityScheme):
            raise TypeError(f"Security needs a security scheme, got {scheme!r}")
        if isinstance(scopes, str):
            raise TypeError("scopes must be a list of strings, not one string")
        if scopes and not scheme.has_scopes:
            raise TypeError(f"{scheme!r} carries no scopes; use it without scopes=")
        super().__init__(_check(scheme, tuple(sorted(set(scopes)))))
        self.scheme = scheme
        self.scopes = tuple(scopes)

    def override_keys(self) -> tuple[Any, ...]:
        """``app.dependency_overrides[scheme]`` replaces every ``Security(scheme, ...)``."""
        return (self.dependency, self.scheme)


def _check(scheme: SecurityScheme, scopes: tuple[str, ...]) -> Callable[..., Any]:
    """One function per (scheme, scopes), so a request that meets the same requirement twice
    (a router's dependency and a handler's parameter) authenticates once."""
    key = (id(scheme), frozenset(scopes))
    check = _CHECKS.get(key)
    if check is not None and requirement_of(check) == Requirement(scheme, scopes):
        return check
    check = scheme.checker(frozenset(scopes))
    check.__kit_security__ = Requirement(scheme, scopes)  # type: ignore[attr-defined]
    _CHECKS[key] = check
    return check


def requirement_of(call: Any) -> Requirement | None:
    found = getattr(call, "__kit_security__", None)
    return found if isinstance(found, Requirement) else None


def security_dependencies(plan: Plan) -> Iterator[Dependency]:
    """Every ``Security`` dependency in ``plan`` (guards included), however deep, each once."""
    seen: set[int] = set()
    for step in plan.walk():
        for dep in [*step.guards, *(dep for _, dep in step.dependencies)]:
            if requirement_of(dep.plan.call) is not None and id(dep.plan.call) not in seen:
                seen.add(id(dep.plan.call))
                yield dep


def requirements_of(plan: Plan) -> list[Requirement]:
    return [requirement_of(dep.plan.call) for dep in security_dependencies(plan)]  # type: ignore[misc]
