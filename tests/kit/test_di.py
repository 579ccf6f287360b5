"""Dependency injection: order, caching, cleanup, scopes, errors."""

from collections.abc import AsyncIterator, Iterator
from typing import Annotated, Any

import pytest
from starlette.testclient import TestClient

from kit import App, BackgroundTasks, Depends, Header, HTTPException, Query, Request, Response


class Recorder:
    def __init__(self) -> None:
        self.events: list[str] = []


def make_app(rec: Recorder) -> App:
    app = App()

    async def settings() -> dict[str, int]:
        rec.events.append("settings")
        return {"page_size": 5}

    async def resource() -> AsyncIterator[str]:
        rec.events.append("resource:open")
        try:
            yield "res"
        except Exception as exc:
            rec.events.append(f"resource:error:{type(exc).__name__}")
            raise
        finally:
            rec.events.append("resource:close")

    async def transaction() -> AsyncIterator[str]:
        rec.events.append("tx:begin")
        try:
            yield "tx"
        except Exception:
            rec.events.append("tx:rollback")
            raise
        else:
            rec.events.append("tx:commit")

    def sync_gen() -> Iterator[str]:
        rec.events.append("sync:open")
        yield "sync"
        rec.events.append("sync:close")

    def sync_provider(conf: Annotated[dict[str, int], Depends(settings)]) -> int:
        rec.events.append("sync_provider")
        return conf["page_size"] * 2

    async def current_user(
        authorization: Annotated[str | None, Header()] = None,
    ) -> str:
        if authorization != "Bearer ok":
            raise HTTPException(401, "Not authenticated", headers={"WWW-Authenticate": "Bearer"})
        return "alice"

    async def paging(
        conf: Annotated[dict[str, int], Depends(settings)],
        page: Annotated[int, Query()] = 1,
    ) -> tuple[int, int]:
        return page, conf["page_size"]

    @app.get("/chain")
    async def chain(
        p: Annotated[tuple[int, int], Depends(paging)],
        conf: Annotated[dict[str, int], Depends(settings)],
        res: Annotated[str, Depends(resource)],
        doubled: Annotated[int, Depends(sync_provider)],
        s: Annotated[str, Depends(sync_gen)],
    ) -> dict[str, Any]:
        rec.events.append("handler")
        return {"page": p[0], "size": p[1], "res": res, "doubled": doubled, "sync": s}

    @app.get("/uncached")
    async def uncached(
        a: Annotated[dict[str, int], Depends(settings, use_cache=False)],
        b: Annotated[dict[str, int], Depends(settings, use_cache=False)],
    ) -> int:
        return a["page_size"] + b["page_size"]

    @app.get("/fails")
    async def fails(res: Annotated[str, Depends(resource)]) -> None:
        rec.events.append("handler")
        raise HTTPException(409, "conflict")

    @app.get("/crashes")
    async def crashes(res: Annotated[str, Depends(resource)]) -> None:
        raise RuntimeError("boom")

    @app.post("/write")
    async def write(
        tx: Annotated[str, Depends(transaction, scope="function")],
        res: Annotated[str, Depends(resource)],
        fail: bool = False,
    ) -> dict[str, str]:
        rec.events.append("handler")
        if fail:
            raise HTTPException(400, "bad")
        return {"tx": tx}

    @app.get("/me")
    async def me(user: Annotated[str, Depends(current_user)]) -> dict[str, str]:
        return {"user": user}

    @app.get("/bad-param-in-dep")
    async def bad(p: Annotated[tuple[int, int], Depends(paging)], other: int = 0) -> int:
        rec.events.append("handler")
        return p[0]

    @app.get("/background")
    async def background(tasks: BackgroundTasks, request: Request) -> dict[str, bool]:
        tasks.add_task(rec.events.append, "background")
        return {"ok": True}

    @app.get("/response-param")
    async def response_param(response: Response) -> dict[str, bool]:
        response.headers["X-Extra"] = "1"
        response.set_cookie("seen", "yes")
        response.status_code = 202
        return {"ok": True}

    return app


@pytest.fixture
def rec() -> Recorder:
    return Recorder()


