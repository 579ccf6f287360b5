"""What a FastAPI user writes first works on kit.App the same way."""

from __future__ import annotations

from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import asynccontextmanager
from typing import Annotated, Any

import msgspec
import pytest
from pydantic import BaseModel
from starlette.testclient import TestClient

import kit
from kit import (
    App,
    HTTPException,
    Path,
    Query,
    RedirectResponse,
    Request,
    Response,
    Settings,
    WebSocket,
    status,
)
from kit.responses import FileResponse, PlainTextResponse, StreamingResponse


class Item(msgspec.Struct):
    name: str


class OutOfStock(Exception):
    pass


class Pet(BaseModel):
    name: str


def test_lifespan_startup_and_shutdown() -> None:
    events: list[str] = []

    @asynccontextmanager
    async def lifespan(app: App) -> AsyncIterator[dict[str, Any]]:
        events.append("startup")
        yield {"greeting": "hello"}  # becomes request.state.greeting
        events.append("shutdown")

    app = App(lifespan=lifespan)

    @app.get("/")
    async def home(request: Request) -> dict[str, str]:
        return {"greeting": request.state.greeting}

    with TestClient(app) as client:
        assert events == ["startup"]
        assert client.get("/").json() == {"greeting": "hello"}
    assert events == ["startup", "shutdown"]


def test_exception_handler_decorator_for_a_class_and_a_status() -> None:
    app = App()

    @app.exception_handler(OutOfStock)
    async def out_of_stock(request: Request, exc: Exception) -> Response:
        return kit.JSONResponse({"error": "out of stock"}, status_code=status.HTTP_409_CONFLICT)

    @app.exception_handler(404)
    def not_found(request: Request, exc: Exception) -> Response:  # a plain function works too
        return PlainTextResponse("nothing here", status_code=404)

    @app.get("/buy")
    async def buy() -> Item:
        raise OutOfStock

    @app.get("/missing")
    async def missing() -> Item:
        raise HTTPException(404, "gone")

    with TestClient(app) as client:
        response = client.get("/buy")
        assert (response.status_code, response.json()) == (409, {"error": "out of stock"})
        assert client.get("/missing").text == "nothing here"
        assert client.get("/no/such/path").text == "nothing here"


def test_http_middleware_decorator() -> None:
    app = App()

    @app.middleware("http")
    async def add_header(
        request: Request, call_next: Callable[[Request], Awaitable[Response]]
    ) -> Response:
        response = await call_next(request)
        response.headers["x-process"] = "1"
        return response

    @app.get("/")
    async def home() -> Item:
        return Item("a")

    with TestClient(app) as client:
        assert client.get("/").headers["x-process"] == "1"
    with pytest.raises(ValueError, match='only "http"'):
        app.middleware("websocket")


def test_websocket_decorator() -> None:
    app = App()

    @app.websocket("/ws")
    async def echo(websocket: WebSocket) -> None:
        await websocket.accept()
        await websocket.send_text("got " + await websocket.receive_text())
        await websocket.close()

    with TestClient(app) as client, client.websocket_connect("/ws") as ws:
        ws.send_text("hi")
        assert ws.receive_text() == "got hi"


def test_status_and_responses_are_importable_from_kit() -> None:
    assert status.HTTP_201_CREATED == 201
    assert kit.status.HTTP_422_UNPROCESSABLE_CONTENT == 422
    for cls in (RedirectResponse, FileResponse, StreamingResponse, kit.HTMLResponse):
        assert issubclass(cls, Response)
    app = App()

    @app.get("/old")
    async def old() -> RedirectResponse:
        return RedirectResponse("/new", status_code=status.HTTP_308_PERMANENT_REDIRECT)

    with TestClient(app) as client:
        response = client.get("/old", follow_redirects=False)
        assert (response.status_code, response.headers["location"]) == (308, "/new")


@pytest.mark.parametrize("minimum", [0, 500])
def test_gzip_is_a_setting_off_by_default(minimum: int) -> None:
    app = App(settings=Settings(gzip_min_size=minimum))
    big = "x" * 1000

    @app.get("/big")
    async def get_big() -> dict[str, str]:
        return {"data": big}

    @app.get("/small")
    async def get_small() -> dict[str, str]:
        return {"data": "x"}

    with TestClient(app) as client:
        response = client.get("/big", headers={"accept-encoding": "gzip"})
        assert response.json() == {"data": big}  # the client decodes it
        compressed = response.headers.get("content-encoding") == "gzip"
        assert compressed is bool(minimum)
        small = client.get("/small", headers={"accept-encoding": "gzip"})
        assert "content-encoding" not in small.headers


def test_query_and_path_take_fastapis_constraints() -> None:
    app = App()

    @app.get("/items/{item_id}")
    async def read(
        item_id: int = Path(ge=1),
        q: str | None = Query(None, max_length=5),
        size: Annotated[int, Query(le=100)] = 10,
    ) -> dict[str, Any]:
        return {"item_id": item_id, "q": q, "size": size}

    with TestClient(app) as client:
        assert client.get("/items/3?q=abc").json() == {"item_id": 3, "q": "abc", "size": 10}
        detail = client.get("/items/0?q=toolong&size=101").json()["detail"]
        assert [(d["type"], d["loc"]) for d in detail] == [
            ("greater_than_equal", ["path", "item_id"]),
            ("string_too_long", ["query", "q"]),
            ("less_than_equal", ["query", "size"]),
        ]
        parameters = client.get("/openapi.json").json()["paths"]["/items/{item_id}"]["get"]
    schemas = {p["name"]: p["schema"] for p in parameters["parameters"]}
    assert schemas["q"]["maxLength"] == 5
    assert schemas["item_id"]["minimum"] == 1
    with pytest.raises(TypeError, match="regex"):
        Query(regex="^a")


def test_what_kit_does_differently_is_refused_in_one_line() -> None:
    app = App()
    with pytest.raises(TypeError, match=r"Pydantic model .*class Pet\(msgspec\.Struct\)") as info:

        @app.post("/pets")
        async def create(pet: Pet) -> None: ...

    assert "\n" not in str(info.value)
    with pytest.raises(TypeError, match=r"App\(lifespan=\.\.\.\)"):
        app.on_event("startup")
    with pytest.raises(TypeError, match=r"App\(lifespan=\.\.\.\)"):
        app.add_event_handler("shutdown", lambda: None)
    with pytest.raises(ImportError, match=r"use kit\.Router"):
        from kit import APIRouter  # noqa: F401
    with pytest.raises(ImportError, match=r"use kit\.App"):
        kit.FastAPI  # noqa: B018
