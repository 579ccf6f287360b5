"""Fixtures for the catalog's tests; `client`, `fresh_database_url` and friends come from
kit.testing: each test runs on its own freshly migrated database. The clients send a token
with `catalog:write` (minted by kit.testing, for the session's KIT_AUTH_JWT_SECRET), so tests
about what a write does need not repeat it; test_catalog_auth.py is about the token."""

from __future__ import annotations

import asyncio
from collections.abc import Callable, Iterator
from typing import Any

import asyncpg
import pytest

from kit import App
from kit.testing import TestClient, bearer, mint_token

from ..app import app as catalog

Json = dict[str, Any]
WRITER = bearer(mint_token(catalog, scopes=["catalog:write"], expires_in=24 * 3600))


@pytest.fixture
def app() -> App:
    return catalog


@pytest.fixture
def client(client: TestClient) -> TestClient:
    """kit.testing's client, sending a writer's token."""
    client.headers.update(WRITER)
    return client


@pytest.fixture
def anonymous(client: TestClient) -> Iterator[TestClient]:
    """The same client without the token."""
    del client.headers["authorization"]
    yield client
    client.headers.update(WRITER)


@pytest.fixture(scope="module")
def shared_client(kit_template_databases: Any) -> Iterator[TestClient]:
    """One client and database for a whole module, for tests that write nothing (bad input,
    missing rows): a fresh database per test is the default, but not free."""
    database = catalog.database
    url = kit_template_databases.create(database.migrations)
    previous, database.url = database.url, url
    try:
        with TestClient(catalog, headers=WRITER) as client:
            yield client
    finally:
        database.url = previous
        kit_template_databases.drop(url)


@pytest.fixture
def anyio_backend() -> str:
    return "asyncio"


@pytest.fixture
def category(client: TestClient) -> Json:
    response = client.post("/categories", json={"slug": "shirts", "name": "Shirts"})
    assert response.status_code == 201, response.text
    body: Json = response.json()
    return body


@pytest.fixture
def create_product(client: TestClient) -> Callable[..., Json]:
    """POST a valid product, overriding any field; asserts 201 and returns the body."""

    def create(**fields: Any) -> Json:
        body = {"sku": "TEE-1", "name": "Tee", "price_cents": 1500, **fields}
        response = client.post("/products", json=body)
        assert response.status_code == 201, response.text
        product: Json = response.json()
        assert response.headers["etag"] == f'"{product["version"]}"'
        return product

    return create


@pytest.fixture
def sql(fresh_database_url: str) -> Callable[..., Any]:
    """Run one query on the test's database, out of band: ``sql("SELECT ...", *args)``."""

    async def fetch(query: str, *args: Any) -> list[asyncpg.Record]:
        conn = await asyncpg.connect(fresh_database_url)
        try:
            return await conn.fetch(query, *args)
        finally:
            await conn.close()

    def run(query: str, *args: Any) -> list[asyncpg.Record]:
        return asyncio.run(fetch(query, *args))

    return run
