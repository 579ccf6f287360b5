"""The security of an operation: its requirement, its 401/403 answers, and the schemes."""

from __future__ import annotations

from typing import Any

from kit.openapi.schemas import HTTPError, SchemaSet
from kit.routing import APIRoute
from kit.security.base import SecurityScheme
from kit.security.scopes import requirements_of


class SecuritySchemes:
    """``components.securitySchemes``, gathered from the operations; a name means one scheme."""

    def __init__(self) -> None:
        self.schemes: dict[str, SecurityScheme] = {}

    def name(self, scheme: SecurityScheme) -> str:
        name = scheme.scheme_name
        known = self.schemes.setdefault(name, scheme)
        if known is not scheme and known.document() != scheme.document():
            raise TypeError(f"two different security schemes are named {name!r}")
        return name

    def resolve(self) -> dict[str, Any]:
        return {name: scheme.document() for name, scheme in sorted(self.schemes.items())}


def describe_security(
    route: APIRoute, operation: dict[str, Any], schemes: SecuritySchemes, schemas: SchemaSet
) -> None:
    """Add ``security`` and the 401 answer to ``operation`` if the route has requirements, and
    the 403 answer if one of them needs scopes (an API key or a scope-less token cannot fail so).

    Every requirement must be met, so they form one requirement object; one scheme asked for
    several times needs the union of the scopes.
    """
    requirements = requirements_of(route.plan)
    if not requirements:
        return
    needed: dict[str, set[str]] = {}
    for requirement in requirements:
        needed.setdefault(schemes.name(requirement.scheme), set()).update(requirement.scopes)
    operation["security"] = [{name: sorted(scopes) for name, scopes in needed.items()}]
    responses = operation["responses"]
    content = {"application/json": {"schema": schemas.slot(HTTPError)}}
    responses.setdefault("401", {"description": "Not authenticated", "content": content})
    if any(requirement.scopes for requirement in requirements):  # only a missing scope is 403
        responses.setdefault("403", {"description": "Not permitted", "content": content})
    operation["responses"] = dict(sorted(responses.items()))
