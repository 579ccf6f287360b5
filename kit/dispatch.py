"""The routing table, and the two ends of an App's request path around the user's middleware.

``ServerErrors`` (outside the user's middleware, always) answers an exception nothing else
answered with the app's 500 handler, as Starlette's ServerErrorMiddleware does, without
wrapping ``send`` when an outer kit layer already knows whether the response started.
``Dispatch`` (inside it) finds a kit route in the ``RouteTable`` (a fixed path by one lookup;
a path with parameters among the routes under its first segment) and runs its executor;
everything else takes Starlette's way (``HandledErrors``, then the router's scan).
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Sequence
from typing import TYPE_CHECKING, Any

from starlette.requests import Request
from starlette.routing import BaseRoute, Match, Mount, WebSocketRoute
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from kit.errors import Handlers, call_handler

if TYPE_CHECKING:
    from kit.routing import APIRoute, Router


# scope key: a response was started for this request (set by kit's own layers)
STARTED = "kit.started"


class _Started:
    """A send that marks the scope when the response starts (when no outer layer tracks it)."""

    __slots__ = ("scope", "send")

    def __init__(self, send: Send, scope: Scope) -> None:
        self.send = send
        self.scope = scope

    def __call__(self, message: Message) -> Awaitable[None]:
        # not a coroutine: it hands back the server's awaitable, so a message costs no frame
        if message["type"] == "http.response.start":
            self.scope[STARTED] = True
        return self.send(message)


class ServerErrors:
    """An exception that escaped everything inside: a JSON 500 if nothing was sent yet, then
    re-raised so that the server logs it (and a test client can raise it).

    With nothing between it and ``Dispatch`` (no user middleware, no body limit layer),
    ``Dispatch`` does its work itself (``Dispatch.errors``): one layer less per request."""

    def __init__(
        self,
        app: ASGIApp,
        handler: Callable[..., Any],
        tracking: tuple[type, ...] = (),
        wrap: bool = True,
    ) -> None:
        self.app = app
        self.handler = handler
        # send callables whose ``status`` says whether the response started (kit's observer)
        self.tracking = tracking
        # False when only kit's layers are inside: they mark the scope when they start a
        # response (the executor, Dispatch's way to the other routes), so send stays as is
        self.wrap = wrap

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        tracked = send.__class__ in self.tracking
        inner: Any = send if tracked or not self.wrap else _Started(send, scope)
        try:
            await self.app(scope, receive, inner)
        except Exception as exc:
            await self.answer(scope, receive, send, exc)

    async def answer(self, scope: Scope, receive: Receive, send: Send, exc: Exception) -> None:
        """Answer ``exc`` with the 500 handler unless the response started; then raise it."""
        # Called even when the response already started (an error in a background task), as
        # Starlette does: the handler may report it; only its answer is dropped then.
        tracked = send.__class__ in self.tracking
        started = send.status if tracked else scope.get(STARTED)  # type: ignore[attr-defined]
        response = await call_handler(self.handler, Request(scope, receive, send), exc)
        if not started:
            await response(scope, receive, send)
        raise exc


def _could_match(route: BaseRoute, scope: Scope) -> bool:
    try:
        match, _ = route.matches(scope)
    except Exception:  # a route kind that needs more of the scope: assume it could match
        return True
    return match is Match.FULL


class RouteTable:
    """Where a request to a typed route goes, found without Starlette's scan whenever that
    gives the same answer: ``static`` (path → method → route, for routes without path
    parameters) and ``by_segment`` (first path segment → the typed routes under it)."""

    __slots__ = ("built_for", "by_segment", "static")

    def __init__(self, routes: Sequence[BaseRoute], kind: type[APIRoute]) -> None:
        # ``kind``: kit.routing's APIRoute (which imports this module)
        self.built_for = len(routes)
        self.static = _static_routes(routes, kind)
        self.by_segment = _routes_by_first_segment(routes, kind)

    def static_route(self, path: str, method: str) -> APIRoute | None:
        """The typed route with no path parameters that answers ``method path``, if one does."""
        methods = self.static.get(path)
        return None if methods is None else methods.get(method)

    def routes_for(self, path: str) -> list[APIRoute] | None:
        """The typed routes, in order, that can match ``path``: those whose first path
        segment is ``path``'s. None when a route of another kind could match too (a Mount, a
        plain Route, a parameter as first segment): then only Starlette's scan is exact."""
        if self.by_segment is None:
            return None
        return self.by_segment.get(path[1:].partition("/")[0])


