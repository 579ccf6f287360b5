"""A route's plan: everything its requests need, decided at registration, as data.

``compile_route_plan`` turns a route's declaration (its handler's dependency plan, body,
status and response class) into a ``RoutePlan``; ``kit._executor.Executor`` runs any plan.
What differs between routes is what the plan leaves out (its *shape*):

- ``bare``: no request object, no arguments: call and render;
- ``arguments``: parameters, body and request objects, no dependency;
- ``steps``: dependencies that take only the request (a pooled ``Connection``), called in
  order with one ``CleanupGroup``, without the solver; guards of that kind too (a
  ``Security`` check), before the body, their value handed to the handler's parameter that
  declared them;
- ``solver``: the general shape: a ``Context`` and ``kit.di.solve`` (sub-dependencies,
  caching, guards, ``BackgroundTasks``, an injected ``Response``).

``GENERAL`` (or ``KIT_GENERAL_PLAN=1`` in the environment) compiles every route in the
``solver`` shape with the generic renderer, so the shapes can be compared with it.
"""

from __future__ import annotations

import os
from collections.abc import Callable, Sequence
from typing import Any, Literal, NamedTuple

import msgspec
from starlette.responses import HTMLResponse, PlainTextResponse, Response

from kit import codec
from kit.codec import BodyDecoder
from kit.di import Close, Context, Dependency, Plan
from kit.params import Extractor, Special

GENERAL = os.environ.get("KIT_GENERAL_PLAN", "") == "1"

Shape = Literal["bare", "arguments", "steps", "solver"]

JSON_TYPE = (b"content-type", b"application/json")
_JSON_HEADERS = [JSON_TYPE]
_NO_BODY_STATUS = frozenset({204, 304})
_TEXT_CLASSES = (PlainTextResponse, HTMLResponse)
_CONTEXT_SPECIALS = (Special.BACKGROUND, Special.RESPONSE)

# How a step (a dependency taking only the request) is called.
CALL, GENERATOR, RESOURCE = 0, 1, 2


class Step(NamedTuple):
    """One dependency the executor calls itself, in order (Litestar's dependency batch)."""

    name: str | None  # the handler parameter it fills; None for ``dependencies=[...]``
    call: Callable[..., Any]  # the provider, its async generator, or a resource's open half
    request_names: list[str]  # the provider's parameters that take the request
    how: int  # CALL, GENERATOR or RESOURCE
    function_scope: bool  # closed when the handler returns, before the response is sent
    close: Close | None  # a resource's close half


class Renderer:
    """What a returned value becomes: ``(status, headers, body)`` for JSON and text, or a
    ``Response``. Built once per route: its status, response class and response model."""

    __slots__ = (
        "model",
        "no_body",
        "plain_json",
        "response_class",
        "status_code",
        "text_charset",
        "text_type",
    )

    def __init__(
        self, status_code: int, response_class: type[Response] | None, model: Any, general: bool
    ) -> None:
        self.status_code = status_code
        self.no_body = status_code in _NO_BODY_STATUS
        self.response_class = response_class
        # the type a result is converted to first (extra fields dropped), or None
        self.model = model
        # A str rendered by Starlette's own text classes: the same bytes and headers, built
        # here without a Response object (not in the general shape, which builds the Response).
        self.text_type: tuple[bytes, bytes] | None = None
        self.text_charset = "utf-8"
        if response_class in _TEXT_CLASSES and not self.no_body and not general:
            assert response_class is not None
            media = f"{response_class.media_type}; charset={response_class.charset}"
            self.text_type = (b"content-type", media.encode("latin-1"))
            self.text_charset = response_class.charset
        # JSON as it is (no model, no class, a body): what the executor renders inline when
        # nothing was injected and the result is not a Response
        self.plain_json = model is None and response_class is None and not self.no_body

    def render(self, result: Any, ctx: Context | None) -> Any:
        """What will be sent, decided before anything is: encoding errors are still 500s."""
        if isinstance(result, Response):
            return result
        if self.model is not None:
            result = self.conform(result)
        status = self.status_code
        if (
            self.text_type is not None
            and result.__class__ is str
            and (ctx is None or ctx.response is None)
        ):
            text = result.encode(self.text_charset)
            return (status, [(b"content-length", b"%d" % len(text)), self.text_type], text)
        if self.response_class is not None:
            response = self.response_class(result, status_code=status)
            if ctx is not None and ctx.response is not None:
                _merge(ctx.response, response)
            return response
        headers = _JSON_HEADERS
        if ctx is not None and ctx.response is not None:
            if ctx.response.status_code:
                status = ctx.response.status_code
            headers = [*ctx.response.raw_headers, *_JSON_HEADERS]
        if self.no_body and result is None:
            return (status, [], b"")
        body = codec.encode(result)
        return (status, [*headers, (b"content-length", b"%d" % len(body))], body)

    def conform(self, result: Any) -> Any:
        """``result`` as the response model: fields it does not declare are left out, and a
        value that does not fit is a server error (the handler broke its contract)."""
        if result is None or result.__class__ is self.model:
            return result
        return msgspec.convert(result, self.model, strict=False, from_attributes=True)


