"""Routes whose handlers take typed parameters, and routers that group them under a prefix."""

from __future__ import annotations

import inspect
import re
import typing
from collections.abc import Callable, Sequence
from typing import Any, TypeVar

import msgspec
from starlette.concurrency import run_in_threadpool
from starlette.exceptions import HTTPException as StarletteHTTPException
from starlette.requests import ClientDisconnect, Request
from starlette.responses import Response
from starlette.routing import BaseRoute, Match, Mount, Route, WebSocketRoute
from starlette.routing import Router as StarletteRouter
from starlette.types import ASGIApp, Lifespan, Receive, Scope, Send

from kit import codec
from kit.di import (
    FAILED,
    Context,
    Depends,
    Plan,
    close_generators,
    compile_plan,
    extract_params,
    solve,
)
from kit.errors import (
    ErrorItem,
    PayloadTooLarge,
    UnsupportedMediaType,
    ValidationFailed,
    lookup_handler,
    server_error_handler,
)

Handler = TypeVar("Handler", bound=Callable[..., Any])

DEFAULT_MAX_BODY_SIZE = 1024 * 1024
_PATH_PARAM = re.compile(r"{([a-zA-Z_][a-zA-Z0-9_]*)(?::[a-zA-Z_][a-zA-Z0-9_]*)?}")
_JSON_HEADERS = [(b"content-type", b"application/json")]
_NO_BODY_STATUS = frozenset({204, 304})


def path_param_names(path: str) -> set[str]:
    return set(_PATH_PARAM.findall(path))


def _is_json(content_type: bytes) -> bool:
    media = content_type.split(b";", 1)[0].strip().lower()
    return media == b"application/json" or (
        media.startswith(b"application/") and media.endswith(b"+json")
    )


def _header(scope: Scope, name: bytes) -> bytes | None:
    for key, value in scope["headers"]:
        if key == name:
            return typing.cast(bytes, value)
    return None


async def read_body(scope: Scope, receive: Receive, limit: int) -> bytes:
    """The whole request body, refusing with 413 as soon as it is known to be over ``limit``."""
    declared = _header(scope, b"content-length")
    if declared is not None:
        try:
            if int(declared) > limit:
                raise PayloadTooLarge(limit)
        except ValueError:
            raise StarletteHTTPException(400, "Invalid Content-Length header") from None
    chunks: list[bytes] = []
    size = 0
    while True:
        message = await receive()
        if message["type"] == "http.disconnect":
            raise ClientDisconnect()
        chunk = message.get("body", b"")
        if chunk:
            size += len(chunk)
            if size > limit:
                raise PayloadTooLarge(limit)
            chunks.append(chunk)
        if not message.get("more_body", False):
            break
    return chunks[0] if len(chunks) == 1 else b"".join(chunks)


