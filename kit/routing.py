"""Routes whose handlers take typed parameters, and routers that group them under a prefix.

Registration only: what a route declares is ``kit.route_options``; the plan its requests
follow is compiled by ``kit._plan`` and run by ``kit._executor``; the routing table that finds
it is ``kit.dispatch``. See docs/request-path.md.
"""

from __future__ import annotations

import dataclasses
import inspect
import re
import typing
from collections.abc import Callable, Sequence
from typing import TYPE_CHECKING, Any, TypeVar

import msgspec
import msgspec.inspect
from starlette.convertors import StringConvertor
from starlette.exceptions import HTTPException as StarletteHTTPException
from starlette.routing import BaseRoute, Mount, Route, WebSocketRoute
from starlette.routing import Router as StarletteRouter
from starlette.types import Lifespan, Receive, Scope, Send

from kit._executor import Executor, answer_error
from kit._plan import RoutePlan, Shape, compile_route_plan, possible_shapes
from kit.di import Depends, Overrides, Plan, compile_plan, lift_guards
from kit.dispatch import RouteTable
from kit.params import UnbindableParameter, type_name
from kit.route_options import UNSET, RouteKeywords, RouteOptions

if TYPE_CHECKING:
    from typing import Unpack  # 3.11+; only read by type checkers

__all__ = [
    "DEFAULT_MAX_BODY_SIZE",
    "APIRoute",
    "DependencyOverrides",
    "RouteKeywords",
    "RouteOptions",
    "Router",
    "answer_error",
    "path_param_names",
]

Handler = TypeVar("Handler", bound=Callable[..., Any])

DEFAULT_MAX_BODY_SIZE = 1024 * 1024
_PATH_PARAM = re.compile(r"{([a-zA-Z_][a-zA-Z0-9_]*)(?::[a-zA-Z_][a-zA-Z0-9_]*)?}")
# a body on these is never inferred from a parameter's type: it must be asked for with Body()
_BODILESS_METHODS = ("GET", "HEAD", "DELETE")


def path_param_names(path: str) -> set[str]:
    return set(_PATH_PARAM.findall(path))


class APIRoute(Route):
    """A route whose endpoint is a typed handler; everything is decided in ``__init__``.

    ``plan`` is the handler's declared dependency plan (what /openapi.json documents);
    ``handler`` is the ``Executor`` running its ``RoutePlan``, recompiled by ``bind`` when the
    body limit or the app's ``dependency_overrides`` change.
    """

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
            options = RouteOptions.from_keywords(keywords)
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
        # what a result is converted to before encoding: the declared response model only
        self.response_model = None if options.response_model is UNSET else options.response_model
        if self.response_model is not None:
            _check_response_model(f"{' '.join(methods)} {path}", self.response_model)
        # what /openapi.json documents: the response model when declared (None: nothing)
        self.response_type = (
            self.return_annotation if options.response_model is UNSET else self.response_model
        )
        self._where = f"{' '.join(methods)} {path} ({getattr(endpoint, '__qualname__', endpoint)})"
        self.plan: Plan = self._compile(None)
        if self.plan.kind in ("asyncgen", "gen"):
            raise TypeError(f"{endpoint!r}: a handler cannot be a generator")
        self.body_param = self.plan.body_param
        bodiless = [m for m in methods if m in _BODILESS_METHODS]
        if self.body_param is not None and self.body_param.inferred and bodiless:
            name, shown = self.body_param.name, type_name(self.body_param.annotation)
            raise UnbindableParameter(
                f"{self._where}: parameter {name!r} ({shown}) would be read from a JSON body, "
                f"which {bodiless[0]} requests do not carry; read it from the query with "
                f"Annotated[{shown}, Query()], or say Annotated[{shown}, Body()] if a body is meant"
            )
        self._allow = ", ".join(sorted(self.methods or ()))
        # the path parameters the routing table converts (a str's convertor changes nothing)
        self.converted_params = tuple(
            (key, convertor)
            for key, convertor in self.param_convertors.items()
            if not isinstance(convertor, StringConvertor)
        )
        self._body_limit = DEFAULT_MAX_BODY_SIZE
        self.app = self.handler = Executor(self._route_plan(self.plan))

    def _compile(self, overrides: Overrides | None) -> Plan:
        try:
            plan = compile_plan(
                self.endpoint,
                path_param_names(self.path),
                self.dependencies,
                self.options.guards,
                overrides,
            )
        except UnbindableParameter as exc:
            raise UnbindableParameter(f"{self._where}: {exc}") from None
        lift_guards(plan)  # authentication declared anywhere runs before the body
        return plan

    def _route_plan(self, plan: Plan, shape: Shape | None = None) -> RoutePlan:
        limit = self.max_body_size if self.max_body_size is not None else self._body_limit
        return compile_route_plan(
            plan,
            status_code=self.status_code,
            response_class=self.response_class,
            response_model=self.response_model,
            body_limit=limit,
            shape=shape,
        )

    def shapes(self) -> list[Shape]:
        """The shapes this route's plan can take, cheapest first (the last is the general)."""
        return possible_shapes(self.handler.plan.source)

    def use_shape(self, shape: Shape | None) -> None:
        """Run in ``shape`` from now on (None: the default); differential tests compare them."""
        self.handler.plan = self._route_plan(self.handler.plan.source, shape)

    def bind(self, default_max_body_size: int, overrides: Overrides | None = None) -> None:
        """Called when the route joins an app (the app's body limit applies unless ours is
        set) and when the app's ``dependency_overrides`` change: the plan is compiled again."""
        self._body_limit = default_max_body_size
        plan = self._compile(overrides) if overrides else self.plan
        self.handler.plan = self._route_plan(plan)

    async def handle(self, scope: Scope, receive: Receive, send: Send) -> None:
        scope["kit.route"] = self.path
        if self.methods and scope["method"] not in self.methods:
            raise StarletteHTTPException(405, headers={"Allow": self._allow})
        await self.app(scope, receive, send)  # the executor, or what App wraps it in