def _merge(source: Response, target: Response) -> None:
    """Headers and status set on an injected ``Response`` parameter, applied to the result."""
    if source.status_code:
        target.status_code = source.status_code
    known = {k for k, _ in target.raw_headers}
    for key, value in source.raw_headers:
        if key not in known or key == b"set-cookie":
            target.raw_headers.append((key, value))


class RoutePlan:
    """One route's request path as data; ``kit._executor.Executor`` runs it."""

    __slots__ = (
        "body",
        "body_name",
        "call",
        "extractors",
        "guard_steps",
        "guards",
        "is_async",
        "needs_context",
        "needs_request",
        "renderer",
        "request_names",
        "shape",
        "solver",
        "source",
        "steps",
        "takes_arguments",
    )

    def __init__(
        self,
        *,
        shape: Shape,
        source: Plan,
        call: Callable[..., Any],
        is_async: bool,
        renderer: Renderer,
        body: BodyDecoder | None = None,
        body_name: str | None = None,
        extractors: Sequence[Extractor] = (),
        request_names: Sequence[str] = (),
        steps: Sequence[Step] = (),
        guard_steps: Sequence[Step] = (),
        solver: Plan | None = None,
    ) -> None:
        self.shape = shape
        self.source = source  # the dependency plan this was compiled from
        self.call = call
        self.is_async = is_async
        self.renderer = renderer
        self.body = body
        self.body_name = body_name
        self.extractors = tuple(extractors)
        self.request_names = tuple(request_names)
        self.steps = tuple(steps)
        self.guard_steps = tuple(guard_steps)  # steps taken before the body is read
        # the dependency plan the solver resolves (parameters, dependencies, specials, body)
        self.solver = solver
        self.guards = solver is not None and bool(solver.guards)
        self.needs_context = solver is not None
        self.takes_arguments = shape != "bare"
        # a Request object: for the handler, the providers, or the solver (extractors read
        # the scope)
        self.needs_request = bool(
            solver is not None or self.request_names or self.steps or self.guard_steps
        )

    def __repr__(self) -> str:
        return f"<RoutePlan {self.shape} {getattr(self.call, '__qualname__', self.call)}>"