class APIRoute(Route):
    """A route whose endpoint is a typed handler; everything is decided in ``__init__``."""

    def __init__(
        self,
        path: str,
        endpoint: Callable[..., Any],
        *,
        methods: Sequence[str] | None = None,
        status_code: int | None = None,
        name: str | None = None,
        include_in_schema: bool = True,
        tags: Sequence[str] | None = None,
        summary: str | None = None,
        description: str | None = None,
        deprecated: bool = False,
        operation_id: str | None = None,
        response_description: str = "Successful Response",
        responses: dict[int, Any] | None = None,
        dependencies: Sequence[Depends] | None = None,
        max_body_size: int | None = None,
        response_class: type[Response] | None = None,
    ) -> None:
        methods = [m.upper() for m in (methods or ["GET"])]
        super().__init__(
            path, endpoint, methods=methods, name=name, include_in_schema=include_in_schema
        )
        self.status_code = status_code or 200
        self.tags = list(tags or [])
        doc = inspect.getdoc(endpoint) or ""
        self.summary = summary or (doc.split("\n\n", 1)[0].replace("\n", " ") if doc else None)
        self.description = (
            description
            if description is not None
            else (doc.split("\n\n", 1)[1] if "\n\n" in doc else None)
        )
        self.deprecated = deprecated
        self.operation_id = operation_id
        self.response_description = response_description
        self.responses = dict(responses or {})
        self.dependencies = list(dependencies or [])
        self.response_class = response_class
        self.max_body_size = max_body_size
        self.return_annotation = typing.get_type_hints(endpoint, include_extras=True).get("return")
        self.plan: Plan = compile_plan(endpoint, path_param_names(path), self.dependencies)
        self.body_param = self.plan.body_param
        self._allow = ", ".join(sorted(self.methods or ()))
        self.app = self._build(DEFAULT_MAX_BODY_SIZE)

    def bind(self, default_max_body_size: int) -> None:
        """Called when the route joins an app: the app's body limit applies unless ours is set."""
        self.app = self._build(default_max_body_size)

    async def handle(self, scope: Scope, receive: Receive, send: Send) -> None:
        scope["kit.route"] = self.path
        if self.methods and scope["method"] not in self.methods:
            raise StarletteHTTPException(405, headers={"Allow": self._allow})
        await self.app(scope, receive, send)

    def _build(self, default_max_body_size: int) -> ASGIApp:
        plan = self.plan
        call = plan.call
        is_async = plan.kind == "async"
        if plan.kind in ("asyncgen", "gen"):
            raise TypeError(f"{call!r}: a handler cannot be a generator")
        status_code = self.status_code
        no_body = status_code in _NO_BODY_STATUS
        needs_context = plan.needs_context
        body_info = self.body_param
        limit = self.max_body_size if self.max_body_size is not None else default_max_body_size
        if body_info is not None and body_info.marker.max_size is not None:  # type: ignore[attr-defined]
            limit = body_info.marker.max_size  # type: ignore[attr-defined]
        decoder = msgspec.json.Decoder(body_info.annotation, strict=False) if body_info else None
        body_required = body_info.required if body_info else False
        body_default = body_info.default if body_info else None
        body_type = body_info.annotation if body_info else None
        encode = codec.encode
        response_class = self.response_class

        async def read_json(scope: Scope, receive: Receive) -> Any:
            assert decoder is not None
            raw = await read_body(scope, receive, limit)
            if not raw:
                if body_required:
                    raise ValidationFailed([ErrorItem("missing", ["body"], "Field required", None)])
                return body_default
            content_type = _header(scope, b"content-type")
            if content_type is None or not _is_json(content_type):
                raise UnsupportedMediaType()
            try:
                return decoder.decode(raw)
            except msgspec.ValidationError as exc:
                raise ValidationFailed(codec.body_errors(raw, body_type, exc)) from None
            except (msgspec.DecodeError, UnicodeDecodeError, RecursionError) as exc:
                raise ValidationFailed([codec.json_invalid(exc)]) from None

        needs_request = bool(plan.extractors or plan.specials or plan.dependencies)
        request_specials = [name for name, _ in plan.specials]

        def render(result: Any, ctx: Context | None) -> Any:
            """What will be sent, decided before anything is: encoding errors are still 500s."""
            if isinstance(result, Response):
                return result
            status = status_code
            if response_class is not None:
                response = response_class(result, status_code=status)
                if ctx is not None and ctx.response is not None:
                    _merge(ctx.response, response)
                return response
            headers = _JSON_HEADERS
            if ctx is not None and ctx.response is not None:
                if ctx.response.status_code:
                    status = ctx.response.status_code
                headers = [*ctx.response.raw_headers, *_JSON_HEADERS]
            if no_body and result is None:
                return (status, [], b"")
            body = encode(result)
            return (status, [*headers, (b"content-length", str(len(body)).encode())], body)

        async def app(scope: Scope, receive: Receive, send: Send) -> None:
            request = Request(scope, receive, send) if needs_request else None
            ctx: Context | None = None
            # Phase 1: nothing has been sent, so any failure can still become an error response.
            try:
                body = await read_json(scope, receive) if decoder is not None else None
                if needs_context:
                    ctx = Context(typing.cast(Request, request))
                    kwargs = await solve(plan, ctx, body)
                    if kwargs is FAILED:
                        raise ValidationFailed(ctx.errors)
                else:
                    errors: list[ErrorItem] = []
                    kwargs = (
                        extract_params(plan, typing.cast(Request, request), errors)
                        if plan.extractors
                        else {}
                    )
                    if errors:
                        raise ValidationFailed(errors)
                    if body_info is not None:
                        kwargs[body_info.name] = body
                    for name in request_specials:
                        kwargs[name] = request
                if is_async:
                    result = await call(**kwargs)
                else:
                    result = await run_in_threadpool(call, **kwargs)
                if ctx is not None and ctx.function_exits:
                    raised = await close_generators(ctx.function_exits, None)
                    if raised is not None:
                        raise raised
                out = render(result, ctx)
            except BaseException as exc:
                if ctx is not None and (ctx.function_exits or ctx.exits):
                    raised = await close_generators(ctx.function_exits, exc)
                    exc = typing.cast(BaseException, await close_generators(ctx.exits, raised))
                if isinstance(exc, ClientDisconnect):
                    return
                if not isinstance(exc, Exception):
                    raise exc  # cancellation and the like are not answered
                await _answer_error(scope, receive, send, exc)
                return
            # Phase 2: the response is on its way; failures now can only be raised.
            try:
                if out.__class__ is tuple:
                    await send({"type": "http.response.start", "status": out[0], "headers": out[1]})
                    await send({"type": "http.response.body", "body": out[2]})
                else:
                    await out(scope, receive, send)
                if ctx is not None and ctx.background is not None:
                    await ctx.background()
            except BaseException as exc:
                if ctx is not None and ctx.exits:
                    raised = await close_generators(ctx.exits, exc)
                    if raised is not exc:
                        raise typing.cast(BaseException, raised) from exc
                raise
            if ctx is not None and ctx.exits:
                raised = await close_generators(ctx.exits, None)
                if raised is not None:
                    raise raised

        return app


