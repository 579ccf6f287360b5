"""Categories: create, read, list, delete, against a real Postgres."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from kit.testing import TestClient


def test_create_read_list(client: TestClient) -> None:
    created = client.post("/categories", json={"slug": "mugs", "name": "Mugs"})
    assert created.status_code == 201
    category = created.json()
    assert created.headers["location"] == f"/categories/{category['id']}"
    assert client.get(f"/categories/{category['id']}").json() == category
    client.post("/categories", json={"slug": "bags", "name": "Bags"})
    assert [c["slug"] for c in client.get("/categories").json()] == ["bags", "mugs"]


def test_duplicate_slug_is_409(client: TestClient, category: dict[str, Any]) -> None:
    again = client.post("/categories", json={"slug": category["slug"], "name": "Other"})
    assert again.status_code == 409
    assert again.json() == {"detail": "a category with this slug exists"}


def test_delete_only_unused_categories(
    client: TestClient, category: dict[str, Any], create_product: Callable[..., dict[str, Any]]
) -> None:
    product = create_product(category_id=category["id"])
    refused = client.delete(f"/categories/{category['id']}")
    assert refused.status_code == 409
    assert refused.json() == {"detail": "the category still has products"}
    client.delete(f"/products/{product['id']}", headers={"if-match": f'"{product["version"]}"'})
    assert client.delete(f"/categories/{category['id']}").status_code == 204
    assert client.get(f"/categories/{category['id']}").status_code == 404
