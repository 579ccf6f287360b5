"""Routes whose handlers take typed parameters, and routers that group them under a prefix.

A request to a typed route goes through its ``RouteHandler``, built once at registration:
guards → ``decode_body`` (kit.codec) → resolve parameters and dependencies (kit.di) → the
handler → render → send, with generator cleanup in one ``CleanupGroup`` (kit.di).
"""

from __future__ import annotations

import dataclasses
import inspect
import re
import typing
from collections.abc import Callable, Mapping, Sequence
from typing import TYPE_CHECKING, Any, TypedDict, TypeVar

from starlette.concurrency import run_in_threadpool
from starlette.exceptions import HTTPException as StarletteHTTPException
from starlette.requests import ClientDisconnect, Request
from starlette.responses import HTMLResponse, PlainTextResponse, Response
from starlette.routing import BaseRoute, Match, Mount, Route, WebSocketRoute
from starlette.routing import Router as StarletteRouter
from starlette.types import Lifespan, Receive, Scope, Send

from kit import codec
from kit.codec import BodyDecoder
from kit.di import (
    FAILED,
    GENERATOR,
    RESOURCE,
    Close,
    Context,
    Depends,
    Plan,
    close_generators,
    compile_plan,
    direct_dependencies,
    extract_params,
    fill_specials,
    lift_guards,
    solve,
    solve_guards,
)
from kit.errors import (
    ErrorItem,
    ValidationFailed,
    call_handler,
    lookup_handler,
    server_error_handler,
)
from kit.params import Special, UnbindableParameter, type_name

if TYPE_CHECKING:
    from typing import Unpack  # 3.11+; only read by type checkers

Handler = TypeVar("Handler", bound=Callable[..., Any])

DEFAULT_MAX_BODY_SIZE = 1024 * 1024
_PATH_PARAM = re.compile(r"{([a-zA-Z_][a-zA-Z0-9_]*)(?::[a-zA-Z_][a-zA-Z0-9_]*)?}")
_JSON_HEADERS = [(b"content-type", b"application/json")]
_NO_BODY_STATUS = frozenset({204, 304})
_TEXT_CLASSES = (PlainTextResponse, HTMLResponse)
# a body on these is never inferred from a parameter's type: it must be asked for with Body()
_BODILESS_METHODS = ("GET", "HEAD", "DELETE")
# handler parameters kept in a request's Context
_CONTEXT_SPECIALS = (Special.BACKGROUND, Special.RESPONSE)


def path_param_names(path: str) -> set[str]:
    return set(_PATH_PARAM.findall(path))


@dataclasses.dataclass(frozen=True)
class RouteOptions:
    """Everything a route declares besides its path, methods and handler.

    The decorators' keywords (``app.get(path, status_code=201, tags=[...])``) become one of
    these; ``include_router`` copies it with the including router's tags and dependencies.
    """

    status_code: int | None = None
    name: str | None = None
    include_in_schema: bool = True
    tags: Sequence[str] = ()
    summary: str | None = None
    description: str | None = None
    deprecated: bool = False
    operation_id: str | None = None
    response_description: str = "Successful Response"
    responses: Mapping[int, Any] | None = None
    dependencies: Sequence[Depends] = ()
    # resolved before the body is read; a failure answers without touching the body
    guards: Sequence[Depends] = ()
    max_body_size: int | None = None
    response_class: type[Response] | None = None

    def including(
        self, *, tags: Sequence[str] = (), dependencies: Sequence[Depends] = ()
    ) -> RouteOptions:
        """These options under a router: its tags after ours, its dependencies before ours."""
        return dataclasses.replace(
            self,
            tags=(*self.tags, *tags),
            dependencies=(*dependencies, *self.dependencies),
        )


