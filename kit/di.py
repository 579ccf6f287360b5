"""Dependency injection: ``Annotated[T, Depends(provider)]``, compiled into a plan at startup."""

from __future__ import annotations

import functools
import inspect
import typing
from collections.abc import AsyncGenerator, Awaitable, Callable, Generator, Iterator
from dataclasses import dataclass, field
from typing import Any, Literal

from starlette.background import BackgroundTasks
from starlette.concurrency import run_in_threadpool
from starlette.requests import Request
from starlette.responses import Response

from kit.errors import ErrorItem
from kit.params import (
    Extractor,
    Param,
    ParamInfo,
    Special,
    classify,
    source_extractors,
    special_kind,
    unwrap_annotated,
)

DependencyScope = Literal["request", "function"]


class Depends:
    """Marks a parameter as provided by ``dependency``.

    ``scope="request"``: code after ``yield`` runs after the response is sent.
    ``scope="function"``: it runs as soon as the handler returns, before the response is sent
    (transactions use it so that a failed commit still reaches the client).
    """

    # True for dependencies that must run before the body is read wherever they are declared
    # (``kit.security.Security``): a route lifts them into its guards.
    before_body = False

    def __init__(
        self,
        dependency: Callable[..., Any] | None = None,
        *,
        use_cache: bool = True,
        scope: DependencyScope = "request",
    ) -> None:
        if scope not in ("request", "function"):
            raise ValueError(f"Depends scope must be 'request' or 'function', not {scope!r}")
        self.dependency = dependency
        self.use_cache = use_cache
        self.scope = scope

    def override_keys(self) -> tuple[Any, ...]:
        """What ``app.dependency_overrides`` may be keyed by to replace this dependency."""
        return (self.dependency,)

    def __repr__(self) -> str:
        name = getattr(self.dependency, "__name__", repr(self.dependency))
        return f"Depends({name}, scope={self.scope!r})"


# ``app.dependency_overrides``: original provider (or what ``override_keys`` names) → the
# provider used instead. Read when plans are compiled, never per request.
Overrides = typing.Mapping[Any, Callable[..., Any]]


# Opens a request-only resource: its value and what ``Close`` needs to release it.
Open = Callable[[Request], Awaitable[tuple[Any, Any]]]
# Releases it, given that state and the exception in flight (None on success); may raise.
Close = Callable[[Any, BaseException | None], Awaitable[None]]
# An open step of cleanup: a resource's close with its state, or (None, a generator to
# resume), and whether it closes with the function (``scope="function"``).
Exit = tuple[Close | None, Any, bool]


def resource(
    open_: Open, close: Close, *, name: str | None = None
) -> Callable[[Request], AsyncGenerator[Any, None]]:
    """A provider taking only the request, written as two halves instead of a generator:
    ``open_(request)`` gives ``(value, state)``; ``close(state, exc)`` runs where the code
    after a generator's ``yield`` would, with the exception in flight or None.

    What it returns is an ordinary async generator provider (``Depends`` it, call it), but kit
    resolves it with two calls and no generator per request. ``kit.db``'s ``Connection`` and
    ``Transaction`` are written this way: they are on most database requests' path.
    """

    async def provide(request: Request) -> AsyncGenerator[Any, None]:
        value, state = await open_(request)
        try:
            yield value
        except BaseException as exc:
            await close(state, exc)
            raise
        await close(state, None)

    provide.__name__ = provide.__qualname__ = name or str(getattr(open_, "__name__", "resource"))
    provide.__module__ = open_.__module__
    provide.__doc__ = open_.__doc__
    # what it is, on the provider itself: kit calls the two halves directly
    provide.__kit_resource__ = (open_, close)  # type: ignore[attr-defined]
    return provide


def resource_halves(call: Callable[..., Any]) -> tuple[Open, Close] | None:
    """The open and close halves of a provider made by ``resource``, else None."""
    halves = getattr(call, "__kit_resource__", None)
    return halves if isinstance(halves, tuple) else None


