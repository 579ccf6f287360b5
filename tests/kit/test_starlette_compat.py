"""A Starlette app keeps working when ``Starlette(...)`` becomes ``kit.App(...)``: the six
incompatibilities Starlette's own suite found, each with a test of its own."""

from __future__ import annotations

import asyncio
import threading
import time
from collections.abc import AsyncIterator, Iterator
from typing import Any

import pytest
from blockbuster import BlockBuster
from starlette.background import BackgroundTask
from starlette.requests import Request
from starlette.responses import PlainTextResponse, Response
from starlette.routing import Mount, Route
from starlette.testclient import TestClient

from kit import App
from kit.ops.loop_monitor import LoopMonitor


async def echo(request: Request) -> Response:
    return Response(await request.body())


@pytest.mark.parametrize("backend", ["asyncio", "trio"])
def test_lifespan_runs_on_either_backend(backend: str) -> None:
    app = App(routes=[Route("/", lambda request: PlainTextResponse("hi"))])
    with TestClient(app, backend=backend) as client:
        assert client.get("/").text == "hi"
        assert client.get("/readyz").json() == {"status": "ready"}
    assert app.state.kit_readiness.state == "draining"


def test_loop_monitor_stops_without_blocking_the_loop() -> None:
    reporting = threading.Event()

    def on_blocked() -> None:  # keeps the watchdog thread busy while the monitor stops
        reporting.set()
        time.sleep(0.5)

    async def main() -> None:
        monitor = LoopMonitor(threshold=0.05, on_blocked=on_blocked)
        blocker = BlockBuster()  # raises in the loop's thread for a blocking call there
        try:
            async with monitor.running():
                time.sleep(0.3)  # a stall the watchdog reports  # noqa: ASYNC251
                assert await asyncio.to_thread(reporting.wait, 30)
                blocker.activate()  # waiting for the busy watchdog must not block the loop
        finally:
            blocker.deactivate()
        assert not [t for t in threading.enumerate() if t.name == "kit-loop-watchdog"]

    asyncio.run(main())


def test_generator_lifespans_work_with_starlettes_warning() -> None:
    events: list[str] = []

    async def async_gen(app: Any) -> AsyncIterator[None]:
        events.append("async up")
        yield
        events.append("async down")

    def sync_gen(app: Any) -> Iterator[None]:
        events.append("sync up")
        yield
        events.append("sync down")

    for lifespan in (async_gen, sync_gen):
        with pytest.warns(Warning, match="lifespans are deprecated"):
            app = App(lifespan=lifespan)  # type: ignore[arg-type]
        with TestClient(app):
            pass
    assert events == ["async up", "async down", "sync up", "sync down"]


def test_app_max_body_size_limits_starlette_routes_and_mounts() -> None:
    app = App(
        routes=[
            Route("/", echo, methods=["POST"]),
            Route("/upload", echo, methods=["POST"], max_body_size=10),
            Mount("/inner", routes=[Route("/", echo, methods=["POST"])]),
        ],
        max_body_size=5,
    )

    @app.post("/typed", max_body_size=10)
    async def typed(request: Request) -> dict[str, int]:
        return {"size": len(await request.body())}

    with TestClient(app) as client:
        assert client.post("/", content=b"12345").content == b"12345"
        assert client.post("/", content=b"123456").status_code == 413
        assert client.post("/inner/", content=b"123456").status_code == 413
        assert client.post("/upload", content=b"12345678").status_code == 200
        # a kit route's own limit raises the app's, as a Starlette route's does
        assert client.post("/typed", content=b"12345678").json() == {"size": 8}
        assert client.post("/typed", content=b"12345678901").status_code == 413

        def chunks() -> Iterator[bytes]:  # no Content-Length: counted as it arrives
            yield b"1234"
            yield b"5678"

        assert client.post("/", content=chunks()).status_code == 413


def test_the_500_handler_hears_of_an_error_after_the_response_started() -> None:
    seen: list[str] = []

    def fail() -> None:
        raise RuntimeError("in the background")

    async def endpoint(request: Request) -> Response:
        return PlainTextResponse("sent", background=BackgroundTask(fail))

    async def report(request: Request, exc: Exception) -> Response:
        seen.append(str(exc))
        return PlainTextResponse("not sent", status_code=500)

    app = App(routes=[Route("/", endpoint)], exception_handlers={Exception: report})
    with TestClient(app, raise_server_exceptions=False) as client:
        response = client.get("/")
    assert (response.status_code, response.text) == (200, "sent")
    assert seen == ["in the background"]


def test_a_scope_without_headers_is_served() -> None:
    app = App(routes=[Route("/", lambda request: PlainTextResponse("ok"))])
    sent: list[dict[str, Any]] = []

    async def receive() -> dict[str, Any]:
        return {"type": "http.request", "body": b""}

    async def send(message: dict[str, Any]) -> None:
        sent.append(message)

    scope = {"type": "http", "method": "GET", "path": "/", "query_string": b""}
    asyncio.run(app(scope, receive, send))  # type: ignore[arg-type]
    assert sent[0]["status"] == 200


def test_starlettes_positional_signature_and_no_health_routes() -> None:
    routes = [Route("/", lambda request: PlainTextResponse("ok"))]
    app = App(True, routes, health=False)
    assert app.debug is True
    with TestClient(app) as client:
        assert client.get("/").text == "ok"
        assert client.get("/healthz").status_code == 404
        assert client.get("/readyz").status_code == 404
    paths = {getattr(route, "path", None) for route in app.routes}
    assert not paths & {"/healthz", "/readyz"}


def test_health_routes_are_on_by_default() -> None:
    with TestClient(App()) as client:
        assert client.get("/healthz").json() == {"status": "ok"}
