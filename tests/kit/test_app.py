"""kit.App stays a Starlette app: middleware, Mount, WebSocketRoute, StaticFiles, lifespans."""

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Any

import msgspec
from starlette.middleware import Middleware
from starlette.middleware.cors import CORSMiddleware
from starlette.responses import PlainTextResponse
from starlette.routing import Mount, Route
from starlette.staticfiles import StaticFiles
from starlette.testclient import TestClient
from starlette.types import ASGIApp, Receive, Scope, Send
from starlette.websockets import WebSocket

from kit import App, JSONResponse, Router, StreamingResponse


class Stamp:
    """A plain ASGI middleware, the way Starlette's docs write one."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        async def stamped(message: Any) -> None:
            if message["type"] == "http.response.start":
                message["headers"] = [*message.get("headers", []), (b"x-stamp", b"1")]
            await send(message)

        await self.app(scope, receive, stamped)


class Point(msgspec.Struct):
    x: int
    y: int


def test_starlette_middleware_mount_websocket_static(tmp_path: Path) -> None:
    (tmp_path / "hello.txt").write_text("static hello")

    async def legacy(request: Any) -> PlainTextResponse:
        return PlainTextResponse("legacy")

    app = App(
        middleware=[
            Middleware(Stamp),
            Middleware(CORSMiddleware, allow_origins=["https://example.com"]),
        ],
        routes=[Route("/legacy", legacy), Mount("/static", StaticFiles(directory=tmp_path))],
    )

    @app.get("/point")
    async def point() -> Point:
        return Point(1, 2)

    @app.websocket_route("/ws")
    async def ws(websocket: WebSocket) -> None:
        await websocket.accept()
        await websocket.send_text(await websocket.receive_text())
        await websocket.close()

    client = TestClient(app)
    r = client.get("/point", headers={"Origin": "https://example.com"})
    assert r.json() == {"x": 1, "y": 2}
    assert r.headers["x-stamp"] == "1"
    assert r.headers["access-control-allow-origin"] == "https://example.com"
    assert client.get("/legacy").text == "legacy"
    assert client.get("/static/hello.txt").text == "static hello"
    with client.websocket_connect("/ws") as socket:
        socket.send_text("ping")
        assert socket.receive_text() == "ping"


def test_returned_responses_pass_through() -> None:
    app = App()

    @app.get("/text")
    async def text() -> PlainTextResponse:
        return PlainTextResponse("hi", headers={"X-A": "b"})

    @app.get("/json")
    async def json() -> JSONResponse:
        return JSONResponse({"p": Point(1, 2)}, status_code=202)

    @app.get("/stream")
    async def stream() -> StreamingResponse:
        async def chunks() -> AsyncIterator[bytes]:
            for i in range(3):
                yield f"{i}\n".encode()

        return StreamingResponse(chunks(), media_type="text/plain")

    client = TestClient(app)
    assert (client.get("/text").text, client.get("/text").headers["x-a"]) == ("hi", "b")
    r = client.get("/json")
    assert (r.status_code, r.json()) == (202, {"p": {"x": 1, "y": 2}})
    assert client.get("/stream").text == "0\n1\n2\n"


def test_head_is_served_for_get_routes() -> None:
    app = App()

    @app.get("/h")
    async def h() -> dict[str, int]:
        return {"a": 1}

    r = TestClient(app).head("/h")
    assert r.status_code == 200
    assert r.headers["content-type"] == "application/json"


def test_lifespans_compose_in_order_and_state_is_shared() -> None:
    events: list[str] = []

    def part(name: str) -> Any:
        @asynccontextmanager
        async def lifespan(app: App) -> AsyncIterator[dict[str, str]]:
            events.append(f"start:{name}")
            yield {name: name}
            events.append(f"stop:{name}")

        return lifespan

    app = App(lifespan=part("user"))
    app.add_lifespan(part("db"))

    @app.get("/state")
    async def state(request: Any) -> dict[str, str]:
        return {"db": request.state.db, "user": request.state.user}

    with TestClient(app):
        assert events == ["start:db", "start:user"]
    assert events == ["start:db", "start:user", "stop:user", "stop:db"]


def test_route_template_is_exposed_to_middleware() -> None:
    seen: list[str | None] = []

    class Spy:
        def __init__(self, app: ASGIApp) -> None:
            self.app = app

        async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
            await self.app(scope, receive, send)
            seen.append(scope.get("kit.route"))

    app = App(middleware=[Middleware(Spy)])

    @app.get("/items/{item_id}")
    async def item(item_id: int) -> int:
        return item_id

    client = TestClient(app)
    client.get("/items/7")
    client.get("/missing")
    assert seen == ["/items/{item_id}", None]


def test_nested_routers_keep_prefixes() -> None:
    inner = Router(prefix="/inner")

    @inner.get("/x")
    async def x() -> str:
        return "x"

    outer = Router(prefix="/outer")
    outer.include_router(inner)
    app = App()
    app.include_router(outer, prefix="/api")
    assert TestClient(app).get("/api/outer/inner/x").json() == "x"


def test_route_order_decides_even_for_static_paths() -> None:
    app = App()

    @app.get("/items/{name}")
    async def by_name(name: str) -> str:
        return f"param:{name}"

    @app.get("/items/new")
    async def new() -> str:  # shadowed by the route above, as in Starlette
        return "static"

    @app.get("/things")
    async def list_things() -> str:
        return "list"

    @app.post("/things")
    async def add_thing() -> str:
        return "add"

    client = TestClient(app)
    for _ in range(2):  # the second round goes through the static-path shortcut
        assert client.get("/items/new").json() == "param:new"
        assert client.get("/things").json() == "list"
        assert client.post("/things").json() == "add"
        r = client.delete("/things")
        assert r.status_code == 405
        assert set(r.headers["allow"].split(", ")) == {"GET", "HEAD", "POST"}


def test_routes_added_after_start_are_served() -> None:
    app = App()

    @app.get("/a")
    async def a() -> str:
        return "a"

    client = TestClient(app)
    assert client.get("/a").json() == "a"

    @app.get("/b")
    async def b() -> str:
        return "b"

    assert client.get("/b").json() == "b"
    assert client.get("/healthz").status_code == 200


def test_response_headers_reach_every_response_once() -> None:
    async def legacy(request: Any) -> PlainTextResponse:
        return PlainTextResponse("legacy")

    app = App(
        routes=[Route("/legacy", legacy)],
        response_headers={"Server": "svc", "X-Frame-Options": "DENY"},
    )

    @app.get("/point")
    async def point() -> Point:
        return Point(1, 2)

    @app.get("/own")
    async def own() -> PlainTextResponse:
        return PlainTextResponse("mine", headers={"server": "handler"})

    @app.post("/body")
    async def body(point: Point) -> Point:
        return point

    @app.get("/fails")
    async def fails() -> Point:
        raise RuntimeError("boom")

    with TestClient(app, raise_server_exceptions=False) as client:
        answers = [
            client.get("/point"),
            client.get("/legacy"),
            client.get("/nowhere"),
            client.delete("/point"),
            client.post("/body", json={"x": "no"}),
            client.get("/fails"),
            client.get("/healthz"),
        ]
        assert [a.status_code for a in answers] == [200, 200, 404, 405, 422, 500, 200]
        for answer in answers:
            assert answer.headers.get_list("server") == ["svc"], answer.request.url
            assert answer.headers["x-frame-options"] == "DENY"
        assert client.get("/own").headers.get_list("server") == ["handler"]