@pytest.fixture
def client(rec: Recorder) -> TestClient:
    return TestClient(make_app(rec), raise_server_exceptions=False)


def test_dependencies_resolve_in_order_and_are_cached(client: TestClient, rec: Recorder) -> None:
    r = client.get("/chain?page=2")
    assert r.json() == {"page": 2, "size": 5, "res": "res", "doubled": 10, "sync": "sync"}
    assert rec.events.count("settings") == 1
    assert rec.events == [
        "settings",
        "resource:open",
        "sync_provider",
        "sync:open",
        "handler",
        "sync:close",
        "resource:close",
    ]


def test_use_cache_false_calls_again(client: TestClient, rec: Recorder) -> None:
    assert client.get("/uncached").json() == 10
    assert rec.events.count("settings") == 2


def test_cleanup_sees_handler_errors(client: TestClient, rec: Recorder) -> None:
    r = client.get("/fails")
    assert (r.status_code, r.json()) == (409, {"detail": "conflict"})
    assert rec.events == [
        "resource:open",
        "handler",
        "resource:error:HTTPException",
        "resource:close",
    ]


def test_cleanup_runs_when_handler_crashes(client: TestClient, rec: Recorder) -> None:
    r = client.get("/crashes")
    assert r.status_code == 500
    assert rec.events[-2:] == ["resource:error:RuntimeError", "resource:close"]


def test_function_scope_exits_before_request_scope(client: TestClient, rec: Recorder) -> None:
    assert client.post("/write").json() == {"tx": "tx"}
    assert rec.events == ["tx:begin", "resource:open", "handler", "tx:commit", "resource:close"]
    rec.events.clear()
    assert client.post("/write?fail=true").status_code == 400
    assert rec.events == [
        "tx:begin",
        "resource:open",
        "handler",
        "tx:rollback",
        "resource:error:HTTPException",
        "resource:close",
    ]


def test_dependency_can_refuse_with_http_exception(client: TestClient) -> None:
    r = client.get("/me")
    assert r.status_code == 401
    assert r.headers["www-authenticate"] == "Bearer"
    assert client.get("/me", headers={"Authorization": "Bearer ok"}).json() == {"user": "alice"}


def test_errors_in_dependency_params_are_422_and_skip_the_handler(
    client: TestClient, rec: Recorder
) -> None:
    r = client.get("/bad-param-in-dep?page=x&other=y")
    assert r.status_code == 422
    assert [e["loc"] for e in r.json()["detail"]] == [["query", "other"], ["query", "page"]]
    assert "handler" not in rec.events


def test_background_tasks_run_after_the_response(client: TestClient, rec: Recorder) -> None:
    assert client.get("/background").json() == {"ok": True}
    assert rec.events == ["background"]


def test_injected_response_sets_status_headers_and_cookies(client: TestClient) -> None:
    r = client.get("/response-param")
    assert r.status_code == 202
    assert r.headers["x-extra"] == "1"
    assert "seen=yes" in r.headers["set-cookie"]
    assert r.json() == {"ok": True}


def test_app_and_router_level_dependencies() -> None:
    calls: list[str] = []

    async def audit(request: Request) -> None:
        calls.append(request.url.path)

    app = App(dependencies=[Depends(audit)])

    @app.get("/a")
    async def a() -> int:
        return 1

    assert TestClient(app).get("/a").json() == 1
    assert calls == ["/a"]


def test_lifespan_state_reaches_dependencies() -> None:
    from contextlib import asynccontextmanager

    @asynccontextmanager
    async def lifespan(app: App) -> AsyncIterator[dict[str, Any]]:
        yield {"pool": "the-pool"}

    app = App(lifespan=lifespan)

    async def pool(request: Request) -> str:
        return str(request.state.pool)

    @app.get("/pool")
    async def get_pool(p: Annotated[str, Depends(pool)]) -> str:
        return p

    with TestClient(app) as client:
        assert client.get("/pool").json() == "the-pool"


def test_depends_rejects_a_bad_scope() -> None:
    with pytest.raises(ValueError, match="scope"):
        Depends(lambda: None, scope="forever")  # type: ignore[arg-type]