class RouteKeywords(TypedDict, total=False):
    """The keywords of ``get``, ``post``, ``put``, ``patch``, ``delete`` and ``api_route``:
    ``RouteOptions``' fields, typed so that editors complete them and mypy checks them.

    - ``status_code``: the status of a returned value (default 200; 204 sends no body)
    - ``tags``, ``summary``, ``description``, ``deprecated``, ``operation_id``,
      ``response_description``: how /docs shows the operation (summary and description
      default to the handler's docstring: first paragraph, then the rest)
    - ``responses``: other answers to document, ``{404: "Not found"}``, ``{409: Model}`` or
      ``{201: {"description": ..., "headers": {...}}}``
    - ``dependencies``: ``Depends`` run for their effect (auth, rate limits), values unused
    - ``guards``: ``Depends`` run before the body is read; a failure answers at once
    - ``max_body_size``: bytes of body accepted (413 above; default ``App(max_body_size=)``)
    - ``response_class``: a Starlette ``Response`` class that renders the returned value
    - ``name``: for ``url_path_for`` (default: the handler's name);
      ``include_in_schema=False`` leaves the route out of /openapi.json
    """

    status_code: int
    name: str
    include_in_schema: bool
    tags: Sequence[str]
    summary: str
    description: str
    deprecated: bool
    operation_id: str
    response_description: str
    responses: Mapping[int, Any]
    dependencies: Sequence[Depends]
    guards: Sequence[Depends]
    max_body_size: int
    response_class: type[Response]


class APIRoute(Route):
    """A route whose endpoint is a typed handler; everything is decided in ``__init__``."""

    def __init__(
        self,
        path: str,
        endpoint: Callable[..., Any],
        *,
        methods: Sequence[str] | None = None,
        options: RouteOptions | None = None,
        **keywords: Any,
    ) -> None:
        if options is None:
            options = RouteOptions(**{k: v for k, v in keywords.items() if v is not None})
        elif keywords:
            options = dataclasses.replace(options, **keywords)
        self.options = options
        methods = [m.upper() for m in (methods or ["GET"])]
        super().__init__(
            path,
            endpoint,
            methods=methods,
            name=options.name,
            include_in_schema=options.include_in_schema,
        )
        self.status_code = options.status_code or 200
        self.tags = list(options.tags)
        doc = inspect.getdoc(endpoint) or ""
        self.summary = options.summary or (
            doc.split("\n\n", 1)[0].replace("\n", " ") if doc else None
        )
        self.description = (
            options.description
            if options.description is not None
            else (doc.split("\n\n", 1)[1] if "\n\n" in doc else None)
        )
        self.deprecated = options.deprecated
        self.operation_id = options.operation_id
        self.response_description = options.response_description
        self.responses = dict(options.responses or {})
        self.dependencies = list(options.dependencies)
        self.response_class = options.response_class
        self.max_body_size = options.max_body_size
        self.return_annotation = typing.get_type_hints(endpoint, include_extras=True).get("return")
        where = f"{' '.join(methods)} {path} ({getattr(endpoint, '__qualname__', endpoint)})"
        try:
            self.plan: Plan = compile_plan(
                endpoint, path_param_names(path), self.dependencies, options.guards
            )
        except UnbindableParameter as exc:
            raise UnbindableParameter(f"{where}: {exc}") from None
        lift_guards(self.plan)  # authentication declared anywhere runs before the body
        if self.plan.kind in ("asyncgen", "gen"):
            raise TypeError(f"{endpoint!r}: a handler cannot be a generator")
        self.body_param = self.plan.body_param
        bodiless = [m for m in methods if m in _BODILESS_METHODS]
        if self.body_param is not None and self.body_param.inferred and bodiless:
            name, shown = self.body_param.name, type_name(self.body_param.annotation)
            raise UnbindableParameter(
                f"{where}: parameter {name!r} ({shown}) would be read from a JSON body, which "
                f"{bodiless[0]} requests do not carry; read it from the query with "
                f"Annotated[{shown}, Query()], or say Annotated[{shown}, Body()] if a body is meant"
            )
        self._allow = ", ".join(sorted(self.methods or ()))
        self.app = self.handler = RouteHandler(self, DEFAULT_MAX_BODY_SIZE)

    def bind(self, default_max_body_size: int) -> None:
        """Called when the route joins an app: the app's body limit applies unless ours is set."""
        self.app = self.handler = RouteHandler(self, default_max_body_size)

    async def handle(self, scope: Scope, receive: Receive, send: Send) -> None:
        scope["kit.route"] = self.path
        if self.methods and scope["method"] not in self.methods:
            raise StarletteHTTPException(405, headers={"Allow": self._allow})
        await self.app(scope, receive, send)


