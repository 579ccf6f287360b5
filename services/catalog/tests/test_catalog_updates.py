"""PATCH and DELETE: partial updates, ETags and If-Match, atomic variant replacement,
concurrent writers, and cursors that stay stable while rows change."""

from __future__ import annotations

from collections.abc import AsyncIterator, Callable
from typing import Any

import anyio
import asyncpg
import httpx
import pytest

from kit import App
from kit.testing import TestClient

from .conftest import WRITER
from .pages import expected, seed, walk

Json = dict[str, Any]


def patch(client: TestClient, product: Json, body: Json, etag: str | None = None) -> httpx.Response:
    tag = etag if etag is not None else f'"{product["version"]}"'
    return client.patch(f"/products/{product['id']}", json=body, headers={"if-match": tag})


def test_patch_changes_only_the_fields_sent(
    client: TestClient, category: Json, create_product: Callable[..., Json]
) -> None:
    product = create_product(description="Soft", category_id=category["id"])
    response = patch(client, product, {"price_cents": 1200})
    assert response.status_code == 200
    updated = response.json()
    assert updated["price_cents"] == 1200
    assert updated["version"] == 2
    assert response.headers["etag"] == '"2"'
    changed = {"price_cents": 1200, "version": 2, "updated_at": updated["updated_at"]}
    assert updated == {**product, **changed}
    assert updated["updated_at"] >= product["updated_at"]
    assert client.get(f"/products/{product['id']}").json() == updated


def test_empty_patch_is_not_a_new_version(
    client: TestClient, create_product: Callable[..., Json]
) -> None:
    product = create_product()
    response = patch(client, product, {})
    assert response.status_code == 200
    assert response.json() == product
    assert response.headers["etag"] == '"1"'
    assert patch(client, product, {}, etag='"0"').status_code == 412  # still a guarded write


def test_null_clears_nullable_fields(
    client: TestClient, category: Json, create_product: Callable[..., Json]
) -> None:
    product = create_product(description="Soft", category_id=category["id"])
    updated = patch(client, product, {"description": None, "category_id": None}).json()
    assert (updated["description"], updated["category_id"]) == (None, None)
    assert updated["name"] == product["name"]


def test_patch_to_a_missing_category_is_409(
    client: TestClient, create_product: Callable[..., Json]
) -> None:
    product = create_product()
    response = patch(client, product, {"category_id": 424242, "name": "Renamed"})
    assert response.status_code == 409
    assert response.json() == {"detail": "no category has this category_id"}
    assert client.get(f"/products/{product['id']}").json() == product  # nothing changed


def test_if_match_is_required(client: TestClient, create_product: Callable[..., Json]) -> None:
    product = create_product()
    path = f"/products/{product['id']}"
    for response in (client.patch(path, json={"name": "x"}), client.delete(path)):
        assert response.status_code == 428
        assert "If-Match" in response.json()["detail"]
    assert client.get(path).json() == product


def test_stale_if_match_is_412(client: TestClient, create_product: Callable[..., Json]) -> None:
    product = create_product()
    assert patch(client, product, {"name": "First"}).status_code == 200
    for stale in ('"1"', 'W/"2"', "garbage", '"1", "3"'):
        response = patch(client, product, {"name": "Second"}, etag=stale)
        assert response.status_code == 412, stale
        assert response.headers["etag"] == '"2"'
    headers = {"if-match": '"1"'}
    assert client.delete(f"/products/{product['id']}", headers=headers).status_code == 412
    current = client.get(f"/products/{product['id']}").json()
    assert (current["name"], current["version"]) == ("First", 2)
    # any of several tags may match; `*` matches whatever is current
    assert patch(client, product, {"name": "Third"}, etag='"9", "2"').status_code == 200
    assert patch(client, product, {"name": "Fourth"}, etag="*").json()["version"] == 4


def test_patch_replaces_variants(client: TestClient, create_product: Callable[..., Json]) -> None:
    product = create_product(variants=[{"sku": "OLD-1", "label": "Old"}])
    new = [{"sku": "OLD-1", "label": "Kept SKU", "stock": 2}, {"sku": "NEW-1", "label": "New"}]
    updated = patch(client, product, {"variants": new}).json()
    assert updated["variants"] == [new[0], {**new[1], "stock": 0}]
    cleared = patch(client, updated, {"variants": []}).json()
    assert cleared["variants"] == []
    assert cleared["version"] == 3


def test_failed_variant_replacement_changes_nothing(
    client: TestClient, create_product: Callable[..., Json], sql: Callable[..., Any]
) -> None:
    """Name, price and old variants are written, then a new variant clashes: all rolled back."""
    create_product(sku="OTHER", variants=[{"sku": "TAKEN", "label": "x"}])
    product = create_product(sku="MINE", variants=[{"sku": "MINE-1", "label": "Mine"}])
    body = {"name": "Renamed", "price_cents": 1, "variants": [{"sku": "TAKEN", "label": "y"}]}
    response = patch(client, product, body)
    assert response.status_code == 409
    assert client.get(f"/products/{product['id']}").json() == product
    rows = sql("SELECT sku FROM variants WHERE product_id = $1", product["id"])
    assert [row["sku"] for row in rows] == ["MINE-1"]


