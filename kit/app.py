"""``kit.App``: a Starlette application with typed routes, and the one place that assembles
kit's parts (health, operations, docs, database, CORS and hosts, security; see kit.parts)."""

from __future__ import annotations

import contextlib
import gc
import sys
import typing
from collections.abc import AsyncIterator, Callable, Mapping, Sequence
from contextlib import AbstractAsyncContextManager, AsyncExitStack
from typing import TYPE_CHECKING, Any, Protocol

from starlette.applications import Starlette
from starlette.middleware import Middleware
from starlette.middleware.base import BaseHTTPMiddleware
from starlette.middleware.errors import ServerErrorMiddleware
from starlette.middleware.gzip import GZipMiddleware
from starlette.routing import BaseRoute, WebSocketRoute
from starlette.routing import Router as StarletteRouter
from starlette.types import ASGIApp, Message, Receive, Scope, Send

try:  # Starlette 1.x; before it, App(max_body_size=) limits kit's routes only
    from starlette.middleware.body_limit import RequestBodyLimitMiddleware
except ImportError:  # pragma: no cover
    RequestBodyLimitMiddleware = None  # type: ignore[assignment,misc]

from kit.db.connect import reported_once
from kit.di import Depends
from kit.dispatch import Dispatch, ServerErrors
from kit.errors import DEFAULT_HANDLERS, HandledErrors, PayloadTooLarge, server_error_handler
from kit.forms import spec_for
from kit.middleware.exposure import exposure_part
from kit.middleware.observe import TRACKING
from kit.openapi import docs_part
from kit.ops.health import health_part
from kit.ops.operations import operations_part
from kit.parts import LifespanFactory, Part
from kit.routing import APIRoute, DependencyOverrides, Handler, RouteKeywords, Router
from kit.security.startup import security_part
from kit.settings import Settings

if TYPE_CHECKING:
    from typing import Unpack  # 3.11+; only read by type checkers


_NO_EVENTS = (
    "{what}: kit (like Starlette 1.0) has no startup/shutdown events; write the code around "
    "the yield of a lifespan: App(lifespan=...) (docs/fastapi-migration.md)"
)


class DatabaseLike(Protocol):
    def lifespan(self, app: Any) -> AbstractAsyncContextManager[Mapping[str, Any] | None]: ...


class _OwnBodyLimit:
    """A kit route under ``App(max_body_size=)``: the app's layer stands down for it, so the
    route answers first (a 401 stays a 401 whatever Content-Length says, as without the
    argument); what it reads, its declared body or ``request.body()``, counts against its own
    limit."""

    def __init__(self, app: ASGIApp, limit: int) -> None:
        self.limit = limit
        self.app = RequestBodyLimitMiddleware(app, sys.maxsize)  # the standing down

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        limit = self.limit
        received = 0

        async def counted() -> Message:
            nonlocal received
            message = await receive()
            if message["type"] == "http.request":
                received += len(message.get("body", b""))
                if received > limit:
                    raise PayloadTooLarge(limit)
            return message

        await self.app(scope, counted, send)