class CleanupGroup(list[Exit]):
    """What one request opened (generator dependencies, resources), closed last opened first:
    ``close(None, function_scope_only=True)`` when the handler returns (``scope="function"``),
    ``close(exc)`` for everything still open, once, after the response is sent or when the
    request fails, seeing the exception in flight (Litestar's DependencyCleanupGroup).

    A list of ``Exit`` entries, so that a request pays no call to make one; ``function_scoped``
    says whether any entry closes with the function.
    """

    function_scoped = False

    def add(self, close: Close | None, state: Any, function_scope: bool) -> None:
        self.append((close, state, function_scope))
        if function_scope:
            self.function_scoped = True

    async def close(
        self, exc: BaseException | None, *, function_scope_only: bool = False
    ) -> BaseException | None:
        """Close the entries still open, function-scoped ones first (or only those, if asked),
        each group last opened first; the exception the caller must raise, or None.

        Each sees the exception in flight (a generator at its ``yield``). Swallowing it does
        not turn a failed request into a success: the original exception still decides the
        answer. An exception raised while closing replaces ``exc`` for the entries after it.
        """
        if self.function_scoped:
            self.function_scoped = False
            if not function_scope_only:  # function scope first
                exc = await self.close(exc, function_scope_only=True)
        kept: list[Exit] = []
        while self:
            close, state, function_scope = entry = self[-1]
            del self[-1]
            if function_scope_only and not function_scope:
                kept.append(entry)
                continue
            if close is not None:
                try:
                    await close(state, exc)
                except BaseException as raised:
                    exc = raised
                continue
            try:
                if exc is None:
                    await state.__anext__()
                else:
                    await state.athrow(exc)
            except StopAsyncIteration:
                continue
            except BaseException as raised:
                exc = raised
                continue
            exc = RuntimeError(f"generator dependency {state!r} yielded more than once")
        if kept:
            self.extend(reversed(kept))
        return exc


class Context:
    """What one request's resolution carries around: created only for routes that need it."""

    __slots__ = ("background", "cache", "cleanup", "errors", "extracted", "request", "response")

    def __init__(self, request: Request) -> None:
        self.request = request
        self.cache: dict[Any, Any] = {}
        # each plan's parameters, read by ``read_parameters`` before any dependency runs
        self.extracted: dict[int, dict[str, Any]] = {}
        self.errors: list[ErrorItem] = []
        self.cleanup = CleanupGroup()
        self.background: BackgroundTasks | None = None
        self.response: Response | None = None


_FAILED = object()


@dataclass
class Plan:
    """How to call one function (a handler or a provider): its parameters and dependencies."""

    call: Callable[..., Any]
    params: list[ParamInfo] = field(default_factory=list)
    # one per source its parameters come from (path, query, header, cookie)
    extractors: list[Extractor] = field(default_factory=list)
    dependencies: list[tuple[str | None, Dependency]] = field(default_factory=list)
    specials: list[tuple[str, Special]] = field(default_factory=list)
    # Resolved before the request body is read (e.g. authentication): a failure answers
    # without reading, sizing or validating the body.
    guards: list[Dependency] = field(default_factory=list)
    body: ParamInfo | None = None
    kind: Literal["async", "sync", "asyncgen", "gen"] = "async"
    # generator providers, as async generator functions (sync ones step in the threadpool)
    agen: Callable[..., AsyncGenerator[Any, None]] | None = None

    def walk(self) -> Iterator[Plan]:
        yield self
        for dep in self.guards:
            yield from dep.plan.walk()
        for _, dep in self.dependencies:
            yield from dep.plan.walk()

    @property
    def all_params(self) -> list[ParamInfo]:
        seen: dict[tuple[str, str], ParamInfo] = {}
        for plan in self.walk():
            for info in plan.params:
                seen.setdefault((info.location, info.alias), info)
            if plan.body is not None:
                seen.setdefault(("body", plan.body.alias), plan.body)
        return list(seen.values())

    @property
    def body_param(self) -> ParamInfo | None:
        bodies = [p.body for p in self.walk() if p.body is not None]
        if len({id(b) for b in bodies}) > 1:
            names = ", ".join(b.name for b in bodies)
            raise TypeError(f"only one body parameter per route is supported (found {names})")
        return bodies[0] if bodies else None

    @property
    def needs_context(self) -> bool:
        return bool(self.dependencies or self.guards) or any(
            kind in (Special.BACKGROUND, Special.RESPONSE) for _, kind in self.specials
        )


@dataclass
class Dependency:
    marker: Depends
    plan: Plan

    def __post_init__(self) -> None:
        # Flattened once, so resolving reads locals instead of attribute chains.
        plan = self.plan
        self.cache_key: Any = plan.call
        self.use_cache = self.marker.use_cache
        self.function_scope = self.marker.scope == "function"
        # A provider that takes nothing but the request skips the general solver.
        self.request_only: list[str] | None = None
        if not (plan.extractors or plan.dependencies or plan.body) and all(
            kind is Special.REQUEST for _, kind in plan.specials
        ):
            self.request_only = [name for name, _ in plan.specials]
        self.resource = resource_halves(plan.call) if self.request_only is not None else None