def test_delete(
    client: TestClient, create_product: Callable[..., Json], sql: Callable[..., Any]
) -> None:
    product = create_product(variants=[{"sku": "GONE-1", "label": "x"}])
    path = f"/products/{product['id']}"
    assert client.delete(path, headers={"if-match": '"1"'}).status_code == 204
    assert client.get(path).status_code == 404
    assert client.delete(path, headers={"if-match": '"1"'}).status_code == 404
    assert sql("SELECT * FROM variants") == []


def test_cursor_is_stable_while_rows_come_and_go(
    client: TestClient, create_product: Callable[..., Json]
) -> None:
    products = seed(client)
    first = client.get("/products", params={"sort": "price", "limit": 3}).json()
    seen = [item["id"] for item in first["items"]]
    # a cheaper product (before the cursor) appears, and a later one disappears
    create_product(sku="NEW-1", name="New", price_cents=1)
    removed = next(p for p in products if p["price_cents"] == 2500)
    client.delete(f"/products/{removed['id']}", headers={"if-match": "*"})
    rest = walk(client, 3, sort="price", cursor=first["next_cursor"])
    ids = seen + [item["id"] for item in rest]
    remaining = [p for p in products if p["id"] != removed["id"]]
    assert ids == expected(remaining, "price")


@pytest.fixture
async def running(app: App, fresh_database_url: str) -> AsyncIterator[httpx.AsyncClient]:
    """The app in this test's event loop, so that requests can run concurrently."""
    database: Any = app.database
    previous, database.url = database.url, fresh_database_url
    try:
        async with app.router.lifespan_context(app):
            transport = httpx.ASGITransport(app=app)
            async with httpx.AsyncClient(
                transport=transport, base_url="http://test", headers=WRITER
            ) as client:
                yield client
    finally:
        database.url = previous


@pytest.mark.anyio
async def test_concurrent_patches_with_one_etag_exactly_one_wins(
    running: httpx.AsyncClient, fresh_database_url: str
) -> None:
    created = await running.post("/products", json={"sku": "RACE", "name": "R", "price_cents": 1})
    product_id = created.json()["id"]
    statuses: list[int] = []

    async def write(name: str) -> None:
        response = await running.patch(
            f"/products/{product_id}", json={"name": name}, headers={"if-match": '"1"'}
        )
        statuses.append(response.status_code)

    # Hold the row lock so both writers are inside their transactions, waiting, at once.
    blocker = await asyncpg.connect(fresh_database_url)
    try:
        async with anyio.create_task_group() as tasks:
            lock = blocker.transaction()
            await lock.start()
            await blocker.execute("SELECT 1 FROM products WHERE id = $1 FOR UPDATE", product_id)
            tasks.start_soon(write, "A")
            tasks.start_soon(write, "B")
            with anyio.fail_after(10):
                while await blocker.fetchval(WAITING_ON_LOCKS) < 2:
                    await anyio.sleep(0.01)
            await lock.rollback()
    finally:
        await blocker.close()
    assert sorted(statuses) == [200, 412]
    final = (await running.get(f"/products/{product_id}")).json()
    assert final["version"] == 2
    assert final["name"] in ("A", "B")


WAITING_ON_LOCKS = """
SELECT count(*) FROM pg_stat_activity
WHERE datname = current_database() AND wait_event_type = 'Lock'
"""


@pytest.mark.anyio
async def test_concurrent_patches_swapping_skus_never_deadlock(running: httpx.AsyncClient) -> None:
    statuses: list[int] = []
    for round_ in range(10):
        a, b = f"SWAP-A{round_}", f"SWAP-B{round_}"
        products = []
        for sku in (a, b):
            body = {"sku": sku, "name": sku, "price_cents": 1}
            body["variants"] = [{"sku": f"{sku}-V", "label": "v"}]
            products.append((await running.post("/products", json=body)).json())

        async def give(product: Json, sku: str) -> None:
            response = await running.patch(
                f"/products/{product['id']}",
                json={"variants": [{"sku": sku, "label": "v"}]},
                headers={"if-match": f'"{product["version"]}"'},
            )
            statuses.append(response.status_code)

        async with anyio.create_task_group() as tasks:
            tasks.start_soon(give, products[0], f"{b}-V")
            tasks.start_soon(give, products[1], f"{a}-V")
    # one of each pair moves its SKU first; the other finds the SKU still taken or freed
    assert set(statuses) <= {200, 409}, statuses
