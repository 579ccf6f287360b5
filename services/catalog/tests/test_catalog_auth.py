"""Who may write: reads are public; every write needs a bearer JWT with `catalog:write`,
checked before the body (401 rather than 422 or 413), and a refused write writes nothing."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import pytest

from kit.testing import TestClient, bearer, mint_token

from ..app import app as catalog

Json = dict[str, Any]
PRODUCT = {"sku": "TEE-9", "name": "Tee", "price_cents": 100}
READER = bearer(mint_token(catalog, scopes=["catalog:read"], expires_in=24 * 3600))


def writes(product_id: int, category_id: int) -> list[tuple[str, str, Json | None]]:
    return [
        ("POST", "/categories", {"slug": "hats", "name": "Hats"}),
        ("DELETE", f"/categories/{category_id}", None),
        ("POST", "/products", PRODUCT),
        ("PATCH", f"/products/{product_id}", {"name": "Renamed"}),
        ("DELETE", f"/products/{product_id}", None),
    ]


def counts(sql: Callable[..., Any]) -> tuple[int, int, str]:
    rows = sql(
        "SELECT (SELECT count(*) FROM categories) AS c, (SELECT count(*) FROM products) AS p,"
        " (SELECT string_agg(name || version, ',') FROM products) AS names"
    )
    return rows[0]["c"], rows[0]["p"], rows[0]["names"]


@pytest.mark.parametrize(
    ("headers", "status"),
    [
        ({}, 401),
        ({"authorization": "Bearer not-a-token"}, 401),
        (bearer(mint_token(catalog, scopes=["catalog:write"], secret="x" * 64)), 401),
        (bearer(mint_token(catalog, scopes=["catalog:write"], expires_in=-600)), 401),
        (READER, 403),
    ],
)
def test_every_write_is_refused_and_writes_nothing(
    category: Json,
    create_product: Callable[..., Json],
    client: TestClient,
    sql: Callable[..., Any],
    headers: dict[str, str],
    status: int,
) -> None:
    product = create_product(category_id=category["id"])
    del client.headers["authorization"]  # from here on, only what the case sends
    before = counts(sql)
    for method, path, body in writes(product["id"], category["id"]):
        response = client.request(method, path, json=body, headers={**headers, "if-match": "*"})
        assert response.status_code == status, (method, path, response.text)
        assert "www-authenticate" in response.headers
    assert counts(sql) == before


def test_reads_are_public(category: Json, anonymous: TestClient) -> None:
    assert anonymous.get("/categories").status_code == 200
    assert anonymous.get(f"/categories/{category['id']}").status_code == 200
    assert anonymous.get("/products").status_code == 200


def test_401_before_422_and_before_413(anonymous: TestClient) -> None:
    response = anonymous.post("/products", json={"sku": 5})
    assert response.status_code == 401
    assert "detail" in response.json()
    assert not isinstance(response.json()["detail"], list)  # nothing about the schema
    too_big = anonymous.post(
        "/products", content=b"x" * (2 * 1024 * 1024), headers={"content-type": "application/json"}
    )
    assert too_big.status_code == 401
    with_token = anonymous.post("/products", json={"sku": 5}, headers=READER)
    assert with_token.status_code == 403


def test_the_document_says_so() -> None:
    from kit.openapi import build_document

    document = build_document(catalog)
    assert document["components"]["securitySchemes"] == {
        "JWTBearer": {"type": "http", "scheme": "bearer", "bearerFormat": "JWT"}
    }
    for path, item in document["paths"].items():
        for method, operation in item.items():
            if method == "get":
                assert "security" not in operation, path
            else:
                assert operation["security"] == [{"JWTBearer": ["catalog:write"]}], path
                assert {"401", "403"} <= set(operation["responses"])
