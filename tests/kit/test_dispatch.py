"""kit.dispatch: kit routes with a fixed path skip Starlette's per-request layers, and nothing a
user relies on notices — their middleware sees every request, their exception handlers answer,
an escaped exception is a JSON 500 (re-raised for the server's log), 404/405 stay the router's.
"""

import asyncio
from collections.abc import Iterator
from typing import Any

import msgspec
import pytest
from starlette.middleware import Middleware
from starlette.requests import Request
from starlette.responses import JSONResponse, PlainTextResponse, StreamingResponse
from starlette.routing import Mount, Route
from starlette.testclient import TestClient
from starlette.types import ASGIApp, Receive, Scope, Send

from kit import App, HTTPException, Settings
from kit.dispatch import Dispatch, ServerErrors


class Seen:
    """A plain ASGI middleware that records every request it sees and what was answered."""

    log: list[tuple[str, str, int]] = []

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return

        async def record(message: Any) -> None:
            if message["type"] == "http.response.start":
                Seen.log.append((scope["method"], scope["path"], message["status"]))
                message["headers"] = [*message.get("headers", []), (b"x-seen", b"1")]
            await send(message)

        await self.app(scope, receive, record)


class Boom(Exception):
    pass


class Teapot(Exception):
    pass


class Point(msgspec.Struct):
    x: int


def build(operations: bool = True) -> App:
    settings = Settings.from_env({}, access_log=False, metrics=operations, docs=False)

    async def legacy(request: Request) -> PlainTextResponse:
        return PlainTextResponse("legacy")

    async def mounted(request: Request) -> PlainTextResponse:
        return PlainTextResponse("mounted " + request.path_params["rest"])

    async def teapot(request: Request, exc: Exception) -> JSONResponse:
        return JSONResponse({"detail": "short and stout"}, status_code=418)

    app = App(
        settings=settings,
        middleware=[Middleware(Seen)],
        routes=[Route("/legacy", legacy), Mount("/sub", routes=[Route("/{rest}", mounted)])],
        exception_handlers={Teapot: teapot},
    )

    @app.get("/fixed")
    async def fixed() -> Point:
        return Point(1)

    @app.get("/items/{item_id}")
    async def item(item_id: int) -> Point:
        return Point(item_id)

    @app.post("/fixed-post")
    async def fixed_post(point: Point) -> Point:
        return point

    @app.get("/teapot")
    async def raises_teapot() -> Point:
        raise Teapot

    @app.get("/missing")
    async def raises_http() -> Point:
        raise HTTPException(404, "no such thing")

    @app.get("/request")
    async def with_request(request: Request) -> dict[str, Any]:
        return {
            "endpoint": request.scope["endpoint"].__name__,
            "url": str(request.url_for("fixed")),
        }

    return app


@pytest.fixture(params=[True, False], ids=["operations", "bare"])
def client(request: pytest.FixtureRequest) -> Iterator[TestClient]:
    Seen.log = []
    with TestClient(build(operations=request.param)) as client:
        yield client


def test_the_fixed_path_route_is_dispatched_directly() -> None:
    app = build()
    with TestClient(app) as client:
        assert client.get("/fixed").json() == {"x": 1}
    layer: Any = app.middleware_stack
    while not isinstance(layer, Dispatch):
        layer = layer.app
    assert layer.router.table.static_route("/fixed", "GET") is not None
    assert layer.router.table.static_route("/fixed", "POST") is None  # the router answers 405
    assert layer.router.table.static_route("/items/{item_id}", "GET") is None


CASES = [
    ("GET", "/fixed", None, 200),  # a kit route with a fixed path: dispatched directly
    ("POST", "/fixed-post", {"x": 5}, 200),
    ("POST", "/fixed-post", {"x": "no"}, 422),
    ("GET", "/items/7", None, 200),  # path parameters: the router's scan
    ("GET", "/legacy", None, 200),  # a plain Starlette route
    ("GET", "/sub/deep", None, 200),  # a Mount
    ("GET", "/nowhere", None, 404),
    ("DELETE", "/fixed", None, 405),
    ("GET", "/teapot", None, 418),  # the user's exception handler
    ("GET", "/missing", None, 404),  # HTTPException from a handler
]