def _kind(call: Callable[..., Any]) -> Literal["async", "sync", "asyncgen", "gen"]:
    target = call
    while isinstance(target, functools.partial):
        target = target.func
    if inspect.isasyncgenfunction(target):
        return "asyncgen"
    if inspect.isgeneratorfunction(target):
        return "gen"
    if inspect.iscoroutinefunction(target) or inspect.iscoroutinefunction(
        getattr(target, "__call__", None)  # noqa: B004 - callable instances with async __call__
    ):
        return "async"
    return "sync"


def _markers(annotation: Any, default: Any) -> tuple[Param | Depends | None, Any]:
    _, extras = unwrap_annotated(annotation)
    found: Param | Depends | None = None
    for extra in extras:
        if isinstance(extra, (Param, Depends)):
            found = extra
    if isinstance(default, (Param, Depends)):
        found, default = default, inspect.Parameter.empty
    return found, default


def compile_plan(
    call: Callable[..., Any],
    path_names: set[str],
    extra_dependencies: typing.Sequence[Depends] = (),
    guards: typing.Sequence[Depends] = (),
    overrides: Overrides | None = None,
) -> Plan:
    """Inspect ``call`` once and decide how each of its parameters is provided; a dependency
    named in ``overrides`` is provided by its replacement (sub-dependencies included)."""
    try:
        hints = typing.get_type_hints(call, include_extras=True)
    except (NameError, TypeError) as exc:
        raise TypeError(f"cannot resolve the annotations of {call!r}: {exc}") from exc
    signature = inspect.signature(call)
    plan = Plan(call=call, kind=_kind(call))
    if plan.kind == "asyncgen":
        plan.agen = call
    elif plan.kind == "gen":
        plan.agen = _threaded_generator(call)
    for guard in guards:
        dep = _dependency(guard, path_names, None, overrides)
        if any(p.body is not None for p in dep.plan.walk()):
            raise TypeError(f"{guard!r}: a dependency run before the body cannot take the body")
        plan.guards.append(dep)
    for extra in extra_dependencies:
        plan.dependencies.append((None, _dependency(extra, path_names, None, overrides)))
    for name, parameter in signature.parameters.items():
        if parameter.kind in (inspect.Parameter.VAR_POSITIONAL, inspect.Parameter.VAR_KEYWORD):
            continue
        annotation = hints.get(name, Any)
        marker, default = _markers(annotation, parameter.default)
        bind = getattr(marker, "bind_parameter", None)
        if bind is not None:  # kit.forms: a form field or file, read by a dependency
            marker = bind(call, name, annotation, default)
        if isinstance(marker, Depends):
            dep = _dependency(marker, path_names, annotation, overrides)
            plan.dependencies.append((name, dep))
            continue
        special = special_kind(annotation)
        if special is not None and marker is None:
            plan.specials.append((name, special))
            continue
        info = classify(name, annotation, default, marker, path_names)
        if info.location == "body":
            if plan.body is not None:
                raise TypeError(
                    f"{call!r}: only one body parameter is supported ({plan.body.name}, {name})"
                )
            plan.body = info
        else:
            plan.params.append(info)
    plan.extractors = source_extractors(plan.params)
    return plan


def _dependency(
    marker: Depends, path_names: set[str], annotation: Any, overrides: Overrides | None
) -> Dependency:
    provider = marker.dependency
    if provider is None:
        # ``x: Annotated[Thing, Depends()]`` means ``Depends(Thing)``, as in FastAPI.
        provider, _ = unwrap_annotated(annotation)
    if overrides:
        for key in (provider, *marker.override_keys()):
            replacement = overrides.get(key) if _hashable(key) else None
            if replacement is not None:
                provider = replacement
                break
    if not callable(provider):
        raise TypeError(f"Depends needs a callable, got {provider!r}")
    return Dependency(marker, compile_plan(provider, path_names, overrides=overrides))


def _hashable(key: Any) -> bool:
    try:
        hash(key)
    except TypeError:
        return False
    return True


_DONE = object()


def _throw(gen: Generator[Any, None, None], exc: BaseException) -> Any:
    # StopIteration cannot cross into a coroutine, so it is turned into a sentinel here.
    try:
        return gen.throw(exc)
    except StopIteration:
        return _DONE


def _threaded_generator(call: Callable[..., Any]) -> Callable[..., AsyncGenerator[Any, None]]:
    """A sync generator provider as an async generator whose steps run in the threadpool."""

    async def steps(**kwargs: Any) -> AsyncGenerator[Any, None]:
        gen: Generator[Any, None, None] = call(**kwargs)
        value = await run_in_threadpool(next, gen, _DONE)
        if value is _DONE:
            raise RuntimeError(f"generator dependency {call!r} did not yield")
        try:
            yield value
        except BaseException as exc:
            if await run_in_threadpool(_throw, gen, exc) is _DONE:
                return
            raise
        if await run_in_threadpool(next, gen, _DONE) is not _DONE:
            raise RuntimeError(f"generator dependency {call!r} yielded more than once")

    return steps


