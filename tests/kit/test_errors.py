"""Every way a client can get a request wrong gets a 4xx JSON answer, in FastAPI's shape."""

import asyncio
import logging
from typing import Annotated, Any

import fastapi
import msgspec
import pydantic
import pytest
from starlette.exceptions import HTTPException as StarletteHTTPException
from starlette.testclient import TestClient

from kit import App, HTTPException, PlainTextResponse
from kit.errors import DEFAULT_HANDLERS, DIRECT_ANSWERS, ErrorItem, ValidationFailed

EMAIL = r"^[^@\s]+@[^@\s]+\.[^@\s]+$"


class User(msgspec.Struct):
    name: Annotated[str, msgspec.Meta(min_length=1, max_length=100)]
    age: Annotated[int, msgspec.Meta(ge=0, le=150)]
    email: Annotated[str, msgspec.Meta(pattern=EMAIL)]
    tags: Annotated[list[str], msgspec.Meta(max_length=10)] = []


class PydanticUser(pydantic.BaseModel):
    name: Annotated[str, pydantic.Field(min_length=1, max_length=100)]
    age: Annotated[int, pydantic.Field(ge=0, le=150)]
    email: Annotated[str, pydantic.Field(pattern=EMAIL)]
    tags: Annotated[list[str], pydantic.Field(max_length=10)] = []


def kit_app() -> App:
    app = App()

    @app.post("/users")
    async def create(user: User, limit: int = 10) -> User:
        return user

    @app.get("/boom")
    async def boom() -> None:
        raise RuntimeError("password=hunter2")

    @app.get("/teapot")
    async def teapot() -> None:
        raise HTTPException(418, {"reason": "short and stout"}, headers={"X-Pot": "1"})

    @app.get("/sync-boom")
    def sync_boom() -> None:
        raise KeyError("secret")

    return app


def fastapi_app() -> fastapi.FastAPI:
    app = fastapi.FastAPI()

    @app.post("/users")
    async def create(user: PydanticUser, limit: int = 10) -> PydanticUser:
        return user

    return app


@pytest.fixture(scope="module")
def kit_client() -> TestClient:
    return TestClient(kit_app(), raise_server_exceptions=False)


@pytest.fixture(scope="module")
def fastapi_client() -> TestClient:
    return TestClient(fastapi_app())


JSON = {"content-type": "application/json"}

# Bodies that are valid JSON but fail validation: kit and FastAPI must name the same fields.
INVALID_BODIES: list[Any] = [
    {},
    {"name": "", "age": -1, "email": "nope", "tags": ["a"] * 11},
    {"name": "a" * 101, "age": 151, "email": "a@b.co"},
    {"name": 1, "age": "x", "email": None},
    {"name": "ok", "age": 1.5, "email": "a@b.co"},
    {"name": "ok", "age": 1, "email": "a@b.co", "tags": [1, "b", None]},
    {"name": "ok", "age": 10**30, "email": "a@b.co"},
    {"name": "ok", "email": "a@b.co"},
    [],
    "a string",
    None,
]


@pytest.mark.parametrize("body", INVALID_BODIES, ids=lambda b: repr(b)[:40])
def test_422_locations_match_fastapi(
    body: Any, kit_client: TestClient, fastapi_client: TestClient
) -> None:
    raw = msgspec.json.encode(body)
    ours = kit_client.post("/users", content=raw, headers=JSON)
    theirs = fastapi_client.post("/users", content=raw, headers=JSON)
    assert ours.status_code == theirs.status_code == 422
    our_items, their_items = ours.json()["detail"], theirs.json()["detail"]
    for item in our_items:
        assert set(item) >= {"type", "loc", "msg", "input"}
    assert sorted(map(str, (i["loc"] for i in our_items))) == sorted(
        map(str, (i["loc"] for i in their_items))
    )


@pytest.mark.parametrize(
    ("raw", "status", "error_type"),
    [
        (b"{", 422, "json_invalid"),
        (b'{"name": "a",}', 422, "json_invalid"),
        (b'{"name": "\xff\xfe"}', 422, "json_invalid"),
        (b"\xff\xfe\xfd", 422, "json_invalid"),
        (b'{"name": "a", "age": NaN, "email": "a@b.co"}', 422, "json_invalid"),
        (b'{"name": "a", "age": 1e999, "email": "a@b.co"}', 422, "number_out_of_range"),
        (b"[" * 50_000 + b"]" * 50_000, 422, "dict_type"),
        (b'{"name": "a", "age": 1, "email": "a@b.co", "tags": ' + b"[" * 50_000 + b"}", 422, None),
    ],
    ids=[
        "truncated",
        "trailing-comma",
        "bad-utf8-string",
        "bad-utf8",
        "nan",
        "huge",
        "deep",
        "deep2",
    ],
)
def test_malformed_bodies_are_422_not_500(
    raw: bytes, status: int, error_type: str | None, kit_client: TestClient
) -> None:
    r = kit_client.post("/users", content=raw, headers=JSON)
    assert r.status_code == status, r.text
    detail = r.json()["detail"]
    assert detail[0]["loc"][0] == "body"
    if error_type is not None:
        assert detail[0]["type"] == error_type


