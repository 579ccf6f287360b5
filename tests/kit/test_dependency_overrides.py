"""``app.dependency_overrides``: provider → replacement, FastAPI's meaning, on every path a
request can take (fixed path, path parameters, routers, sub-dependencies, security guards,
resources, generators), set and cleared after the app is built, in both plan shapes."""

from __future__ import annotations

from collections.abc import AsyncIterator
from typing import Annotated, Any

import msgspec
import pytest
from starlette.testclient import TestClient

from kit import App, Depends, Router, Settings
from kit import _plan as plan_module
from kit.db import Connection
from kit.db.deps import connection
from kit.security import APIKeyHeader, Security

SETTINGS = Settings.from_env({}, metrics=False, access_log=False, api_keys=("k" * 24,))
header_key = APIKeyHeader()


class User(msgspec.Struct):
    name: str


async def current_user() -> User:
    return User("real")


async def token() -> str:
    return "real-token"


async def who(tok: Annotated[str, Depends(token)]) -> str:  # a sub-dependency
    return f"who:{tok}"


events: list[str] = []


async def session() -> AsyncIterator[str]:
    events.append("open:real")
    yield "real-session"
    events.append("close:real")


@pytest.fixture(params=[False, True], ids=["shapes", "general"])
def general(request: pytest.FixtureRequest, monkeypatch: pytest.MonkeyPatch) -> bool:
    monkeypatch.setattr(plan_module, "GENERAL", request.param)
    return request.param


def build() -> App:
    app = App(settings=SETTINGS)
    router = Router(prefix="/r")

    @app.get("/user")
    async def user(u: Annotated[User, Depends(current_user)]) -> User:
        return u

    @app.get("/items/{item_id}")
    async def item(item_id: int, u: Annotated[User, Depends(current_user)]) -> dict[str, Any]:
        return {"id": item_id, "user": u.name}

    @router.get("/who")
    async def routed(w: Annotated[str, Depends(who)]) -> str:
        return w

    @app.get("/secret")
    async def secret(key: Annotated[str, Security(header_key)]) -> str:
        return key

    @app.get("/db")
    async def db(conn: Connection) -> str:
        return str(conn)

    @app.get("/session")
    async def with_session(s: Annotated[str, Depends(session)]) -> str:
        return s

    app.include_router(router)
    return app


def test_overrides_set_after_the_app_is_built_apply_and_clear(general: bool) -> None:
    app = build()
    events.clear()
    with TestClient(app) as client:
        assert client.get("/user").json() == {"name": "real"}
        assert client.get("/items/3").json() == {"id": 3, "user": "real"}
        assert client.get("/r/who").json() == "who:real-token"
        assert client.get("/secret").status_code == 401

        async def fake_user() -> User:
            return User("fake")

        async def fake_session() -> AsyncIterator[str]:
            events.append("open:fake")
            yield "fake-session"
            events.append("close:fake")

        app.dependency_overrides[current_user] = fake_user
        app.dependency_overrides[token] = lambda: "fake-token"  # a sync replacement
        app.dependency_overrides[header_key] = lambda: "no-key-needed"
        app.dependency_overrides[connection] = lambda: "fake-connection"
        app.dependency_overrides[session] = fake_session
        assert client.get("/user").json() == {"name": "fake"}  # a fixed path
        assert client.get("/items/3").json() == {"id": 3, "user": "fake"}  # a path parameter
        assert client.get("/r/who").json() == "who:fake-token"  # a router's sub-dependency
        assert client.get("/secret").json() == "no-key-needed"  # a security guard
        assert client.get("/db").json() == "fake-connection"  # a resource, without a database
        assert client.get("/session").json() == "fake-session"
        assert events == ["open:fake", "close:fake"]

        app.dependency_overrides.clear()
        assert client.get("/user").json() == {"name": "real"}
        assert client.get("/items/3").json() == {"id": 3, "user": "real"}
        assert client.get("/r/who").json() == "who:real-token"
        assert client.get("/secret").status_code == 401
        assert client.get("/session").json() == "real-session"
        assert events[-2:] == ["open:real", "close:real"]


def test_each_kind_of_change_recompiles() -> None:
    app = build()
    client = TestClient(app)

    async def a() -> User:
        return User("a")

    async def b() -> User:
        return User("b")

    overrides = app.dependency_overrides
    overrides.update({current_user: a})
    assert client.get("/user").json() == {"name": "a"}
    overrides |= {current_user: b}
    assert client.get("/user").json() == {"name": "b"}
    del overrides[current_user]
    assert client.get("/user").json() == {"name": "real"}
    overrides.setdefault(current_user, a)
    assert client.get("/user").json() == {"name": "a"}
    overrides.pop(current_user)
    assert client.get("/user").json() == {"name": "real"}
    overrides[current_user] = b
    overrides.popitem()
    assert client.get("/user").json() == {"name": "real"}


def test_a_replacement_reads_its_own_parameters_and_the_docs_stay_as_declared() -> None:
    app = build()
    client = TestClient(app)
    before = client.get("/openapi.json").json()

    async def by_query(name: str = "anon") -> User:
        return User(name)

    app.dependency_overrides[current_user] = by_query
    assert client.get("/user", params={"name": "ada"}).json() == {"name": "ada"}
    assert client.get("/user").json() == {"name": "anon"}
    assert client.get("/openapi.json").json() == before  # documents the declared API


def test_a_replacement_kit_cannot_bind_is_refused_and_changes_nothing() -> None:
    app = build()

    class Opaque:
        pass

    async def bad(thing: Opaque) -> User:
        return User("never")

    with pytest.raises(TypeError, match="thing"):
        app.dependency_overrides[current_user] = bad
    assert current_user not in app.dependency_overrides
    assert TestClient(app).get("/user").json() == {"name": "real"}
    with pytest.raises(TypeError, match="callable"):
        app.dependency_overrides[current_user] = "not a function"  # type: ignore[assignment]


def test_routes_added_after_an_override_use_it() -> None:
    app = App(settings=SETTINGS)
    app.dependency_overrides[current_user] = lambda: User("early")

    @app.get("/late")
    async def late(u: Annotated[User, Depends(current_user)]) -> User:
        return u

    assert TestClient(app).get("/late").json() == {"name": "early"}


def test_an_empty_overrides_dict_leaves_the_plans_alone() -> None:
    app = build()
    shapes = {r.path: r.handler.plan.shape for r in app.routes if hasattr(r, "handler")}
    assert shapes["/db"] == "steps"
    assert shapes["/user"] == "steps"
    app.dependency_overrides[connection] = lambda: "x"
    db = next(r for r in app.routes if getattr(r, "path", "") == "/db")
    assert db.handler.plan.shape == "solver"  # a sync replacement runs in the threadpool
    app.dependency_overrides.clear()
    again = {r.path: r.handler.plan.shape for r in app.routes if hasattr(r, "handler")}
    assert again == shapes