def extract_params(plan: Plan, request: Request, errors: list[ErrorItem]) -> dict[str, Any]:
    kwargs: dict[str, Any] = {}
    scope = request.scope
    for extract in plan.extractors:
        extract(scope, kwargs, errors)
    return kwargs


def fill_specials(plan: Plan, kwargs: dict[str, Any], ctx: Context) -> None:
    for name, kind in plan.specials:
        if kind is Special.REQUEST or kind is Special.WEBSOCKET:
            kwargs[name] = ctx.request
        elif kind is Special.BACKGROUND:
            if ctx.background is None:
                ctx.background = BackgroundTasks()
            kwargs[name] = ctx.background
        else:
            if ctx.response is None:
                ctx.response = Response()
                # Response() adds "content-length: 0"; the real body's length is sent later
                del ctx.response.headers["content-length"]
                ctx.response.status_code = 0  # "not set by the handler"
            kwargs[name] = ctx.response


def read_parameters(plan: Plan, ctx: Context) -> bool:
    """Read the parameters of ``plan`` and of every dependency under it, before any of them
    runs: a request with a bad parameter opens nothing (no connection for a 422). False if
    any failed (the errors are in ``ctx.errors``)."""
    pending = [plan]
    while pending:
        step = pending.pop()
        if step.extractors and id(step) not in ctx.extracted:
            ctx.extracted[id(step)] = extract_params(step, ctx.request, ctx.errors)
        pending.extend(dep.plan for _, dep in reversed(step.dependencies))
    return not ctx.errors


async def solve(plan: Plan, ctx: Context, body: Any) -> Any:
    """Resolve every dependency and parameter of ``plan``; _FAILED if any of them failed."""
    kwargs = ctx.extracted.pop(id(plan), None)
    if kwargs is None:
        kwargs = extract_params(plan, ctx.request, ctx.errors) if plan.extractors else {}
    failed = False
    for name, dep in plan.dependencies:
        value = await resolve(dep, ctx, body)
        if value is _FAILED:
            failed = True
        elif name is not None:
            kwargs[name] = value
    if plan.specials:
        fill_specials(plan, kwargs, ctx)
    if plan.body is not None:
        kwargs[plan.body.name] = body
    if failed or ctx.errors:
        return _FAILED
    return kwargs


def lift_guards(plan: Plan) -> None:
    """Make every ``before_body`` dependency in ``plan``, however deep, one of its guards.

    Resolved first and cached, they give their value to the handler or provider that declared
    them later in the same request, and a failure answers before the body is read.
    """
    known = {dep.cache_key for dep in plan.guards}
    for step in list(plan.walk()):
        for _, dep in step.dependencies:
            if dep.marker.before_body and dep.use_cache and dep.cache_key not in known:
                if any(p.body is not None for p in dep.plan.walk()):
                    raise TypeError(f"{dep.marker!r}: it runs before the body, so cannot take it")
                known.add(dep.cache_key)
                plan.guards.append(dep)


async def solve_guards(plan: Plan, ctx: Context) -> bool:
    """Resolve the dependencies that run before the body is read; False if any failed."""
    failed = False
    for dep in plan.guards:
        if await resolve(dep, ctx, None) is _FAILED:
            failed = True
    return not (failed or ctx.errors)


async def resolve(dep: Dependency, ctx: Context, body: Any) -> Any:
    if dep.use_cache:
        cached = ctx.cache.get(dep.cache_key, _FAILED)
        if cached is not _FAILED:
            return cached
    if dep.request_only is not None:
        request = ctx.request
        kwargs = dict.fromkeys(dep.request_only, request)
    else:
        kwargs = await solve(dep.plan, ctx, body)
        if kwargs is _FAILED:
            return _FAILED
    plan = dep.plan
    kind = plan.kind
    if dep.resource is not None:
        open_, close = dep.resource
        value, state = await open_(ctx.request)
        ctx.cleanup.add(close, state, dep.function_scope)
    elif kind == "async":
        value = await plan.call(**kwargs)
    elif kind == "sync":
        value = await run_in_threadpool(plan.call, **kwargs)
    else:
        assert plan.agen is not None
        gen = plan.agen(**kwargs)
        value = await gen.__anext__()
        ctx.cleanup.add(None, gen, dep.function_scope)
    if dep.use_cache:
        ctx.cache[dep.cache_key] = value
    return value


FAILED = _FAILED
