"""``kit.di.resource``: providers written as open/close halves behave as generator providers do,
on the fast path (one function-scoped resource) and through the general solver alike."""

from typing import Annotated, Any

import pytest
from starlette.testclient import TestClient

from kit import App, BackgroundTasks, Depends, HTTPException, Query, Request
from kit._plan import RESOURCE
from kit.db import Connection, Transaction
from kit.di import resource

Events = list[str]


def resources(events: Events) -> tuple[Any, Any]:
    async def open_thing(request: Request) -> tuple[str, int]:
        events.append("open")
        if request.query_params.get("open") == "fail":
            raise HTTPException(503, "cannot open")
        return "thing", 7

    async def close_thing(state: int, exc: BaseException | None) -> None:
        assert state == 7
        events.append(f"close:{type(exc).__name__ if exc else None}")
        if exc is None and events[-2:-1] == ["fail-close"]:
            raise HTTPException(409, "commit failed")

    thing = resource(open_thing, close_thing, name="thing")
    return thing, open_thing


def make_app(events: Events) -> App:
    thing, _ = resources(events)
    Thing = Annotated[str, Depends(thing, scope="function")]
    app = App()

    @app.get("/fast")
    async def fast(value: Thing, mode: Annotated[str, Query()] = "ok") -> dict[str, str]:
        events.append(f"handler:{value}")
        if mode == "raise":
            raise HTTPException(418, "teapot")
        if mode == "crash":
            raise RuntimeError("boom")
        if mode == "fail-close":
            events.append("fail-close")
        return {"value": value}

    @app.get("/fast-sync")
    def fast_sync(value: Thing) -> dict[str, str]:
        events.append(f"sync:{value}")
        return {"value": value}

    @app.get("/typed")
    async def typed(value: Thing, n: Annotated[int, Query()]) -> dict[str, int]:
        return {"n": n}

    async def other() -> str:
        return "other"

    @app.get("/solver")
    async def solver(
        value: Thing, also: Annotated[str, Depends(other)], tasks: BackgroundTasks
    ) -> dict[str, str]:
        tasks.add_task(events.append, "task")
        events.append(f"handler:{value}:{also}")
        return {"value": value}

    @app.get("/request-scope")
    async def request_scope(value: Annotated[str, Depends(thing)]) -> dict[str, str]:
        events.append(f"handler:{value}")
        return {"value": value}

    return app


@pytest.fixture
def events() -> Events:
    return []


@pytest.fixture
def client(events: Events) -> TestClient:
    return TestClient(make_app(events), raise_server_exceptions=False)


def test_the_fast_path_opens_calls_and_closes_before_the_response(
    client: TestClient, events: Events
) -> None:
    assert client.get("/fast").json() == {"value": "thing"}
    assert events == ["open", "handler:thing", "close:None"]
    events.clear()
    assert client.get("/fast-sync").json() == {"value": "thing"}
    assert events == ["open", "sync:thing", "close:None"]


def test_close_sees_the_handlers_error_and_the_error_decides_the_answer(
    client: TestClient, events: Events
) -> None:
    response = client.get("/fast?mode=raise")
    assert (response.status_code, response.json()) == (418, {"detail": "teapot"})
    assert events == ["open", "handler:thing", "close:HTTPException"]
    events.clear()
    response = client.get("/fast?mode=crash")
    assert response.status_code == 500
    assert "Traceback" not in response.text
    assert events == ["open", "handler:thing", "close:RuntimeError"]


def test_an_error_raised_by_close_is_the_answer(client: TestClient, events: Events) -> None:
    response = client.get("/fast?mode=fail-close")
    assert (response.status_code, response.json()) == (409, {"detail": "commit failed"})


def test_a_failed_open_is_answered_and_nothing_is_closed(
    client: TestClient, events: Events
) -> None:
    response = client.get("/fast?open=fail")
    assert (response.status_code, response.json()) == (503, {"detail": "cannot open"})
    assert events == ["open"]


def test_invalid_parameters_are_a_422_before_anything_is_opened(
    client: TestClient, events: Events
) -> None:
    response = client.get("/typed?n=many")
    assert response.status_code == 422
    assert response.json()["detail"][0]["loc"] == ["query", "n"]
    assert events == []


def test_through_the_general_solver_and_in_request_scope(
    client: TestClient, events: Events
) -> None:
    assert client.get("/solver").json() == {"value": "thing"}
    assert events == ["open", "handler:thing:other", "close:None", "task"]
    events.clear()
    assert client.get("/request-scope").json() == {"value": "thing"}
    assert events == ["open", "handler:thing", "close:None"]


@pytest.mark.anyio
async def test_a_resource_is_still_an_async_generator_provider(events: Events) -> None:
    thing, open_thing = resources(events)
    assert thing.__name__ == "thing"
    assert thing.__doc__ == open_thing.__doc__
    request = Request({"type": "http", "query_string": b"", "headers": []})
    gen = thing(request)
    assert await gen.__anext__() == "thing"
    with pytest.raises(StopAsyncIteration):
        await gen.__anext__()
    assert events == ["open", "close:None"]
    events.clear()
    gen = thing(request)
    await gen.__anext__()
    with pytest.raises(KeyError):
        await gen.athrow(KeyError("x"))
    assert events == ["open", "close:KeyError"]


def test_which_routes_take_the_path_without_a_context(events: Events) -> None:
    app = make_app(events)
    handlers = {route.path: route.handler for route in app.routes if hasattr(route, "handler")}
    assert handlers["/fast"].plan.shape == "steps"
    assert handlers["/fast-sync"].plan.shape == "steps"
    assert handlers["/solver"].plan.shape == "solver"  # a BackgroundTasks needs the Context
    assert handlers["/request-scope"].plan.shape == "steps"  # closed after the response is sent
    db = App()  # kit.db's own dependencies are resources

    @db.get("/c")
    async def c(conn: Connection) -> None: ...

    @db.get("/t")
    async def t(conn: Transaction) -> None: ...

    steps = [route.handler.plan.steps for route in db.routes if hasattr(route, "handler")]
    assert [[step.how for step in each] for each in steps] == [[RESOURCE], [RESOURCE]]
