"""``AsyncClient(app)``: httpx's async client wired to an ASGI app in this process, its lifespan
run on entry and exit, for ``async def`` tests (``@pytest.mark.anyio``)."""

from __future__ import annotations

import math
from collections.abc import MutableMapping
from types import TracebackType
from typing import TYPE_CHECKING, Any

import anyio
from anyio.abc import TaskGroup

# the client Starlette's TestClient runs on: httpx2, or httpx before it
if TYPE_CHECKING:
    import httpx2 as httpx
else:
    try:
        import httpx2 as httpx
    except ModuleNotFoundError:
        import httpx

__all__ = ["AsyncClient", "LifespanFailed"]

Message = MutableMapping[str, Any]


class LifespanFailed(RuntimeError):
    """The app's lifespan refused to start (``lifespan.startup.failed``) or to stop."""


class Lifespan:
    """An ASGI app's lifespan, driven like a server does: startup on entry, shutdown on exit."""

    def __init__(self, app: Any, state: dict[str, Any], timeout: float) -> None:
        self.app = app
        self.state = state
        self.timeout = timeout
        self._to_app, self._app_inbox = anyio.create_memory_object_stream[Message](math.inf)
        self._to_client, self._inbox = anyio.create_memory_object_stream[Message](math.inf)
        self._tasks: TaskGroup = anyio.create_task_group()

    async def __aenter__(self) -> Lifespan:
        await self._tasks.__aenter__()
        self._tasks.start_soon(self._run)
        try:
            await self._exchange("startup")
        except BaseException:
            await self._stop()
            raise
        return self

    async def __aexit__(self, *exc_info: object) -> None:
        try:
            await self._exchange("shutdown")
        finally:
            await self._stop()

    async def _stop(self) -> None:
        try:  # the lifespan task is done or waiting: cancelled, not failed
            self._tasks.cancel_scope.cancel()
            await self._tasks.__aexit__(None, None, None)
        finally:
            for stream in (self._to_app, self._app_inbox, self._to_client, self._inbox):
                stream.close()

    async def _run(self) -> None:
        scope = {
            "type": "lifespan",
            "asgi": {"version": "3.0", "spec_version": "2.0"},
            "state": self.state,
        }
        try:
            await self.app(scope, self._app_inbox.receive, self._to_client.send)
        except Exception as exc:  # an app without lifespan support, or a crash in it
            await self._to_client.send({"type": "kit.lifespan.error", "error": exc})

    async def _exchange(self, phase: str) -> None:
        await self._to_app.send({"type": f"lifespan.{phase}"})
        with anyio.fail_after(self.timeout):
            message = await self._inbox.receive()
        if message["type"] == f"lifespan.{phase}.complete":
            return
        if message["type"] == f"lifespan.{phase}.failed":
            # Starlette sends the traceback: its last line names the exception
            reason = (message.get("message") or "").strip().splitlines()
            raise LifespanFailed(f"lifespan {phase} failed: {reason[-1] if reason else '?'}")
        error = message.get("error")
        raise LifespanFailed(f"lifespan {phase} failed: {error!r}") from error


class AsyncClient(httpx.AsyncClient):
    """``async with AsyncClient(app) as client: await client.get("/items")``.

    Entering runs the app's lifespan startup (a failure raises ``LifespanFailed`` with the
    app's reason); leaving runs its shutdown. Lifespan state (a lifespan that yields a dict)
    reaches every request as ``request.state``, as under a server. ``lifespan=False`` skips the
    lifespan; ``raise_app_exceptions=False`` turns an exception the app lets through into the
    500 a server would send.
    """

    def __init__(
        self,
        app: Any,
        *,
        base_url: str = "http://testserver",
        lifespan: bool = True,
        raise_app_exceptions: bool = True,
        client: tuple[str, int] = ("testclient", 50000),
        startup_timeout: float = 60.0,
        **kwargs: Any,
    ) -> None:
        self.state: dict[str, Any] = {}
        self._app = app
        self._use_lifespan = lifespan
        self._startup_timeout = startup_timeout
        self._lifespan: Lifespan | None = None
        transport = httpx.ASGITransport(
            app=self._with_state,
            raise_app_exceptions=raise_app_exceptions,
            client=client,
        )
        super().__init__(transport=transport, base_url=base_url, **kwargs)

    async def _with_state(self, scope: Any, receive: Any, send: Any) -> None:
        if scope["type"] in ("http", "websocket"):
            scope["state"] = self.state.copy()  # shallow, per request, as servers do
        await self._app(scope, receive, send)

    async def __aenter__(self) -> AsyncClient:
        await super().__aenter__()
        if self._use_lifespan:
            lifespan = Lifespan(self._app, self.state, self._startup_timeout)
            try:
                await lifespan.__aenter__()
            except BaseException:
                await super().__aexit__(None, None, None)
                raise
            self._lifespan = lifespan
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None = None,
        exc: BaseException | None = None,
        tb: TracebackType | None = None,
    ) -> None:
        try:
            lifespan, self._lifespan = self._lifespan, None
            if lifespan is not None:
                await lifespan.__aexit__(exc_type, exc, tb)
        finally:
            await super().__aexit__(exc_type, exc, tb)