class App(Starlette):
    """A Starlette app whose routes take typed parameters, validated with msgspec."""

    router: Router

    def __init__(
        self,
        debug: bool = False,
        routes: Sequence[BaseRoute] | None = None,
        middleware: Sequence[Middleware] | None = None,
        exception_handlers: Mapping[Any, Callable[..., Any]] | None = None,
        lifespan: LifespanFactory | None = None,
        *,
        title: str = "kit service",
        version: str = "0.1.0",
        description: str | None = None,
        database: DatabaseLike | None = None,
        settings: Settings | None = None,
        dependencies: Sequence[Depends] | None = None,
        max_body_size: int | None = None,
        servers: Sequence[Mapping[str, Any]] | None = None,
        openapi_url: str | None = "/openapi.json",
        docs_url: str | None = "/docs",
        redoc_url: str | None = "/redoc",
        openapi_tags: Sequence[Mapping[str, Any]] | None = None,
        response_headers: Mapping[str, str] | None = None,
        health: bool = True,
    ) -> None:
        """Starlette's positional arguments first (``App(debug, routes, middleware,
        exception_handlers, lifespan)``), then kit's, by keyword. ``max_body_size`` given here
        limits every route's body, Starlette's routes and mounts included, as Starlette's does
        (without it, ``KIT_MAX_BODY_SIZE`` limits kit's routes); ``health=False`` leaves out
        /healthz and /readyz."""
        handlers: dict[Any, Callable[..., Any]] = {
            **DEFAULT_HANDLERS,
            Exception: server_error_handler,
        }
        handlers.update(exception_handlers or {})
        super().__init__(debug=debug, middleware=middleware, exception_handlers=handlers)
        self.settings = settings if settings is not None else Settings.from_env()
        self.title = title
        self.version = version
        self.description = description
        self.servers = list(servers or [])
        self.openapi_url = openapi_url if self.settings.docs else None
        self.docs_url = docs_url if self.settings.docs else None
        self.redoc_url = redoc_url if self.settings.docs else None
        self.openapi_tags = list(openapi_tags or [])
        self.body_limit = (
            max_body_size if max_body_size is not None else self.settings.max_body_size
        )
        self.max_body_size = max_body_size  # Starlette's attribute: the limit for every route
        self.health = health
        self.database = database
        # Sent with every response that lacks them (a Server header, say), by kit's observer.
        self.response_headers = tuple(
            (name.lower().encode("latin-1"), value.encode("latin-1"))
            for name, value in (response_headers or {}).items()
        )
        self.router = Router(dependencies=dependencies, lifespan=self._lifespan)
        self.router.default_max_body_size = self.body_limit
        self.router.lifespan = reported_once(self.router.lifespan)  # type: ignore[method-assign]
        for route in routes or ():
            self._add(route)
        # Starlette's Router turns a (deprecated) generator function into a context manager.
        self._user_lifespan = (
            None
            if lifespan is None
            else StarletteRouter(lifespan=typing.cast(Any, lifespan)).lifespan_context
        )
        self.parts: list[Part] = []
        # Their routes are moved behind the user's when the app starts, so those match first.
        self._kit_routes: list[BaseRoute] = []
        for part in self._builtin_parts():
            self.add_part(part)

    def _builtin_parts(self) -> list[Part]:
        """kit's own parts, in the order their lifespans start."""
        parts: list[Part] = []
        if self.database is not None:
            part = getattr(self.database, "part", None)
            parts.append(part() if part is not None else Part(lifespans=[self.database.lifespan]))
        if self.settings.otel:  # opentelemetry is imported only then; outside operations
            from kit.ops.tracing import tracing_part

            parts.append(tracing_part(self))
        if self.health:
            parts.append(health_part(self))
        parts += [docs_part(self), operations_part(self)]
        parts += [exposure_part(self), security_part(self)]
        if self.settings.admin:  # refuses to start without authentication
            from kit.ops.admin import admin_part

            parts.append(admin_part(self))
        return parts

    def add_part(self, part: Part) -> None:
        """Add what ``part`` contributes; see kit.parts for the order everything runs in."""
        self.parts.append(part)
        self._kit_routes.extend(part.routes)
        self.router.routes.extend(part.routes)
        for key, handler in part.exception_handlers.items():
            self.add_exception_handler(key, handler)

    def add_lifespan(self, factory: LifespanFactory) -> None:
        """Run ``factory(app)`` as an async context manager around the app's life.

        Parts are entered in the order they were added (the user's lifespan last) and exited in
        reverse; a mapping they yield is merged into the lifespan state (``request.state``).
        """
        self.add_part(Part(lifespans=[factory]))

    @contextlib.asynccontextmanager
    async def _lifespan(self, _: Any) -> AsyncIterator[dict[str, Any]]:
        state: dict[str, Any] = {}
        async with AsyncExitStack() as stack:
            factories = [factory for part in self.parts for factory in part.lifespans]
            if self._user_lifespan is not None:
                factories.append(self._user_lifespan)
            for factory in factories:
                result = await stack.enter_async_context(factory(self))
                if result:
                    state.update(result)
            # What exists now lives as long as the app: keep it out of every GC pass, so
            # collections triggered by per-request garbage stay cheap under load.
            gc.freeze()
            yield state

    def build_middleware_stack(self) -> ASGIApp:
        kit_routes = {id(route) for route in self._kit_routes}
        self.router.routes.sort(key=lambda route: id(route) in kit_routes)  # stable

        error_handler = None
        handlers: dict[Any, Callable[..., Any]] = {}
        for key, value in self.exception_handlers.items():
            if key in (500, Exception):
                error_handler = value
            else:
                handlers[key] = value
        for part in self.parts:
            for prepare in part.on_build:
                prepare()
        handled_errors = HandledErrors(self.router, handlers)
        handled: ASGIApp = handled_errors
        table = handled_errors.handlers
        body_limit = self._body_limit_layer()
        inside = [*body_limit, *self.user_middleware]  # between the 500 layer and Dispatch
        # the 500 layer sits where Starlette's does: outside the user's middleware, always
        middleware = [entry for part in self.parts for entry in part.middleware]
        if self.settings.gzip_min_size:
            middleware.append(Middleware(GZipMiddleware, minimum_size=self.settings.gzip_min_size))
        dispatch = Dispatch(handled, self.router, table, TRACKING)
        if self.debug:  # Starlette's traceback page
            middleware.append(Middleware(ServerErrorMiddleware, handler=error_handler, debug=True))
        elif inside:
            middleware.append(
                Middleware(
                    ServerErrors,
                    handler=error_handler or server_error_handler,
                    tracking=TRACKING,
                )
            )
        else:  # only kit's layers inside, which mark the scope when they start: Dispatch's
            handler = error_handler or server_error_handler
            dispatch.errors = ServerErrors(dispatch, handler, TRACKING, wrap=False)
        middleware += inside
        app: ASGIApp = dispatch
        for cls, args, kwargs in reversed(middleware):
            app = cls(app, *args, **kwargs)
        return app

    @property
    def dependency_overrides(self) -> DependencyOverrides:
        """provider → replacement, as in FastAPI; a change recompiles the routes' plans."""
        return self.router.dependency_overrides

    def _body_limit_layer(self) -> list[Middleware]:
        """Starlette's own body limit for ``App(max_body_size=)``, outside the user's
        middleware as in Starlette, so that it bounds what they read too. A kit route checks
        its own limit (the same one unless it sets ``max_body_size``), after authentication:
        the app's layer stands down for it, as it does for a Starlette route's own limit."""
        if self.max_body_size is None or RequestBodyLimitMiddleware is None:
            return []
        for route in self.router.routes:
            if isinstance(route, APIRoute) and not isinstance(route.app, _OwnBodyLimit):
                limit = self.body_limit if route.max_body_size is None else route.max_body_size
                form = spec_for(route.endpoint)  # files add their own max_size to the limit
                # around the executor, which stays route.handler (its plan can be recompiled)
                route.app = _OwnBodyLimit(route.handler, limit + (form.extra_size if form else 0))
        return [Middleware(RequestBodyLimitMiddleware, max_body_size=self.max_body_size)]

    def _add(self, route: BaseRoute) -> None:
        if isinstance(route, APIRoute):
            route.bind(self.body_limit, self.router.dependency_overrides)
        self.router.routes.append(route)

    def add_api_route(
        self,
        path: str,
        endpoint: Callable[..., Any],
        *,
        methods: Sequence[str] | None = None,
        **options: Unpack[RouteKeywords],
    ) -> APIRoute:
        """Register ``endpoint`` for ``methods`` (default GET) on ``path``; ``options`` are
        ``RouteKeywords``."""
        return self.router.add_api_route(path, endpoint, methods=methods, **options)

    def api_route(
        self,
        path: str,
        *,
        methods: Sequence[str] | None = None,
        **options: Unpack[RouteKeywords],
    ) -> Callable[[Handler], Handler]:
        """Register the decorated handler for ``methods`` (default GET) on ``path``;
        ``options`` are ``RouteKeywords`` (status_code, tags, responses, dependencies, ...)."""
        return self.router.api_route(path, methods=methods, **options)

    def get(self, path: str, **options: Unpack[RouteKeywords]) -> Callable[[Handler], Handler]:
        """Register the decorated handler for ``GET path`` (``options``: RouteKeywords)."""
        return self.router.get(path, **options)

    def post(self, path: str, **options: Unpack[RouteKeywords]) -> Callable[[Handler], Handler]:
        """Register the decorated handler for ``POST path`` (``options``: RouteKeywords)."""
        return self.router.post(path, **options)

    def put(self, path: str, **options: Unpack[RouteKeywords]) -> Callable[[Handler], Handler]:
        """Register the decorated handler for ``PUT path`` (``options``: RouteKeywords)."""
        return self.router.put(path, **options)

    def patch(self, path: str, **options: Unpack[RouteKeywords]) -> Callable[[Handler], Handler]:
        """Register the decorated handler for ``PATCH path`` (``options``: RouteKeywords)."""
        return self.router.patch(path, **options)

    def delete(self, path: str, **options: Unpack[RouteKeywords]) -> Callable[[Handler], Handler]:
        """Register the decorated handler for ``DELETE path`` (``options``: RouteKeywords)."""
        return self.router.delete(path, **options)

    def websocket_route(self, path: str, name: str | None = None) -> Callable[[Handler], Handler]:
        return self.router.websocket_route(path, name=name)

    def websocket(self, path: str, name: str | None = None) -> Callable[[Handler], Handler]:
        """FastAPI's spelling: the decorated ``async def(websocket)`` is Starlette's
        WebSocketRoute (it takes the ``WebSocket`` only; read parameters from it)."""

        def decorator(func: Handler) -> Handler:
            self.router.routes.append(WebSocketRoute(path, func, name=name))
            return func

        return decorator

    def on_event(self, event_type: str) -> typing.NoReturn:
        """Refused: startup and shutdown events left Starlette in 1.0."""
        raise TypeError(_NO_EVENTS.format(what=f"app.on_event({event_type!r})"))

    def add_event_handler(self, event_type: str, func: Callable[..., Any]) -> typing.NoReturn:
        """Refused: startup and shutdown events left Starlette in 1.0."""
        raise TypeError(_NO_EVENTS.format(what=f"app.add_event_handler({event_type!r})"))

    def exception_handler(
        self, exc_class_or_status_code: int | type[Exception]
    ) -> Callable[[Handler], Handler]:
        """Register the decorated ``handler(request, exc) -> Response`` for an exception class
        or a status code, as ``exception_handlers=`` does."""

        def decorator(func: Handler) -> Handler:
            self.add_exception_handler(exc_class_or_status_code, func)
            return func

        return decorator

    def middleware(self, middleware_type: str) -> Callable[[Handler], Handler]:
        """``@app.middleware("http")``: the decorated ``async def(request, call_next)`` runs
        around every request, as Starlette's BaseHTTPMiddleware (slower than a plain ASGI
        middleware class: it costs every request a task and a response copy)."""
        if middleware_type != "http":
            raise ValueError(f'app.middleware({middleware_type!r}): only "http" is supported')

        def decorator(func: Handler) -> Handler:
            self.add_middleware(BaseHTTPMiddleware, dispatch=func)
            return func

        return decorator

    def include_router(
        self,
        router: Router,
        *,
        prefix: str = "",
        tags: Sequence[str] | None = None,
        dependencies: Sequence[Depends] | None = None,
    ) -> None:
        self.router.include_router(router, prefix=prefix, tags=tags, dependencies=dependencies)
