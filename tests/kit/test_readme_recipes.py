"""The documented service and recipes, run as written: the service of the README and of
docs/getting-started.md, the recipes of docs/handlers.md (a custom 422, Location on a 201, a
partial update with UNSET) on a real Postgres, and the parameters example of docs/handlers.md."""

from __future__ import annotations

import re
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import anyio
import asyncpg
import pytest
from starlette.testclient import TestClient

ROOT = Path(__file__).resolve().parents[2]
README = ROOT / "README.md"
GETTING_STARTED = ROOT / "docs" / "getting-started.md"
HANDLERS = ROOT / "docs" / "handlers.md"


def python_blocks(page: Path, heading: str) -> list[str]:
    text = page.read_text()
    assert f"\n{heading}\n" in text, f"{page.name} has no section {heading!r}"
    section = text.split(f"\n{heading}\n", 1)[1].split("\n## ", 1)[0]
    return re.findall(r"```python\n(.*?)```", section, re.DOTALL)


def run(blocks: list[tuple[Path, str]]) -> dict[str, Any]:
    namespace: dict[str, Any] = {"__name__": "docs"}
    for page, block in blocks:
        exec(compile(block, str(page), "exec", dont_inherit=True), namespace)
    return namespace


def test_the_readme_shows_the_service_of_getting_started() -> None:
    assert python_blocks(README, "## A service") == python_blocks(GETTING_STARTED, "## A service")


@pytest.fixture
def client(fresh_database_url: str) -> Iterator[TestClient]:
    service = python_blocks(GETTING_STARTED, "## A service")
    recipes = python_blocks(HANDLERS, "## Recipes")
    assert (len(service), len(recipes)) == (1, 3)
    namespace = run([(GETTING_STARTED, service[0]), *((HANDLERS, block) for block in recipes)])

    async def create_table() -> None:
        conn = await asyncpg.connect(fresh_database_url)
        try:
            await conn.execute("CREATE TABLE users (id serial PRIMARY KEY, name text, age int)")
        finally:
            await conn.close()

    anyio.run(create_table)
    app = namespace["app"]
    app.database.url = fresh_database_url
    with TestClient(app) as test_client:
        yield test_client


def test_a_custom_422_has_the_usual_shape(client: TestClient) -> None:
    ok = client.post("/bookings", json={"room": "double", "nights": 2, "guests": 2})
    assert ok.status_code == 201
    refused = client.post("/bookings", json={"room": "single", "nights": 1, "guests": 3})
    assert refused.status_code == 422
    assert refused.json() == {
        "detail": [
            {
                "type": "too_many",
                "loc": ["body", "guests"],
                "msg": "One guest only",
                "input": 3,
            }
        ]
    }


def test_location_is_set_on_the_201(client: TestClient) -> None:
    response = client.post("/members", json={"name": "ada", "age": 36})
    assert response.status_code == 201
    assert response.headers["location"] == "/users/1"
    assert client.get("/users/1").json() == {"name": "ada", "age": 36}


def test_a_partial_update_changes_only_what_was_sent(client: TestClient) -> None:
    client.post("/members", json={"name": "ada", "age": 36})
    assert client.patch("/users/1", json={"age": 37}).json() == {"name": "ada", "age": 37}
    assert client.patch("/users/1", json={"name": "lovelace"}).json() == {
        "name": "lovelace",
        "age": 37,
    }
    assert client.patch("/users/1", json={}).json() == {"name": "lovelace", "age": 37}
    assert client.patch("/users/1", json={"age": -1}).status_code == 422
    assert client.patch("/users/2", json={"age": 1}).status_code == 404


def test_the_parameters_example_reads_every_source() -> None:
    blocks = python_blocks(HANDLERS, "## Routes and routers")
    blocks += python_blocks(HANDLERS, "## Parameters")
    app = run([(HANDLERS, block) for block in blocks])["app"]
    with TestClient(app) as client:
        assert client.get("/products/3").json() == {"id": 3}
        answer = client.get(
            "/items/5?q=x&tag=a&tag=b&colour=red&max_price=10", headers={"user-agent": "ua"}
        )
        assert answer.json() == {
            "id": 5,
            "q": "x",
            "tags": ["a", "b"],
            "colour": "red",
            "agent": "ua",
        }
        assert client.get("/items/5?max_price=-1").status_code == 422
        refused = client.post("/items/5/reviews", json={"stars": 9})
        assert refused.status_code == 422
        assert refused.json()["detail"][0]["loc"] == ["body", "stars"]
        assert client.post("/items/5/reviews", json={"stars": 4}).json() == {
            "stars": 4,
            "text": "",
        }


def test_the_dependencies_example_caches_refuses_and_cleans_up(
    capsys: pytest.CaptureFixture[str],
) -> None:
    page = ROOT / "docs" / "dependencies.md"
    text = page.read_text()
    blocks = re.findall(r"```python\n(.*?)```", text, re.DOTALL)
    assert len(blocks) == 2
    namespace = run([(page, block) for block in blocks])
    app = namespace["app"]

    # a route taking the resource, defined beside the page's code so its annotation resolves
    route = '@app.get("/exclusive")\nasync def exclusive(lock: Exclusive) -> bool:\n'
    exec(route + "    return lock.locked()\n", namespace)

    with TestClient(app) as client:
        assert client.get("/reports", headers={"x-tenant": "acme"}).json() == ["acme: report"]
        assert client.get("/reports").status_code == 400
        assert client.get("/exclusive").json() is True
    assert not namespace["LOCK"].locked()
    assert "acme ['listed']" in capsys.readouterr().out
