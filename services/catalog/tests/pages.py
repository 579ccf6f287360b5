"""Helpers for the listing tests: a known set of products, and walking every page."""

from __future__ import annotations

from typing import Any

from kit.testing import TestClient

from ..queries import SORTS

Json = dict[str, Any]

# Ties on price and name on purpose: the id must break them, or pages would repeat rows.
ROWS = [
    ("A-1", "Mug", 500, "active"),
    ("A-2", "Cap", 1500, "draft"),
    ("A-3", "Tee", 500, "active"),
    ("A-4", "Bag", 2500, "archived"),
    ("A-5", "Mug", 900, "active"),
    ("A-6", "Cap", 1500, "active"),
    ("A-7", "Zip", 100, "draft"),
]


def seed(client: TestClient) -> list[Json]:
    shirts = client.post("/categories", json={"slug": "shirts", "name": "Shirts"}).json()
    created = []
    for n, (sku, name, price, status) in enumerate(ROWS):
        body = {"sku": sku, "name": name, "price_cents": price, "status": status}
        response = client.post(
            "/products", json={**body, "category_id": shirts["id"] if n % 2 == 0 else None}
        )
        assert response.status_code == 201, response.text
        created.append(response.json())
    return created


def walk(client: TestClient, limit: int, **params: Any) -> list[Json]:
    """Every page, following next_cursor; returns the items in order."""
    items: list[Json] = []
    cursor = None
    for _ in range(100):
        query = {**params, "limit": limit, **({"cursor": cursor} if cursor else {})}
        response = client.get("/products", params=query)
        assert response.status_code == 200, response.text
        page = response.json()
        assert len(page["items"]) <= limit
        items += page["items"]
        cursor = page["next_cursor"]
        if cursor is None:
            return items
        assert page["items"], "a cursor is only given when another row follows"
    raise AssertionError("pagination did not end")


def expected(products: list[Json], sort: str) -> list[int]:
    column, descending = SORTS[sort]
    ordered = sorted(products, key=lambda p: (p[column], p["id"]), reverse=descending)
    return [p["id"] for p in ordered]
