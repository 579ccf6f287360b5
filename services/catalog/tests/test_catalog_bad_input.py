"""Bad input and missing rows: 4xx with a JSON body naming the field, never a 500.

These tests write nothing, so they share one database (``shared_client``).
"""

from __future__ import annotations

from typing import Any

import pytest

from kit.testing import TestClient

Json = dict[str, Any]
VALID = {"sku": "MUG-2", "name": "Mug", "price_cents": 900}


def test_missing_product_is_404(shared_client: TestClient) -> None:
    assert shared_client.get("/products/424242").json() == {"detail": "product not found"}
    assert shared_client.get("/products/424242").status_code == 404
    headers = {"if-match": "*"}
    assert shared_client.patch("/products/424242", json={}, headers=headers).status_code == 404
    assert shared_client.delete("/products/424242", headers=headers).status_code == 404


@pytest.mark.parametrize("bad_id", ["0", "-1", "abc", "9223372036854775808"])
def test_bad_product_id_is_422(shared_client: TestClient, bad_id: str) -> None:
    response = shared_client.get(f"/products/{bad_id}")
    assert response.status_code == 422
    assert response.json()["detail"][0]["loc"] == ["path", "product_id"]


@pytest.mark.parametrize(
    ("change", "loc"),
    [
        ({"sku": None}, ["body", "sku"]),
        ({"sku": "mug-2"}, ["body", "sku"]),
        ({"sku": "M"}, ["body", "sku"]),
        ({"sku": "M" * 33}, ["body", "sku"]),
        ({"name": ""}, ["body", "name"]),
        ({"name": "x" * 201}, ["body", "name"]),
        ({"name": "nul\x00byte"}, ["body", "name"]),
        ({"name": 7}, ["body", "name"]),
        ({"price_cents": -1}, ["body", "price_cents"]),
        ({"price_cents": 100_000_001}, ["body", "price_cents"]),
        ({"price_cents": 9.5}, ["body", "price_cents"]),
        ({"description": "x" * 2001}, ["body", "description"]),
        ({"description": "\x00"}, ["body", "description"]),
        ({"status": "deleted"}, ["body", "status"]),
        ({"category_id": 0}, ["body", "category_id"]),
        ({"variants": "none"}, ["body", "variants"]),
        ({"variants": [{"sku": "V-1"}]}, ["body", "variants", 0, "label"]),
        (
            {"variants": [{"sku": "V-1", "label": "x", "stock": -1}]},
            ["body", "variants", 0, "stock"],
        ),
        ({"variants": [{"sku": "V-1", "label": "x", "size": 1}]}, ["body", "variants", 0, "size"]),
        ({"variants": [{"sku": f"V-{n}", "label": "x"} for n in range(51)]}, ["body", "variants"]),
        ({"version": 3}, ["body", "version"]),
    ],
)
def test_every_field_is_validated(shared_client: TestClient, change: Json, loc: list[Any]) -> None:
    response = shared_client.post("/products", json={**VALID, **change})
    assert response.status_code == 422, response.text
    assert [error["loc"] for error in response.json()["detail"]] == [loc]
    assert shared_client.get("/products").json()["items"] == []


def test_missing_fields_are_each_reported(shared_client: TestClient) -> None:
    response = shared_client.post("/products", json={})
    assert response.status_code == 422
    locs = [error["loc"] for error in response.json()["detail"]]
    assert locs == [["body", "sku"], ["body", "name"], ["body", "price_cents"]]


@pytest.mark.parametrize(
    ("content", "content_type", "status"),
    [
        (b"{", "application/json", 422),
        (b"\xff\xfe", "application/json", 422),
        (b"[1]", "application/json", 422),
        (b"[" * 10_000 + b"]" * 10_000, "application/json", 422),
        (b'{"sku": "' + b"X" * 2_000_000 + b'"}', "application/json", 413),
        (b"{}", "text/plain", 415),
    ],
)
def test_malformed_bodies_are_4xx(
    shared_client: TestClient, content: bytes, content_type: str, status: int
) -> None:
    response = shared_client.post(
        "/products", content=content, headers={"content-type": content_type}
    )
    assert response.status_code == status
    assert "detail" in response.json()