class RouteHandler:
    """One typed route's request path, decided at registration, in steps a reader (and a
    profiler) can step through: ``respond`` (guards, ``decode_body``, ``arguments``, the
    handler, ``render``) while nothing is sent, then ``send_response``; ``fail`` answers an
    error. Generator dependencies are closed by the request's ``CleanupGroup``.
    """

    __slots__ = (
        "bare",
        "body",
        "body_name",
        "call",
        "direct",
        "has_guards",
        "is_async",
        "needs_context",
        "needs_request",
        "no_body",
        "plan",
        "request_specials",
        "resource",
        "response_class",
        "status_code",
        "takes_arguments",
        "text_charset",
        "text_type",
    )

    def __init__(self, route: APIRoute, default_max_body_size: int) -> None:
        plan = self.plan = route.plan
        self.call = plan.call
        self.is_async = plan.kind == "async"
        self.status_code = route.status_code
        self.no_body = route.status_code in _NO_BODY_STATUS
        self.response_class = route.response_class
        # A str rendered by Starlette's own text classes: the same bytes and headers, built
        # here without a Response object.
        self.text_type: tuple[bytes, bytes] | None = None
        self.text_charset = "utf-8"
        if route.response_class in _TEXT_CLASSES and not self.no_body:
            cls = route.response_class
            media = f"{cls.media_type}; charset={cls.charset}"
            self.text_type = (b"content-type", media.encode("latin-1"))
            self.text_charset = cls.charset
        self.needs_context = plan.needs_context
        self.needs_request = bool(plan.extractors or plan.specials or plan.dependencies)
        self.needs_request = self.needs_request or self.needs_context
        self.has_guards = bool(plan.guards)
        self.request_specials = [name for name, _ in plan.specials]
        info = route.body_param
        self.body: BodyDecoder | None = None
        self.body_name: str | None = None
        if info is not None:
            limit = route.max_body_size
            if limit is None:
                limit = default_max_body_size
            if info.marker.max_size is not None:  # type: ignore[attr-defined]
                limit = info.marker.max_size  # type: ignore[attr-defined]
            self.body = BodyDecoder(
                info.annotation, limit=limit, required=info.required, default=info.default
            )
            self.body_name = info.name
        self.takes_arguments = self.needs_request or self.body is not None
        self.direct = direct_dependencies(plan)
        self.bare = self.is_async and not (self.takes_arguments or self.has_guards)
        # One function-scoped resource (a Connection, a Transaction) and nothing else that needs
        # a Context: opened and closed around the call, without one.
        self.resource: tuple[str, Callable[..., Any], Close] | None = None
        if self.direct is not None and len(self.direct) == 1 and not self.has_guards:
            name, open_, _, how, function_scope, close = self.direct[0]
            alone = not any(kind in _CONTEXT_SPECIALS for _, kind in plan.specials)
            if how == RESOURCE and function_scope and alone and name and close is not None:
                self.resource = (name, open_, close)
                self.needs_context = False

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        request = Request(scope, receive, send) if self.needs_request else None
        ctx = Context(typing.cast(Request, request)) if self.needs_context else None
        try:
            if self.bare:  # nothing to resolve, read or validate: call and render
                out = self.render(await self.call(), None)
            else:
                out = await self.respond(scope, receive, request, ctx)
        except BaseException as exc:
            await self.fail(scope, receive, send, ctx, exc)
            return
        if out.__class__ is tuple and (ctx is None or ctx.nothing_after_response()):
            # most requests: JSON, with nothing left to clean up once it is sent
            await send({"type": "http.response.start", "status": out[0], "headers": out[1]})
            await send({"type": "http.response.body", "body": out[2]})
            return
        await self.send_response(scope, receive, send, out, ctx)

    async def respond(
        self, scope: Scope, receive: Receive, request: Request | None, ctx: Context | None
    ) -> Any:
        """Everything before the first byte is sent, so any failure can still be answered."""
        if self.has_guards and not await solve_guards(self.plan, typing.cast(Context, ctx)):
            raise ValidationFailed(typing.cast(Context, ctx).errors)
        body = await self.body.decode_body(scope, receive) if self.body is not None else None
        if self.resource is not None:
            return await self.with_resource(request, body)
        kwargs = await self.arguments(request, ctx, body) if self.takes_arguments else {}
        if self.is_async:
            result = await self.call(**kwargs)
        else:
            result = await run_in_threadpool(self.call, **kwargs)
        if ctx is not None and ctx.cleanup.function_exits:
            raised = await close_generators(ctx.cleanup.function_exits, None)
            if raised is not None:
                raise raised
        return self.render(result, ctx)

    async def arguments(self, request: Any, ctx: Context | None, body: Any) -> dict[str, Any]:
        """The handler's keyword arguments: parameters, dependencies, body, request objects."""
        if self.direct is not None:
            return await self.direct_arguments(request, typing.cast(Context, ctx), body)
        if ctx is not None:
            kwargs = await solve(self.plan, ctx, body)
            if kwargs is FAILED:
                raise ValidationFailed(ctx.errors)
            return typing.cast(dict[str, Any], kwargs)
        return self.plain_arguments(request, body)

    def plain_arguments(self, request: Any, body: Any) -> dict[str, Any]:
        """``arguments`` without dependencies: parameters, body, the request objects."""
        errors: list[ErrorItem] = []
        kwargs = extract_params(self.plan, request, errors) if self.plan.extractors else {}
        if errors:
            raise ValidationFailed(errors)
        if self.body_name is not None:
            kwargs[self.body_name] = body
        for name in self.request_specials:
            kwargs[name] = request
        return kwargs

    async def with_resource(self, request: Any, body: Any) -> Any:
        """``respond`` for a handler whose one dependency is a function-scoped resource: its
        parameters first (a 422 opens nothing), then open, call and close, as a generator
        dependency would run, with no generator and no Context."""
        kwargs = self.plain_arguments(request, body)
        resource = self.resource
        assert resource is not None  # (not typing.cast: building its type costs more than this)
        name, open_, close = resource
        kwargs[name], state = await open_(request)
        try:
            if self.is_async:
                result = await self.call(**kwargs)
            else:
                result = await run_in_threadpool(self.call, **kwargs)
        except BaseException as exc:
            await close(state, exc)
            raise
        await close(state, None)
        return self.render(result, None)

    async def direct_arguments(self, request: Any, ctx: Context, body: Any) -> dict[str, Any]:
        """``arguments`` for a plan whose dependencies all take only the request (a pooled
        connection, a transaction): called in order, without the general solver's steps."""
        errors = ctx.errors
        kwargs = extract_params(self.plan, request, errors) if self.plan.extractors else {}
        if errors:
            raise ValidationFailed(errors)
        cleanup = ctx.cleanup
        direct = self.direct
        assert direct is not None
        for name, call, request_names, how, function_scope, close in direct:
            exits = cleanup.function_exits if function_scope else cleanup.exits
            if how == RESOURCE:
                value, state = await call(request)
                assert close is not None
                exits.append((close, state))
            elif how == GENERATOR:
                gen = call(**dict.fromkeys(request_names, request))
                value = await gen.__anext__()
                exits.append(gen)
            else:
                value = await call(**dict.fromkeys(request_names, request))
            if name is not None:
                kwargs[name] = value
        if self.plan.specials:
            fill_specials(self.plan, kwargs, ctx)
        if self.body_name is not None:
            kwargs[self.body_name] = body
        return kwargs

    def render(self, result: Any, ctx: Context | None) -> Any:
        """What will be sent, decided before anything is: encoding errors are still 500s.

        A ``Response``, or ``(status, headers, body)`` for the common JSON case.
        """
        if isinstance(result, Response):
            return result
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

    async def send_response(
        self, scope: Scope, receive: Receive, send: Send, out: Any, ctx: Context | None
    ) -> None:
        """The response is on its way: failures now can only be raised, not answered."""
        try:
            if out.__class__ is tuple:
                await send({"type": "http.response.start", "status": out[0], "headers": out[1]})
                await send({"type": "http.response.body", "body": out[2]})
            else:
                await out(scope, receive, send)
            if ctx is not None and ctx.background is not None:
                await ctx.background()
        except BaseException as exc:
            if ctx is not None:
                raised = await ctx.cleanup.close(exc)
                if raised is not exc:
                    raise typing.cast(BaseException, raised) from exc
            raise
        if ctx is not None:
            raised = await ctx.cleanup.close(None)
            if raised is not None:
                raise raised

    async def fail(
        self, scope: Scope, receive: Receive, send: Send, ctx: Context | None, exc: BaseException
    ) -> None:
        """Close what the request opened, then answer ``exc`` with the app's handler for it."""
        if ctx is not None:
            exc = typing.cast(BaseException, await ctx.cleanup.close(exc))
        if isinstance(exc, ClientDisconnect):
            return
        if not isinstance(exc, Exception):
            raise exc  # cancellation and the like are not answered
        await answer_error(scope, receive, send, exc)