async def _answer_error(scope: Scope, receive: Receive, send: Send, exc: Exception) -> None:
    handler = lookup_handler(scope.get("starlette.exception_handlers"), exc)
    if handler is None:
        handler = server_error_handler
    request = Request(scope, receive, send)
    if inspect.iscoroutinefunction(handler):
        response = await handler(request, exc)
    else:
        response = await run_in_threadpool(handler, request, exc)
    await response(scope, receive, send)


def _could_match(route: BaseRoute, scope: Scope) -> bool:
    try:
        match, _ = route.matches(scope)
    except Exception:  # a route kind that needs more of the scope: assume it could match
        return True
    return match is Match.FULL


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
        self._static: dict[tuple[str, str], APIRoute] = {}
        self._static_built_for = -1

    def _build_static(self) -> None:
        """Map (path, method) to the route that would win for it, for routes without parameters.

        A route is only mapped when no route before it could match the same request, so the
        shortcut never changes which route answers; everything else takes Starlette's scan.
        """
        static: dict[tuple[str, str], APIRoute] = {}
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
                if (route.path, method) not in static and not any(
                    _could_match(earlier, probe) for earlier in self.routes[:index]
                ):
                    static[(route.path, method)] = route
        self._static = static
        self._static_built_for = len(self.routes)

    async def app(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] == "http" and not scope.get("root_path"):
            if self._static_built_for != len(self.routes):
                self._build_static()
            route = self._static.get((scope["path"], scope["method"]))
            if route is not None:
                if "router" not in scope:
                    scope["router"] = self
                scope["route"] = route
                scope["endpoint"] = route.endpoint
                scope["path_params"] = dict(scope.get("path_params", ()))
                await route.handle(scope, receive, send)
                return
        await super().app(scope, receive, send)

    def add_api_route(
        self,
        path: str,
        endpoint: Callable[..., Any],
        *,
        methods: Sequence[str] | None = None,
        tags: Sequence[str] | None = None,
        dependencies: Sequence[Depends] | None = None,
        **options: Any,
    ) -> APIRoute:
        route = APIRoute(
            self.prefix + path,
            endpoint,
            methods=methods,
            tags=[*self.tags, *(tags or [])],
            dependencies=[*self.dependencies, *(dependencies or [])],
            **options,
        )
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
        self, path: str, *, methods: Sequence[str] | None = None, **options: Any
    ) -> Callable[[Handler], Handler]:
        def decorator(func: Handler) -> Handler:
            self.add_api_route(path, func, methods=methods, **options)
            return func

        return decorator

    def get(self, path: str, **options: Any) -> Callable[[Handler], Handler]:
        return self.api_route(path, methods=["GET"], **options)

    def post(self, path: str, **options: Any) -> Callable[[Handler], Handler]:
        return self.api_route(path, methods=["POST"], **options)

    def put(self, path: str, **options: Any) -> Callable[[Handler], Handler]:
        return self.api_route(path, methods=["PUT"], **options)

    def patch(self, path: str, **options: Any) -> Callable[[Handler], Handler]:
        return self.api_route(path, methods=["PATCH"], **options)

    def delete(self, path: str, **options: Any) -> Callable[[Handler], Handler]:
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
                    tags=[*route.tags, *(tags or [])],
                    dependencies=[*(dependencies or []), *route.dependencies],
                    status_code=route.status_code,
                    name=route.name,
                    include_in_schema=route.include_in_schema,
                    summary=route.summary,
                    description=route.description,
                    deprecated=route.deprecated,
                    operation_id=route.operation_id,
                    response_description=route.response_description,
                    responses=route.responses,
                    max_body_size=route.max_body_size,
                    response_class=route.response_class,
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