def test_user_middleware_sees_every_request(client: TestClient) -> None:
    responses = [client.request(m, path, json=body) for m, path, body, _ in CASES]
    assert [r.status_code for r in responses] == [status for *_, status in CASES]
    assert all(r.headers["x-seen"] == "1" for r in responses)
    assert Seen.log == [(m, path, status) for m, path, _, status in CASES]
    assert responses[7].headers["allow"] == "GET, HEAD"
    assert responses[8].json() == {"detail": "short and stout"}
    assert responses[9].json() == {"detail": "no such thing"}


def test_the_request_sees_what_starlette_sets(client: TestClient) -> None:
    assert client.get("/request").json() == {
        "endpoint": "with_request",
        "url": "http://testserver/fixed",
    }


def test_under_a_root_path_the_router_matches(client: TestClient) -> None:
    mounted = App(routes=[Mount("/api", app=client.app)])
    with TestClient(mounted) as outer:
        assert outer.get("/api/fixed").json() == {"x": 1}
        assert outer.get("/api/items/3").json() == {"x": 3}
        assert outer.get("/api/nowhere").status_code == 404


class Explode:
    """User middleware that fails before or after the response started."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] == "http" and scope["path"] == "/before":
            raise Boom("before")
        await self.app(scope, receive, send)
        if scope["type"] == "http" and scope["path"] == "/after":
            raise Boom("after")


@pytest.mark.parametrize("operations", [True, False], ids=["operations", "bare"])
def test_an_escaped_exception_is_a_json_500_then_reraised(operations: bool) -> None:
    settings = Settings.from_env({}, access_log=False, metrics=operations, docs=False)
    app = App(settings=settings, middleware=[Middleware(Explode)])

    @app.get("/before")
    async def before() -> Point:
        return Point(1)

    @app.get("/after")
    async def after() -> Point:
        return Point(2)

    with TestClient(app, raise_server_exceptions=False) as client:
        response = client.get("/before")
        assert response.status_code == 500
        assert response.json() == {"detail": "Internal Server Error"}
        # the response had started: it is not answered twice
        response = client.get("/after")
        assert response.status_code == 200
        assert response.json() == {"x": 2}
    with TestClient(app) as client, pytest.raises(Boom, match="before"):
        client.get("/before")


def test_server_errors_wraps_send_only_when_nothing_outside_tracks_it() -> None:
    sent: list[dict[str, Any]] = []

    async def app(scope: Scope, receive: Receive, send: Send) -> None:
        await send({"type": "http.response.start", "status": 200, "headers": []})
        raise Boom("late")

    seen: list[Exception] = []

    async def handler(request: Request, exc: Exception) -> PlainTextResponse:
        seen.append(exc)  # called, as Starlette calls it (to report); its answer is dropped
        return PlainTextResponse("dropped", status_code=500)

    async def send(message: Any) -> None:
        sent.append(message)

    async def receive() -> Any:
        return {"type": "http.disconnect"}

    errors = ServerErrors(app, handler)
    with pytest.raises(Boom):
        asyncio.run(errors({"type": "http", "method": "GET", "path": "/"}, receive, send))
    assert [m["status"] for m in sent] == [200]
    assert [str(exc) for exc in seen] == ["late"]


def test_without_user_middleware_other_routes_still_get_the_json_500() -> None:
    async def legacy(request: Request) -> PlainTextResponse:
        raise Boom("legacy")

    async def broken_handler(request: Request, exc: Exception) -> JSONResponse:
        raise RuntimeError("the handler itself fails")

    app = App(routes=[Route("/legacy", legacy)], exception_handlers={Teapot: broken_handler})

    @app.get("/teapot")
    async def raises_teapot() -> Point:
        raise Teapot

    layer: Any = app.build_middleware_stack()
    while not isinstance(layer, Dispatch):
        layer = layer.app
    assert isinstance(layer.errors, ServerErrors)  # no user middleware: Dispatch answers
    with TestClient(app, raise_server_exceptions=False) as client:
        for path in ("/legacy", "/teapot"):
            response = client.get(path)
            assert response.status_code == 500, path
            assert response.json() == {"detail": "Internal Server Error"}


def test_path_parameter_routes_match_as_the_router_would() -> None:
    async def plain(request: Request) -> PlainTextResponse:
        return PlainTextResponse("plain " + request.path_params["name"])

    app = App(routes=[Route("/shared/{name}", plain)])

    @app.get("/items/special")
    async def special() -> Point:
        return Point(-1)

    @app.get("/items/{item_id}")
    async def by_id(item_id: int) -> Point:
        return Point(item_id)

    @app.get("/items/{item_id}/twice")
    async def twice(item_id: int) -> Point:
        return Point(2 * item_id)

    @app.get("/shared/{name}/kit")
    async def shared(name: str) -> Point:
        return Point(len(name))

    @app.delete("/items/{item_id}")
    async def delete(item_id: int) -> None:
        return None

    router = app.router
    with TestClient(app) as client:
        assert client.get("/items/4").json() == {"x": 4}
        assert client.get("/items/special").json() == {"x": -1}  # the earlier route wins
        assert client.get("/items/4/twice").json() == {"x": 8}
        assert client.get("/items/x").status_code == 422
        assert client.delete("/items/4").status_code == 200
        put = client.put("/items/4")
        assert (put.status_code, put.headers["allow"]) == (405, "DELETE, GET, HEAD")
        assert client.get("/shared/abc").text == "plain abc"  # a plain Route: the scan
        assert client.get("/shared/abc/kit").json() == {"x": 3}
        assert client.get("/items/4/", follow_redirects=False).status_code == 307
        assert client.get("/nowhere/4").status_code == 404
    listed = router.table.routes_for("/items/4")
    assert listed is not None
    assert [r.path for r in listed][:3] == [
        "/items/special",
        "/items/{item_id}",
        "/items/{item_id}/twice",
    ]
    assert router.table.routes_for("/shared/abc") is None


def test_a_route_that_can_match_any_first_segment_turns_the_shortcut_off() -> None:
    app = App(routes=[Mount("/", routes=[Route("/{anything}", lambda r: PlainTextResponse("m"))])])

    @app.get("/items/{item_id}")
    async def by_id(item_id: int) -> Point:
        return Point(item_id)

    with TestClient(app) as client:  # the Mount comes first, as in Starlette: its 404
        assert client.get("/items/4").status_code == 404
    assert app.router.table.routes_for("/items/4") is None


@pytest.mark.parametrize("middleware", [False, True], ids=["alone", "user-middleware"])
@pytest.mark.parametrize("operations", [False, True], ids=["bare", "operations"])
def test_one_500_layer_answers_before_the_start_and_only_then(
    middleware: bool, operations: bool
) -> None:
    """Whatever is inside it (kit routes, other routes, the user's middleware) and whether
    or not kit's observer tracks the response, an exception is answered with the JSON 500
    only if nothing was sent yet; after the start it is raised, never answered twice."""

    async def stream() -> Any:
        yield b"partial"
        raise Boom("mid-stream")

    async def legacy_late(request: Request) -> StreamingResponse:
        return StreamingResponse(stream())

    async def legacy_early(request: Request) -> PlainTextResponse:
        raise Boom("early")

    class Failing:
        def __init__(self, app: ASGIApp) -> None:
            self.app = app

        async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
            if scope["type"] == "http" and scope["path"] == "/middleware":
                raise Boom("in the middleware")
            await self.app(scope, receive, send)

    settings = Settings.from_env({}, metrics=operations, access_log=False)
    app = App(
        settings=settings,
        routes=[Route("/late", legacy_late), Route("/early", legacy_early)],
        middleware=[Middleware(Failing)] if middleware else None,
    )

    @app.get("/kit-late")
    async def kit_late() -> StreamingResponse:
        return StreamingResponse(stream())

    layer: Any = app.build_middleware_stack()
    while not isinstance(layer, ServerErrors | Dispatch):
        layer = layer.app
    if middleware:  # a layer of its own, outside the user's middleware
        assert isinstance(layer, ServerErrors)
        assert layer.wrap
        while not isinstance(layer, Dispatch):
            layer = layer.app
        assert layer.errors is None
    else:  # nothing between: Dispatch answers what escapes, one layer less per request
        assert isinstance(layer, Dispatch)
        assert isinstance(layer.errors, ServerErrors)
    with TestClient(app, raise_server_exceptions=False) as client:
        early = client.get("/early")
        assert (early.status_code, early.json()) == (500, {"detail": "Internal Server Error"})
        for path in ("/late", "/kit-late"):
            late = client.get(path)  # one start, the partial body: not a second answer
            assert (late.status_code, late.content) == (200, b"partial"), path
        if middleware:
            failed = client.get("/middleware")
            assert (failed.status_code, failed.json()) == (500, {"detail": "Internal Server Error"})