async def answer_error(scope: Scope, receive: Receive, send: Send, exc: Exception) -> None:
    handler = lookup_handler(scope.get("starlette.exception_handlers"), exc)
    if handler is None:
        handler = server_error_handler
    request = Request(scope, receive, send)
    try:
        response = await call_handler(handler, request, exc)
    except Exception as failed:  # the handler itself failed: what Starlette would answer
        if handler is server_error_handler:
            raise
        response = await server_error_handler(request, failed)
    await response(scope, receive, send)


def _could_match(route: BaseRoute, scope: Scope) -> bool:
    try:
        match, _ = route.matches(scope)
    except Exception:  # a route kind that needs more of the scope: assume it could match
        return True
    return match is Match.FULL


def _routes_by_first_segment(routes: Sequence[BaseRoute]) -> dict[str, list[APIRoute]] | None:
    """First path segment → the typed routes under it, in order; a segment any other kind of
    route could also match maps to None (the scan decides), and a route that could match
    under any segment makes the whole map None."""
    by_segment: dict[str, list[APIRoute] | None] = {}
    for route in routes:
        path = getattr(route, "path", None)
        if not isinstance(path, str) or not path.startswith("/"):
            return None
        segment = path.split("/", 2)[1]
        if "{" in segment or (isinstance(route, Mount) and not segment):
            return None
        if isinstance(route, APIRoute):
            listed = by_segment.setdefault(segment, [])
            if listed is not None:
                listed.append(route)
        elif not isinstance(route, WebSocketRoute):
            by_segment[segment] = None  # a plain Route or a Mount shares this segment
    return {segment: listed for segment, listed in by_segment.items() if listed is not None}


