"""``kit.App``: a Starlette application with typed routes, and the one place that assembles
kit's parts (health, operations, docs, database, CORS and hosts, security; see kit.parts)."""

from __future__ import annotations

import contextlib
import gc
from collections.abc import AsyncIterator, Callable, Mapping, Sequence
from contextlib import AbstractAsyncContextManager, AsyncExitStack
from typing import TYPE_CHECKING, Any, Protocol

from starlette.applications import Starlette
from starlette.middleware import Middleware
from starlette.middleware.errors import ServerErrorMiddleware
from starlette.routing import BaseRoute
from starlette.types import ASGIApp

from kit.di import Depends
from kit.dispatch import Dispatch, ServerErrors
from kit.errors import DEFAULT_HANDLERS, HandledErrors, server_error_handler
from kit.health import health_part
from kit.middleware.exposure import exposure_part
from kit.middleware.observe import TRACKING
from kit.openapi import docs_part
from kit.operations import operations_part
from kit.parts import LifespanFactory, Part
from kit.routing import APIRoute, DependencyOverrides, Handler, RouteKeywords, Router
from kit.security.startup import security_part
from kit.settings import Settings

if TYPE_CHECKING:
    from typing import Unpack  # 3.11+; only read by type checkers


class DatabaseLike(Protocol):
    def lifespan(self, app: Any) -> AbstractAsyncContextManager[Mapping[str, Any] | None]: ...


class App(Starlette):
    """A Starlette app whose routes take typed parameters, validated with msgspec."""

    router: Router

    def __init__(
        self,
        *,
        title: str = "kit service",
        version: str = "0.1.0",
        description: str | None = None,
        routes: Sequence[BaseRoute] | None = None,
        middleware: Sequence[Middleware] | None = None,
        exception_handlers: Mapping[Any, Callable[..., Any]] | None = None,
        lifespan: LifespanFactory | None = None,
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
        debug: bool = False,
    ) -> None:
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
        self.database = database
        # Sent with every response that lacks them (a Server header, say), by kit's observer.
        self.response_headers = tuple(
            (name.lower().encode("latin-1"), value.encode("latin-1"))
            for name, value in (response_headers or {}).items()
        )
        self.router = Router(dependencies=dependencies, lifespan=self._lifespan)
        self.router.default_max_body_size = self.body_limit
        for route in routes or ():
            self._add(route)
        self._user_lifespan = lifespan
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
            from kit.tracing import tracing_part

            parts.append(tracing_part(self))
        parts += [health_part(self), docs_part(self), operations_part(self)]
        parts += [exposure_part(self), security_part(self)]
        if self.settings.admin:  # refuses to start without authentication
            from kit.admin import admin_part

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
        if self.debug:  # Starlette's traceback page
            errors = Middleware(ServerErrorMiddleware, handler=error_handler, debug=True)
        else:
            errors = Middleware(
                ServerErrors,
                handler=error_handler or server_error_handler,
                tracking=TRACKING,
                wrap=bool(self.user_middleware),  # else only kit's layers: they mark the scope
            )
        # the 500 layer sits where Starlette's does: outside the user's middleware, always
        middleware = [entry for part in self.parts for entry in part.middleware]
        middleware += [errors, *self.user_middleware]
        app: ASGIApp = Dispatch(handled, self.router, table, TRACKING)
        for cls, args, kwargs in reversed(middleware):
            app = cls(app, *args, **kwargs)
        return app

    @property
    def dependency_overrides(self) -> DependencyOverrides:
        """provider → replacement, as in FastAPI; a change recompiles the routes' plans."""
        return self.router.dependency_overrides

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

    def include_router(
        self,
        router: Router,
        *,
        prefix: str = "",
        tags: Sequence[str] | None = None,
        dependencies: Sequence[Depends] | None = None,
    ) -> None:
        self.router.include_router(router, prefix=prefix, tags=tags, dependencies=dependencies)
