"""Products: create with variants in one transaction, read, validation, 404 and 409."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from kit.testing import TestClient

Json = dict[str, Any]
VALID = {"sku": "MUG-2", "name": "Mug", "price_cents": 900}
VARIANTS = [{"sku": "TEE-1-S", "label": "Small", "stock": 3}, {"sku": "TEE-1-M", "label": "M"}]


def test_create_with_variants_then_read(
    client: TestClient, category: Json, create_product: Callable[..., Json]
) -> None:
    product = create_product(
        description="Organic cotton", category_id=category["id"], variants=VARIANTS
    )
    assert product["sku"] == "TEE-1"
    assert product["status"] == "draft"
    assert product["version"] == 1
    assert product["variants"] == [{**VARIANTS[0]}, {**VARIANTS[1], "stock": 0}]
    read = client.get(f"/products/{product['id']}")
    assert read.status_code == 200
    assert read.json() == product
    assert read.headers["etag"] == '"1"'


def test_created_product_has_location(client: TestClient) -> None:
    response = client.post("/products", json={"sku": "CAP-1", "name": "Cap", "price_cents": 0})
    assert response.status_code == 201
    assert response.headers["location"] == f"/products/{response.json()['id']}"


def test_if_none_match_is_304(client: TestClient, create_product: Callable[..., Json]) -> None:
    product = create_product()
    path = f"/products/{product['id']}"
    unchanged = client.get(path, headers={"if-none-match": '"1"'})
    assert unchanged.status_code == 304
    assert unchanged.content == b""
    assert unchanged.headers["etag"] == '"1"'
    assert client.get(path, headers={"if-none-match": '"0", "7"'}).status_code == 200


def test_duplicate_sku_is_409(client: TestClient, create_product: Callable[..., Json]) -> None:
    create_product(sku="DUP-1")
    again = client.post("/products", json={**VALID, "sku": "DUP-1"})
    assert again.status_code == 409
    assert again.json() == {"detail": "a product with this SKU exists"}


def test_failed_variant_insert_leaves_nothing_behind(
    client: TestClient, create_product: Callable[..., Json], sql: Callable[..., Any]
) -> None:
    """The product row is written, then its variants fail: the whole request rolls back."""
    create_product(sku="FIRST", variants=[{"sku": "TAKEN", "label": "x"}])
    clash = [{"sku": "FREE", "label": "ok"}, {"sku": "TAKEN", "label": "clash"}]
    response = client.post("/products", json={**VALID, "sku": "SECOND", "variants": clash})
    assert response.status_code == 409
    assert response.json() == {"detail": "a variant with this SKU exists"}
    assert [r["sku"] for r in sql("SELECT sku FROM products")] == ["FIRST"]
    assert [r["sku"] for r in sql("SELECT sku FROM variants")] == ["TAKEN"]
    # the rolled-back SKU is free: the same product, fixed, goes in
    fixed = client.post("/products", json={**VALID, "sku": "SECOND", "variants": clash[:1]})
    assert fixed.status_code == 201