def test_conflicts_within_the_request_are_409(shared_client: TestClient) -> None:
    """Schema-valid, yet impossible to store: a SKU given twice, a category that is not there."""
    repeated = [
        {"sku": "V-1", "label": "a"},
        {"sku": "V-2", "label": "b"},
        {"sku": "V-1", "label": "c"},
    ]
    response = shared_client.post("/products", json={**VALID, "variants": repeated})
    assert response.status_code == 409
    assert response.json() == {"detail": "variant SKU V-1 is given twice"}
    response = shared_client.post("/products", json={**VALID, "category_id": 424242})
    assert response.status_code == 409
    assert response.json() == {"detail": "no category has this category_id"}
    assert shared_client.get("/products").json()["items"] == []


@pytest.mark.parametrize(
    ("body", "field"),
    [
        ({"name": "No slug"}, "slug"),
        ({"slug": "Upper", "name": "x"}, "slug"),
        ({"slug": "a--b", "name": "x"}, "slug"),
        ({"slug": "x" * 65, "name": "x"}, "slug"),
        ({"slug": "ok"}, "name"),
        ({"slug": "ok", "name": ""}, "name"),
        ({"slug": "ok", "name": "tab\there"}, "name"),
        ({"slug": "ok", "name": "x", "extra": 1}, "extra"),
    ],
)
def test_bad_category_is_422(shared_client: TestClient, body: dict[str, Any], field: str) -> None:
    response = shared_client.post("/categories", json=body)
    assert response.status_code == 422
    assert [error["loc"] for error in response.json()["detail"]] == [["body", field]]


def test_missing_category_is_404(shared_client: TestClient) -> None:
    assert shared_client.get("/categories/424242").status_code == 404
    assert shared_client.delete("/categories/424242").status_code == 404
    assert shared_client.get("/categories/0").status_code == 422
    assert shared_client.get("/categories/99999999999999999999").status_code == 422


@pytest.mark.parametrize(
    ("patch", "loc"),
    [
        ({"name": None}, ["body", "name"]),  # null clears only nullable fields
        ({"price_cents": None}, ["body", "price_cents"]),
        ({"status": None}, ["body", "status"]),
        ({"sku": "NEW-1"}, ["body", "sku"]),  # the SKU never changes
        ({"description": "x" * 2001}, ["body", "description"]),
        ({"variants": None}, ["body", "variants"]),
        ({"variants": [{"sku": "lower", "label": "x"}]}, ["body", "variants", 0, "sku"]),
    ],
)
def test_bad_patch_is_422(shared_client: TestClient, patch: Json, loc: list[Any]) -> None:
    response = shared_client.patch("/products/1", json=patch, headers={"if-match": "*"})
    assert response.status_code == 422, response.text
    assert [error["loc"] for error in response.json()["detail"]] == [loc]


@pytest.mark.parametrize(
    ("params", "loc"),
    [
        ({"limit": 0}, ["query", "limit"]),
        ({"limit": 101}, ["query", "limit"]),
        ({"limit": "ten"}, ["query", "limit"]),
        ({"sort": "price desc"}, ["query", "sort"]),
        ({"status": "gone"}, ["query", "status"]),
        ({"category_id": -4}, ["query", "category_id"]),
        ({"min_price": -1}, ["query", "min_price"]),
        ({"cursor": "garbage!"}, ["query", "cursor"]),
        ({"cursor": ""}, ["query", "cursor"]),
        ({"cursor": "bm90IGpzb24"}, ["query", "cursor"]),  # base64 of "not json"
        ({"cursor": "WyJuYW1lIiwiYSIsMV0"}, ["query", "cursor"]),  # made for sort=name
        ({"cursor": "WyItY3JlYXRlZCIsInN0ciIsMV0"}, ["query", "cursor"]),  # key of the wrong type
        ({"cursor": "WyItY3JlYXRlZCIsMSwwXQ"}, ["query", "cursor"]),  # id 0
    ],
)
def test_bad_list_query_is_422(shared_client: TestClient, params: Json, loc: list[Any]) -> None:
    response = shared_client.get("/products", params=params)
    assert response.status_code == 422, response.text
    assert [error["loc"] for error in response.json()["detail"]] == [loc]