def _merge(source: Response, target: Response) -> None:
    """Headers and status set on an injected ``Response`` parameter, applied to the result."""
    if source.status_code:
        target.status_code = source.status_code
    known = {k for k, _ in target.raw_headers}
    for key, value in source.raw_headers:
        if key not in known or key == b"set-cookie":
            target.raw_headers.append((key, value))


class Router(StarletteRouter):
    """Starlette's router with typed-route decorators and FastAPI-style ``include_router``."""

    def __init__(
        self,
        routes: Sequence[BaseRoute] | None = None,
        *,
        prefix: str = "",
        tags: Sequence[str] | None = None,
        dependencies: Sequence[Depends] | None = None,
        redirect_slashes: bool = True,
        lifespan: Lifespan[Any] | None = None,
    ) -> None:
        super().__init__(routes=routes, redirect_slashes=redirect_slashes, lifespan=lifespan)
        if prefix and (not prefix.startswith("/") or prefix.endswith("/")):
            raise ValueError("a router prefix must start with '/' and not end with '/'")
        self.prefix = prefix
        self.tags = list(tags or [])
        self.dependencies = list(dependencies or [])
        self.default_max_body_size = DEFAULT_MAX_BODY_SIZE
        self._static: dict[str, dict[str, APIRoute]] = {}
        self._by_segment: dict[str, list[APIRoute]] | None = None
        self._static_built_for = -1

    def _build_static(self) -> None:
        """Map path → method → the route that would win for it, for routes without parameters.

        A route is only mapped when no route before it could match the same request, so the
        shortcut never changes which route answers; everything else takes Starlette's scan.
        """
        static: dict[str, dict[str, APIRoute]] = {}
        for index, route in enumerate(self.routes):
            if not isinstance(route, APIRoute) or route.param_convertors:
                continue
            for method in route.methods or ():
                probe: Scope = {
                    "type": "http",
                    "path": route.path,
                    "root_path": "",
                    "method": method,
                }
                probe["headers"] = []
                methods = static.setdefault(route.path, {})
                if method not in methods and not any(
                    _could_match(earlier, probe) for earlier in self.routes[:index]
                ):
                    methods[method] = route
        self._static = static
        self._by_segment = _routes_by_first_segment(self.routes)
        self._static_built_for = len(self.routes)

    def static_route(self, path: str, method: str) -> APIRoute | None:
        """The typed route with no path parameters that answers ``method path``, if one does."""
        if self._static_built_for != len(self.routes):
            self._build_static()
        methods = self._static.get(path)
        return None if methods is None else methods.get(method)

    def routes_for(self, path: str) -> list[APIRoute] | None:
        """The typed routes, in order, that can match ``path``: those whose first path
        segment is ``path``'s. None when a route of another kind could match too (a Mount, a
        plain Route, a parameter as first segment): then only Starlette's scan is exact."""
        if self._static_built_for != len(self.routes):
            self._build_static()
        if self._by_segment is None:
            return None
        return self._by_segment.get(path.split("/", 2)[1] if path.count("/") else path)

    async def app(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] == "http" and not scope.get("root_path"):
            route = self.static_route(scope["path"], scope["method"])
            if route is not None:
                if "router" not in scope:
                    scope["router"] = self
                scope["endpoint"] = route.endpoint
                scope["path_params"] = dict(scope.get("path_params", ()))
                scope["kit.route"] = route.path
                await route.handler(scope, receive, send)
                return
        await super().app(scope, receive, send)

    def add_api_route(
        self,
        path: str,
        endpoint: Callable[..., Any],
        *,
        methods: Sequence[str] | None = None,
        options: RouteOptions | None = None,
        **keywords: Unpack[RouteKeywords],
    ) -> APIRoute:
        """Register ``endpoint``; ``keywords`` are RouteKeywords (or pass ``options``)."""
        if options is None:
            given = {k: v for k, v in keywords.items() if v is not None}
            options = RouteOptions(**typing.cast(RouteKeywords, given))
        elif keywords:
            options = dataclasses.replace(options, **keywords)
        options = options.including(tags=self.tags, dependencies=self.dependencies)
        route = APIRoute(self.prefix + path, endpoint, methods=methods, options=options)
        if route.max_body_size is None:
            route.bind(self.default_max_body_size)
        self.routes.append(route)
        # Several routes can share a path (GET and DELETE /items/{id}); a 405 from any of them
        # must list the methods of all of them in Allow.
        same_path = [r for r in self.routes if isinstance(r, APIRoute) and r.path == route.path]
        allow = ", ".join(sorted({m for r in same_path for m in r.methods or ()}))
        for other in same_path:
            other._allow = allow
        return route

    def api_route(
        self,
        path: str,
        *,
        methods: Sequence[str] | None = None,
        **options: Unpack[RouteKeywords],
    ) -> Callable[[Handler], Handler]:
        """Register the decorated handler for ``methods`` (default GET) on ``path``;
        ``options`` are ``RouteKeywords`` (status_code, tags, responses, dependencies, ...)."""

        def decorator(func: Handler) -> Handler:
            self.add_api_route(path, func, methods=methods, **options)
            return func

        return decorator

    def get(self, path: str, **options: Unpack[RouteKeywords]) -> Callable[[Handler], Handler]:
        """Register the decorated handler for ``GET path`` (``options``: RouteKeywords)."""
        return self.api_route(path, methods=["GET"], **options)

    def post(self, path: str, **options: Unpack[RouteKeywords]) -> Callable[[Handler], Handler]:
        """Register the decorated handler for ``POST path`` (``options``: RouteKeywords)."""
        return self.api_route(path, methods=["POST"], **options)

    def put(self, path: str, **options: Unpack[RouteKeywords]) -> Callable[[Handler], Handler]:
        """Register the decorated handler for ``PUT path`` (``options``: RouteKeywords)."""
        return self.api_route(path, methods=["PUT"], **options)

    def patch(self, path: str, **options: Unpack[RouteKeywords]) -> Callable[[Handler], Handler]:
        """Register the decorated handler for ``PATCH path`` (``options``: RouteKeywords)."""
        return self.api_route(path, methods=["PATCH"], **options)

    def delete(self, path: str, **options: Unpack[RouteKeywords]) -> Callable[[Handler], Handler]:
        """Register the decorated handler for ``DELETE path`` (``options``: RouteKeywords)."""
        return self.api_route(path, methods=["DELETE"], **options)

    def websocket_route(self, path: str, name: str | None = None) -> Callable[[Handler], Handler]:
        def decorator(func: Handler) -> Handler:
            self.routes.append(WebSocketRoute(self.prefix + path, func, name=name))
            return func

        return decorator

    def include_router(
        self,
        router: StarletteRouter,
        *,
        prefix: str = "",
        tags: Sequence[str] | None = None,
        dependencies: Sequence[Depends] | None = None,
    ) -> None:
        """Copy ``router``'s routes under ``prefix``, recompiling typed routes for the new path."""
        if prefix and (not prefix.startswith("/") or prefix.endswith("/")):
            raise ValueError("an include prefix must start with '/' and not end with '/'")
        for route in router.routes:
            if isinstance(route, APIRoute):
                self.add_api_route(
                    prefix + route.path,
                    route.endpoint,
                    methods=sorted((route.methods or {"GET"}) - {"HEAD"}),
                    options=route.options.including(
                        tags=tags or (), dependencies=dependencies or ()
                    ),
                )
            elif isinstance(route, Route):
                self.routes.append(
                    Route(
                        self.prefix + prefix + route.path,
                        route.endpoint,
                        methods=sorted(route.methods or ()) or None,
                        name=route.name,
                        include_in_schema=route.include_in_schema,
                    )
                )
            elif isinstance(route, WebSocketRoute):
                self.routes.append(
                    WebSocketRoute(
                        self.prefix + prefix + route.path, route.endpoint, name=route.name
                    )
                )
            elif isinstance(route, Mount):
                self.routes.append(
                    Mount(self.prefix + prefix + route.path, app=route.app, name=route.name)
                )
            else:
                self.routes.append(route)