def test_content_type_is_checked(kit_client: TestClient) -> None:
    body = b'{"name": "a", "age": 1, "email": "a@b.co"}'
    for headers in ({}, {"content-type": "text/plain"}, {"content-type": "application/xml"}):
        r = kit_client.post("/users", content=body, headers=headers)
        assert r.status_code == 415
        assert r.json()["detail"].startswith("Unsupported Media Type")
    for ok in ("application/json; charset=utf-8", "application/merge-patch+json"):
        assert (
            kit_client.post("/users", content=body, headers={"content-type": ok}).status_code == 200
        )


def test_empty_body_is_missing(kit_client: TestClient) -> None:
    r = kit_client.post("/users", headers=JSON)
    assert r.status_code == 422
    assert r.json() == {
        "detail": [{"type": "missing", "loc": ["body"], "msg": "Field required", "input": None}]
    }


def test_oversized_body_is_413_from_content_length_without_reading(kit_client: TestClient) -> None:
    r = kit_client.post("/users", content=b"x" * (1024 * 1024 + 1), headers=JSON)
    assert r.status_code == 413
    assert r.json() == {"detail": "Request body exceeds 1048576 bytes"}


def test_oversized_chunked_body_is_413() -> None:
    app = App(max_body_size=1000)

    @app.post("/echo")
    async def echo(body: dict[str, str]) -> dict[str, str]:
        return body

    def chunks() -> Any:
        for _ in range(100):
            yield b"x" * 100

    r = TestClient(app).post("/echo", content=chunks(), headers=JSON)
    assert r.status_code == 413


@pytest.mark.parametrize(
    "parts",
    [
        [b'{"name": "a", "age": 1, "email": "a@b.co"}'],
        [b"", b'{"name": "a", ', b"", b'"age": 1, "email": "a@b.co"}', b""],
        [b'{"name": "a", "age"', b": 1, ", b'"email": "a@b.co"}'],
    ],
    ids=["one", "with-empty-messages", "three"],
)
def test_a_body_in_several_messages_reads_whole(parts: list[bytes]) -> None:
    """The body as the server hands it over, message by message (a chunked upload)."""
    app = kit_app()
    messages = [
        {"type": "http.request", "body": part, "more_body": i < len(parts) - 1}
        for i, part in enumerate(parts)
    ]
    sent: list[dict[str, Any]] = []

    async def receive() -> dict[str, Any]:
        return messages.pop(0)

    async def send(message: dict[str, Any]) -> None:
        sent.append(message)

    async def request() -> None:
        scope = {
            "type": "http",
            "method": "POST",
            "path": "/users",
            "raw_path": b"/users",
            "root_path": "",
            "query_string": b"",
            "headers": [(b"content-type", b"application/json")],
            "app": app,
        }
        async with app.router.lifespan_context(app):
            await app(scope, receive, send)

    asyncio.run(request())
    assert sent[0]["status"] == 200
    assert msgspec.json.decode(sent[1]["body"]) == {
        "name": "a",
        "age": 1,
        "email": "a@b.co",
        "tags": [],
    }


def test_invalid_content_length_is_400(kit_client: TestClient) -> None:
    scope_headers = {"content-length": "abc", "content-type": "application/json"}
    r = kit_client.post("/users", content=b"{}", headers=scope_headers)
    assert r.status_code in (400, 422)


def test_unknown_route_and_wrong_method_are_json(kit_client: TestClient) -> None:
    r = kit_client.get("/nowhere")
    assert (r.status_code, r.json()) == (404, {"detail": "Not Found"})
    r = kit_client.put("/users")
    assert r.status_code == 405
    assert r.json() == {"detail": "Method Not Allowed"}
    assert r.headers["allow"] == "POST"


def test_http_exception_keeps_status_detail_and_headers(kit_client: TestClient) -> None:
    r = kit_client.get("/teapot")
    assert r.status_code == 418
    assert r.json() == {"detail": {"reason": "short and stout"}}
    assert r.headers["x-pot"] == "1"


@pytest.mark.parametrize("path", ["/boom", "/sync-boom"])
def test_unhandled_exception_is_a_bare_500_and_logged(
    path: str, kit_client: TestClient, caplog: pytest.LogCaptureFixture
) -> None:
    with caplog.at_level(logging.ERROR, logger="kit.errors"):
        r = kit_client.get(path)
    assert r.status_code == 500
    assert r.json() == {"detail": "Internal Server Error"}
    assert "hunter2" not in r.text
    assert "secret" not in r.text
    assert any(record.exc_info for record in caplog.records)