def _check_response_model(where: str, model: Any) -> None:
    try:
        info = msgspec.inspect.type_info(model)
    except (TypeError, ValueError):
        info = None
    if info is None or isinstance(info, msgspec.inspect.CustomType):
        raise TypeError(
            f"{where}: response_model={model!r} is not a type kit can convert a result to: use "
            f"a Struct, a dataclass, a TypedDict, a collection of them, or a scalar"
        )


class DependencyOverrides(dict[Any, Callable[..., Any]]):
    """``app.dependency_overrides``: provider → replacement, FastAPI's meaning. Every change
    recompiles the plans of the router's routes, so a request never looks this up."""

    def __init__(self, router: Router) -> None:
        super().__init__()
        self._router = router

    def _changed(self) -> None:
        self._router.rebind()

    def __setitem__(self, key: Any, value: Callable[..., Any]) -> None:
        if not callable(value):
            raise TypeError(f"dependency_overrides[{key!r}] must be callable, not {value!r}")
        before = dict(self)
        super().__setitem__(key, value)
        try:
            self._changed()
        except BaseException:  # the replacement cannot be compiled: as if never set
            super().clear()
            super().update(before)
            raise

    def __delitem__(self, key: Any) -> None:
        super().__delitem__(key)
        self._changed()

    def clear(self) -> None:
        super().clear()
        self._changed()

    def pop(self, key: Any, *default: Any) -> Any:
        value = super().pop(key, *default)
        self._changed()
        return value

    def popitem(self) -> tuple[Any, Callable[..., Any]]:
        item = super().popitem()
        self._changed()
        return item

    def setdefault(self, key: Any, default: Any = None) -> Any:
        value = super().setdefault(key, default)
        self._changed()
        return value

    def update(self, *args: Any, **kwargs: Any) -> None:
        for key, value in dict(*args, **kwargs).items():
            if not callable(value):
                raise TypeError(f"dependency_overrides[{key!r}] must be callable, not {value!r}")
        super().update(*args, **kwargs)
        self._changed()

    def __ior__(self, other: Any) -> DependencyOverrides:  # type: ignore[override,misc]
        self.update(other)
        return self


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
        self.dependency_overrides = DependencyOverrides(self)
        self._table: RouteTable | None = None

    @property
    def table(self) -> RouteTable:
        """The routing table of these routes (kit.dispatch), rebuilt when routes were added."""
        table = self._table
        if table is None or table.built_for != len(self.routes):
            table = self._table = RouteTable(self.routes, APIRoute)
        return table

    def rebind(self) -> None:
        """Compile every typed route's plan again: the body limit or the overrides changed.
        All or nothing: an override that cannot be compiled leaves every plan as it was."""
        routes = [r for r in self.routes if isinstance(r, APIRoute)]
        overrides = dict(self.dependency_overrides)
        plans = [r._compile(overrides) if overrides else r.plan for r in routes]
        for route, plan in zip(routes, plans, strict=True):
            route.handler.plan = route._route_plan(plan)

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
            options = RouteOptions.from_keywords(keywords)
        elif keywords:
            options = dataclasses.replace(options, **keywords)
        options = options.including(tags=self.tags, dependencies=self.dependencies)
        route = APIRoute(self.prefix + path, endpoint, methods=methods, options=options)
        route.bind(self.default_max_body_size, self.dependency_overrides)
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
