"""Fixtures for the orders' tests: a real catalog process to call, and orders wired to it.

``client``, ``fresh_database_url`` and friends come from kit.testing: each test runs on its own
freshly migrated database. The catalog runs as a real ``kit serve`` process, on its own
database, once per module.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest

from kit import App
from kit.http import CircuitBreaker, ResponseCache
from kit.testing import ServerProcess, TestClient, bearer, mint_token
from services.catalog.app import app as catalog_app

from ..app import app as orders
from ..app import catalog

REPO = Path(__file__).resolve().parents[3]
CATALOG = "services.catalog.app:app"
Json = dict[str, Any]
# Tokens for the session's KIT_AUTH_JWT_SECRET (kit.testing sets it; servers inherit it).
WRITER = bearer(mint_token(orders, scopes=["orders:write"], expires_in=24 * 3600))
CATALOG_WRITER = bearer(mint_token(catalog_app, scopes=["catalog:write"], expires_in=24 * 3600))


@pytest.fixture
def app() -> App:
    return orders


@pytest.fixture
def client(client: TestClient) -> TestClient:
    """kit.testing's client, sending a token that may place orders."""
    client.headers.update(WRITER)
    return client


@pytest.fixture(scope="module")
def catalog_database(kit_template_databases: Any) -> Iterator[str]:
    url = kit_template_databases.create(catalog_app.database.migrations)  # type: ignore[union-attr]
    yield url
    kit_template_databases.drop(url)


def catalog_process(
    database_url: str, log: Path, runtime: str = "uvicorn", **env: str
) -> ServerProcess:
    """The catalog as ``kit serve`` runs it (not started)."""
    environ = {"DATABASE_URL": database_url, "KIT_MIGRATE": "0", "KIT_LOG_FORMAT": "json", **env}
    return ServerProcess(
        CATALOG,
        runtime=runtime,
        env=environ,
        cwd=REPO,
        log=log,
        ready_path="/readyz",
        name="catalog",
    )


@pytest.fixture(scope="module")
def catalog_server(
    catalog_database: str, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[ServerProcess]:
    with catalog_process(catalog_database, tmp_path_factory.mktemp("catalog")) as server:
        yield server


@pytest.fixture(scope="module")
def products(catalog_server: ServerProcess) -> list[Json]:
    """Three products for sale (prices 1500, 250, 9900) and a draft, in the catalog."""
    made = []
    with httpx.Client(base_url=catalog_server.url, timeout=10, headers=CATALOG_WRITER) as http:
        for sku, price, status in [
            ("TEE-1", 1500, "active"),
            ("MUG-1", 250, "active"),
            ("HAT-1", 9900, "active"),
            ("DRAFT-1", 100, "draft"),
        ]:
            body = {"sku": sku, "name": sku.lower(), "price_cents": price, "status": status}
            response = http.post("/products", json=body)
            assert response.status_code == 201, response.text
            made.append(response.json())
    return made


@pytest.fixture
def wired(catalog_server: ServerProcess) -> Iterator[None]:
    """The in-process orders app calling the catalog process, with an empty cache and a closed
    breaker."""
    previous = catalog.base_url
    catalog.base_url = catalog_server.url
    catalog.cache = ResponseCache(30.0, 300.0)
    catalog.breaker = CircuitBreaker(catalog.breaker.threshold, catalog.breaker.reset_after)
    try:
        yield
    finally:
        catalog.base_url = previous


def orders_process(
    database_url: str, catalog_url: str, log: Path, runtime: str = "uvicorn", **env: str
) -> ServerProcess:
    """Orders as ``kit serve`` runs it, calling ``catalog_url`` (not started)."""
    environ = {
        "DATABASE_URL": database_url,
        "CATALOG_URL": catalog_url,
        "KIT_LOG_FORMAT": "json",
        **env,
    }
    return ServerProcess(
        "services.orders.app:app",
        runtime=runtime,
        env=environ,
        cwd=REPO,
        log=log,
        ready_path="/readyz",
        name="orders",
    )


def order_of(*lines: tuple[int, int]) -> Json:
    return {"lines": [{"product_id": pid, "quantity": qty} for pid, qty in lines]}
