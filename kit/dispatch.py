"""The two ends of an App's request path, around the user's middleware.

``ServerErrors`` (outside the user's middleware) answers an exception nothing else answered
with the app's 500 handler, as Starlette's ServerErrorMiddleware does, but without wrapping
``send`` when an outer kit layer already knows whether the response started. ``Dispatch``
(inside it) sends a request for a kit route with a fixed path straight to that route's
handler; everything else takes Starlette's way (``HandledErrors``, then the router's scan).
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from typing import TYPE_CHECKING, Any

from starlette.requests import Request
from starlette.routing import Match
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from kit.errors import Handlers, call_handler

if TYPE_CHECKING:
    from kit.routing import Router


class _Started:
    """A send that remembers whether the response started (when no outer layer does)."""

    __slots__ = ("send", "status")

    def __init__(self, send: Send) -> None:
        self.send = send
        self.status = 0

    def __call__(self, message: Message) -> Awaitable[None]:
        # not a coroutine: it hands back the server's awaitable, so a message costs no frame
        if message["type"] == "http.response.start":
            self.status = message["status"]
        return self.send(message)


class ServerErrors:
    """An exception that escaped everything inside: a JSON 500 if nothing was sent yet, then
    re-raised so that the server logs it (and a test client can raise it)."""

    def __init__(
        self, app: ASGIApp, handler: Callable[..., Any], tracking: tuple[type, ...] = ()
    ) -> None:
        self.app = app
        self.handler = handler
        # send callables whose ``status`` says whether the response started (kit's observer)
        self.tracking = tracking

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        tracked: Any = send if send.__class__ in self.tracking else _Started(send)
        try:
            await self.app(scope, receive, tracked)
        except Exception as exc:
            # Called even when the response already started (an error in a background task),
            # as Starlette does: the handler may report it; only its answer is dropped then.
            response = await call_handler(self.handler, Request(scope, receive, send), exc)
            if not tracked.status:
                await response(scope, receive, tracked)
            raise


class Dispatch:
    """A kit route with a fixed path, found by one dictionary lookup and called directly."""

    def __init__(self, app: ASGIApp, router: Router, handlers: Handlers) -> None:
        self.app = app  # HandledErrors around the router: the way for everything else
        self.router = router
        self.handlers = handlers

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] == "http" and not scope.get("root_path"):
            router = self.router
            route = router.static_route(scope["path"], scope["method"])
            if route is not None:
                scope["starlette.exception_handlers"] = self.handlers
                if "router" not in scope:
                    scope["router"] = router
                scope["endpoint"] = route.endpoint
                scope["path_params"] = {}
                scope["kit.route"] = route.path
                await route.handler(scope, receive, send)
                return
            candidates = router.routes_for(scope["path"])
            if candidates:  # path parameters: only the routes under the same first segment
                for route in candidates:
                    match, child_scope = route.matches(scope)
                    if match is Match.FULL:
                        scope.update(child_scope)
                        scope["starlette.exception_handlers"] = self.handlers
                        if "router" not in scope:
                            scope["router"] = router
                        await route.handle(scope, receive, send)
                        return
        await self.app(scope, receive, send)
