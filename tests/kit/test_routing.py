"""kit.routing: route options, include_router, the executor's steps and their order."""

from __future__ import annotations

import traceback
from collections.abc import AsyncIterator
from typing import Annotated

import msgspec
import pytest
from starlette.responses import HTMLResponse, PlainTextResponse, Response
from starlette.testclient import TestClient

from kit import App, Depends, HTTPException, Request, Router
from kit._executor import Executor
from kit.routing import APIRoute, RouteOptions


class Item(msgspec.Struct):
    name: str


def test_decorator_keywords_become_one_options_object() -> None:
    app = App()

    @app.post("/items", status_code=201, tags=["items"], summary="Create", deprecated=True)
    async def create(item: Item) -> Item:
        return item

    route = next(r for r in app.routes if isinstance(r, APIRoute))
    assert route.options == RouteOptions(
        status_code=201, tags=("items",), summary="Create", deprecated=True
    )
    assert isinstance(route.app, Executor)


def test_include_router_copies_the_options_and_adds_tags_and_dependencies() -> None:
    seen: list[str] = []

    async def outer() -> None:
        seen.append("outer")

    async def inner() -> None:
        seen.append("inner")

    router = Router(prefix="/v1", tags=["v1"], dependencies=[Depends(inner)])

    @router.post("/items", status_code=201, max_body_size=64, response_description="Made")
    async def create(item: Item) -> Item:
        return item

    app = App()
    app.include_router(router, prefix="/api", tags=["public"], dependencies=[Depends(outer)])
    route = next(r for r in app.routes if isinstance(r, APIRoute))
    assert route.path == "/api/v1/items"
    assert route.tags == ["v1", "public"]
    assert (route.status_code, route.max_body_size) == (201, 64)
    assert route.response_description == "Made"
    client = TestClient(app)
    assert client.post("/api/v1/items", json={"name": "a"}).status_code == 201
    assert seen == ["outer", "inner"]
    assert client.post("/api/v1/items", json={"name": "a" * 100}).status_code == 413


def test_guards_answer_before_the_body_is_read() -> None:
    async def authenticated(request: Request) -> str:
        if request.headers.get("authorization") != "Bearer ok":
            raise HTTPException(401, "Not authenticated")
        return "user"

    async def create(item: Item) -> Item:
        return item

    app = App()
    app.add_api_route(
        "/items",
        create,
        methods=["POST"],
        options=RouteOptions(guards=[Depends(authenticated)], max_body_size=16),
    )
    client = TestClient(app)
    too_big = b'{"name": "' + b"x" * 100 + b'"}'
    # 401, not 413 (too big) nor 422 (invalid): the guard ran first
    r = client.post("/items", content=too_big, headers={"content-type": "application/json"})
    assert r.status_code == 401
    r = client.post("/items", content=b"{", headers={"content-type": "application/json"})
    assert r.status_code == 401
    ok = {"authorization": "Bearer ok", "content-type": "application/json"}
    assert client.post("/items", content=too_big, headers=ok).status_code == 413


def test_a_guard_cannot_take_the_body() -> None:
    async def peek(item: Item) -> None:
        return None

    async def create(item: Item) -> None:
        return None

    with pytest.raises(TypeError, match="before the body"):
        APIRoute("/items", create, methods=["POST"], guards=[Depends(peek)])


def test_a_failure_shows_the_named_steps_in_its_traceback() -> None:
    frames: list[str] = []
    app = App()

    @app.get("/boom")
    async def boom(x: int = 0) -> None:
        try:
            raise RuntimeError("boom")
        except RuntimeError as exc:
            frames.extend(f.name for f in traceback.extract_stack(exc.__traceback__.tb_frame))
            raise

    assert TestClient(app, raise_server_exceptions=False).get("/boom").status_code == 500
    assert frames[-2:] == ["__call__", "boom"]  # the executor, then the handler


events: list[str] = []


def opened(name: str):  # type: ignore[no-untyped-def]
    async def resource() -> AsyncIterator[str]:
        events.append(f"open:{name}")
        try:
            yield name
        except Exception as exc:
            events.append(f"error:{name}:{type(exc).__name__}")
            raise
        finally:
            events.append(f"close:{name}")

    return resource


first, second = opened("a"), opened("b")


def test_cleanup_runs_once_on_success_and_once_on_error_in_reverse_order() -> None:
    events.clear()
    app = App()

    @app.get("/ok")
    async def ok(
        a: Annotated[str, Depends(first)], b: Annotated[str, Depends(second)]
    ) -> list[str]:
        return [a, b]

    @app.get("/fail")
    async def fail(a: Annotated[str, Depends(first)], b: Annotated[str, Depends(second)]) -> None:
        raise HTTPException(409, "no")

    client = TestClient(app)
    assert client.get("/ok").json() == ["a", "b"]
    assert events == ["open:a", "open:b", "close:b", "close:a"]
    events.clear()
    assert client.get("/fail").status_code == 409
    assert events == [
        "open:a",
        "open:b",
        "error:b:HTTPException",
        "close:b",
        "error:a:HTTPException",
        "close:a",
    ]


@pytest.mark.parametrize("cls", [PlainTextResponse, HTMLResponse])
def test_a_str_for_a_text_response_class_is_what_starlette_would_send(
    cls: type[PlainTextResponse],
) -> None:
    app = App()

    @app.get("/fast", response_class=cls)
    async def fast() -> str:
        return "héllo <b>"

    @app.get("/starlette")
    async def by_hand() -> PlainTextResponse:
        return cls("héllo <b>")

    @app.post("/created", response_class=cls, status_code=201)
    async def created(response: Response) -> str:
        response.headers["x-extra"] = "1"  # an injected Response: merged as before
        return "made"

    @app.get("/passthrough", response_class=cls)
    async def passthrough() -> PlainTextResponse:
        return PlainTextResponse("as returned", status_code=202)

    client = TestClient(app)
    fast_answer, by_hand_answer = client.get("/fast"), client.get("/starlette")
    assert fast_answer.content == by_hand_answer.content == "héllo <b>".encode()
    same = [(k, v) for k, v in by_hand_answer.headers.items() if k != "x-request-id"]
    assert [(k, v) for k, v in fast_answer.headers.items() if k != "x-request-id"] == same
    made = client.post("/created")
    assert (made.status_code, made.text, made.headers["x-extra"]) == (201, "made", "1")
    assert made.headers["content-type"] == by_hand_answer.headers["content-type"]
    passed = client.get("/passthrough")
    assert (passed.status_code, passed.text) == (202, "as returned")
