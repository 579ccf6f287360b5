"""The README's service and recipes, run as written: a custom 422, Location on a 201, and a
partial update with UNSET, on a real Postgres."""

from __future__ import annotations

import re
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import anyio
import asyncpg
import pytest
from starlette.testclient import TestClient

README = Path(__file__).resolve().parents[2] / "README.md"


def python_blocks(heading: str) -> list[str]:
    text = README.read_text()
    section = text.split(f"\n{heading}\n", 1)[1].split("\n## ", 1)[0]
    return re.findall(r"```python\n(.*?)```", section, re.DOTALL)


@pytest.fixture
def client(fresh_database_url: str) -> Iterator[TestClient]:
    namespace: dict[str, Any] = {"__name__": "readme"}
    blocks = python_blocks("## A service") + python_blocks("## Recipes")
    assert len(blocks) == 4
    for block in blocks:
        exec(compile(block, str(README), "exec", dont_inherit=True), namespace)

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