def _static_routes(routes: Sequence[BaseRoute], kind: type[APIRoute]) -> dict[str, dict[str, Any]]:
    """Map path → method → the route that would win for it, for routes without parameters.

    A route is only mapped when no route before it could match the same request, so the
    shortcut never changes which route answers; everything else takes Starlette's scan.
    """
    static: dict[str, dict[str, Any]] = {}
    for index, route in enumerate(routes):
        if not isinstance(route, kind) or route.param_convertors:
            continue
        for method in route.methods or ():
            probe: Scope = {"type": "http", "path": route.path, "root_path": "", "method": method}
            probe["headers"] = []
            methods = static.setdefault(route.path, {})
            if method not in methods and not any(
                _could_match(earlier, probe) for earlier in routes[:index]
            ):
                methods[method] = route
    return static


def _routes_by_first_segment(
    routes: Sequence[BaseRoute], kind: type[APIRoute]
) -> dict[str, list[Any]] | None:
    """First path segment → the typed routes under it, in order; a segment any other kind of
    route could also match maps to None (the scan decides), and a route that could match
    under any segment makes the whole map None."""
    by_segment: dict[str, list[Any] | None] = {}
    for route in routes:
        path = getattr(route, "path", None)
        if not isinstance(path, str) or not path.startswith("/"):
            return None
        segment = path.split("/", 2)[1]
        if "{" in segment or (isinstance(route, Mount) and not segment):
            return None
        if isinstance(route, kind):
            listed = by_segment.setdefault(segment, [])
            if listed is not None:
                listed.append(route)
        elif not isinstance(route, WebSocketRoute):
            by_segment[segment] = None  # a plain Route or a Mount shares this segment
    return {segment: listed for segment, listed in by_segment.items() if listed is not None}


class Dispatch:
    """The one routing table of an App: a kit route found here runs its executor directly.

    ``errors``: the app's ``ServerErrors`` when nothing stands between the two (it then has
    no layer of its own: Dispatch answers what escapes, as it would)."""

    def __init__(
        self,
        app: ASGIApp,
        router: Router,
        handlers: Handlers,
        tracking: tuple[type, ...] = (),
        errors: ServerErrors | None = None,
    ) -> None:
        self.app = app  # HandledErrors around the router: the way for everything else
        self.router = router
        self.handlers = handlers
        self.tracking = tracking  # as ServerErrors's
        self.table = router.table
        self.errors = errors

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        try:
            if not scope.get("root_path"):
                router = self.router
                table = self.table
                if table.built_for != len(router.routes):  # routes were added since
                    table = self.table = router.table
                path = scope["path"]
                methods = table.static.get(path)
                route = None if methods is None else methods.get(scope["method"])
                params: dict[str, Any] = {}
                if route is None:  # path parameters: only the routes under its first segment
                    by_segment = table.by_segment  # (routes_for, without its call)
                    segment = path[1:].partition("/")[0]
                    for candidate in (by_segment.get(segment) or ()) if by_segment else ():
                        match = candidate.path_regex.match(path)
                        # only a full match: a 405 is for the scan to decide, with its Allow
                        if match is not None and scope["method"] in candidate.methods:
                            route, params = candidate, match.groupdict()
                            for key, convertor in candidate.converted_params:
                                params[key] = convertor.convert(params[key])
                            break
                if route is not None:
                    scope["starlette.exception_handlers"] = self.handlers
                    if "router" not in scope:
                        scope["router"] = router
                    scope["endpoint"] = route.endpoint
                    scope["path_params"] = params
                    scope["kit.route"] = route.path
                    await route.app(scope, receive, send)  # its executor, or what wraps it
                    return
            # the other routes: Starlette's way, with a send that marks the scope when it
            # starts
            tracked = send.__class__ in self.tracking
            await self.app(scope, receive, send if tracked else _Started(send, scope))
        except Exception as exc:
            if self.errors is None:
                raise
            await self.errors.answer(scope, receive, send, exc)