def test_query_errors_combine_with_body_errors(kit_client: TestClient) -> None:
    r = kit_client.post("/users?limit=x", json={"name": "a", "age": 1, "email": "a@b.co"})
    assert r.status_code == 422
    assert r.json()["detail"][0]["loc"] == ["query", "limit"]


def test_custom_exception_handler_wins() -> None:
    class Conflict(Exception):
        pass

    async def on_conflict(request: Any, exc: Exception) -> Any:
        from kit import JSONResponse

        return JSONResponse({"detail": "conflict"}, status_code=409)

    app = App(exception_handlers={Conflict: on_conflict})

    @app.get("/c")
    async def c() -> None:
        raise Conflict

    r = TestClient(app).get("/c")
    assert (r.status_code, r.json()) == (409, {"detail": "conflict"})


def test_pattern_errors_show_the_pattern_as_written(kit_client: TestClient) -> None:
    r = kit_client.post("/users", json={"name": "a", "age": 1, "email": "nope"})
    item = r.json()["detail"][0]
    assert item["ctx"] == {"pattern": EMAIL}
    assert item["msg"] == f"String should match pattern '{EMAIL}'"


class _Unencodable:
    pass


@pytest.mark.parametrize(
    "exc",
    [
        HTTPException(404, "Item not found"),
        HTTPException(404),
        HTTPException(418, {"reason": "short and stout", "sizes": [1, 2]}),
        HTTPException(599),
        HTTPException(200, None),
        StarletteHTTPException(409),
        StarletteHTTPException(403, "Forbidden", headers={}),
        HTTPException(401, "no", headers={"WWW-Authenticate": "Bearer"}),
        HTTPException(204),
        HTTPException(304),
        HTTPException(103),
        HTTPException(500, _Unencodable()),
        ValidationFailed([ErrorItem("missing", ["query", "q"], "Field required", None)]),
        ValidationFailed([]),
    ],
    ids=repr,
)
def test_kit_handlers_answered_directly_send_the_bytes_of_their_response(exc: Exception) -> None:
    """A 404 a handler raises is sent without the handler's Request and Response: the same
    status, headers and body, or the handler itself where only it can say."""
    handler = next(h for cls, h in DEFAULT_HANDLERS.items() if isinstance(exc, cls))
    answer = DIRECT_ANSWERS[handler](exc)
    if answer is None:
        assert isinstance(exc, StarletteHTTPException)
        assert exc.headers or exc.status_code in (103, 204, 304) or exc.status_code == 500
        return
    response = asyncio.run(handler(None, exc))
    assert answer == (response.status_code, response.raw_headers, bytes(response.body))


def test_a_raised_http_exception_is_answered_as_its_handler_would() -> None:
    app = App()

    @app.get("/items/{item_id}")
    async def item(item_id: int) -> None:
        raise HTTPException(404, f"no item {item_id}")

    @app.get("/odd")
    async def odd() -> None:
        raise HTTPException(500, _Unencodable())

    client = TestClient(app, raise_server_exceptions=False)
    r = client.get("/items/7")
    assert (r.status_code, r.content) == (404, b'{"detail":"no item 7"}')
    assert r.headers["content-type"] == "application/json"
    assert r.headers["content-length"] == str(len(r.content))
    r = client.get("/odd")  # the handler fails to encode it: the 500 handler answers
    assert (r.status_code, r.json()) == (500, {"detail": "Internal Server Error"})


def test_a_handler_registered_for_a_status_or_the_class_replaces_kits() -> None:
    async def by_status(request: Any, exc: Exception) -> Any:
        return PlainTextResponse("gone", status_code=404)

    async def by_class(request: Any, exc: Exception) -> Any:
        return PlainTextResponse("nope", status_code=exc.status_code)  # type: ignore[attr-defined]

    app = App(exception_handlers={404: by_status, StarletteHTTPException: by_class})

    @app.get("/missing")
    async def missing() -> None:
        raise HTTPException(404, "x")

    @app.get("/forbidden")
    async def forbidden() -> None:
        raise HTTPException(403, "x")

    client = TestClient(app)
    assert (client.get("/missing").text, client.get("/nowhere").text) == ("gone", "gone")
    r = client.get("/forbidden")
    assert (r.status_code, r.text) == (403, "nope")


def test_http_exception_has_starlettes_attributes() -> None:
    ours, theirs = (
        HTTPException(404, headers={"X": "1"}),
        StarletteHTTPException(404, None, {"X": "1"}),
    )
    assert vars(ours) == vars(theirs)
    assert (ours.args, str(ours), repr(ours)) == (
        (404,),
        str(theirs),
        "HTTPException(status_code=404, detail='Not Found')",
    )