def compile_route_plan(
    plan: Plan,
    *,
    status_code: int,
    response_class: type[Response] | None,
    response_model: Any,
    body_limit: int,
    shape: Shape | None = None,
) -> RoutePlan:
    """The plan of a route whose handler's dependency plan is ``plan``: the cheapest shape
    that does everything the route needs, or ``shape`` (one of ``possible_shapes(plan)``);
    ``GENERAL`` makes the default the general one."""
    if shape is None and GENERAL:
        shape = "solver"
    possible = possible_shapes(plan)
    if shape is None:
        shape = possible[0]
    elif shape not in possible:
        raise ValueError(f"{plan.call!r} cannot run in the {shape!r} shape (only {possible})")
    # the general shape renders text through the Response class, as Starlette would
    renderer = Renderer(status_code, response_class, response_model, general=shape == "solver")
    body: BodyDecoder | None = None
    body_name: str | None = None
    info = plan.body_param
    if info is not None:
        limit = body_limit
        if info.marker.max_size is not None:  # type: ignore[attr-defined]
            limit = info.marker.max_size  # type: ignore[attr-defined]
        body = BodyDecoder(
            info.annotation, limit=limit, required=info.required, default=info.default
        )
        body_name = info.name
    common: dict[str, Any] = {
        "shape": shape,
        "source": plan,
        "call": plan.call,
        "is_async": plan.kind == "async",
        "renderer": renderer,
        "body": body,
        "body_name": body_name,
    }
    if shape == "solver":
        return RoutePlan(solver=plan, **common)
    if shape == "bare":
        return RoutePlan(**common)
    guard_steps, steps = _steps(plan) or ((), ())
    return RoutePlan(
        extractors=plan.extractors,
        request_names=[name for name, _ in plan.specials],
        steps=steps,
        guard_steps=guard_steps,
        **common,
    )


def possible_shapes(plan: Plan) -> list[Shape]:
    """The shapes a route with this dependency plan can run in, cheapest first; the last is
    always the general one."""
    found = _steps(plan)
    if found is None:
        return ["solver"]
    if found[0] or found[1]:
        return ["steps", "solver"]
    if plan.kind == "async" and not (plan.extractors or plan.specials or plan.body_param):
        return ["bare", "arguments", "solver"]
    return ["arguments", "solver"]


def _steps(plan: Plan) -> tuple[list[Step], list[Step]] | None:
    """The guards and the handler's dependencies as steps, when every one takes only the
    request and nothing needs a Context; else None (the solver).

    What the solver caches is reproduced exactly or not at all: a guard that is also one of
    the handler's parameters (``Security`` declared there, lifted into the guards) is called
    once, before the body, and its value given to that parameter; any other provider met
    twice takes the solver."""
    if any(kind in _CONTEXT_SPECIALS for _, kind in plan.specials):
        return None
    guards: list[Step] = []
    cached: dict[Any, int] = {}  # a cached guard's provider → its place in guards
    keys = set()
    for dep in plan.guards:
        step = _step(None, dep)
        if step is None or dep.cache_key in keys:
            return None
        keys.add(dep.cache_key)
        if dep.use_cache:
            cached[dep.cache_key] = len(guards)
        guards.append(step)
    steps: list[Step] = []
    for name, dep in plan.dependencies:
        index = cached.get(dep.cache_key)
        if index is not None and dep.use_cache:  # the solver's cache: the guard's value
            if name is not None:
                if guards[index].name is not None:
                    return None
                guards[index] = guards[index]._replace(name=name)
            continue
        step = _step(name, dep)
        if step is None or dep.cache_key in keys:
            return None
        keys.add(dep.cache_key)
        steps.append(step)
    return guards, steps


def _step(name: str | None, dep: Dependency) -> Step | None:
    """``dep`` as a step filling the parameter ``name``, if it takes only the request."""
    if dep.request_only is None or dep.plan.kind not in ("async", "asyncgen"):
        return None
    if dep.resource is not None:
        open_, close = dep.resource
        return Step(name, open_, dep.request_only, RESOURCE, dep.function_scope, close)
    if dep.plan.kind == "asyncgen":
        assert dep.plan.agen is not None
        return Step(name, dep.plan.agen, dep.request_only, GENERATOR, dep.function_scope, None)
    return Step(name, dep.plan.call, dep.request_only, CALL, False, None)
