"""Orders in process, calling a real catalog process: placing, reading, paging, bad input."""

from __future__ import annotations

import time
from typing import Any

import pytest

from kit.testing import TestClient

from .conftest import Json, order_of

pytestmark = pytest.mark.usefixtures("wired")


def test_an_order_is_placed_with_the_prices_it_read_and_confirmed(
    client: TestClient, products: list[Json]
) -> None:
    tee, mug, _, _ = products
    response = client.post("/orders", json=order_of((tee["id"], 2), (mug["id"], 3)))
    assert response.status_code == 201, response.text
    order = response.json()
    assert response.headers["location"] == f"/orders/{order['id']}"
    assert order["total_cents"] == 2 * 1500 + 3 * 250
    assert order["status"] == "placed"
    assert order["lines"] == [
        {"product_id": tee["id"], "name": "tee-1", "quantity": 2, "unit_price_cents": 1500},
        {"product_id": mug["id"], "name": "mug-1", "quantity": 3, "unit_price_cents": 250},
    ]
    for _ in range(100):  # the confirmation runs after the response, in the task queue
        read = client.get(response.headers["location"])
        if read.json()["status"] == "confirmed":
            break
        time.sleep(0.02)
    assert read.status_code == 200
    assert read.json() == {**order, "status": "confirmed"}


def test_the_same_product_on_several_lines_is_read_once(
    client: TestClient, products: list[Json]
) -> None:
    from ..app import catalog

    hat = products[2]
    response = client.post("/orders", json=order_of((hat["id"], 1), (hat["id"], 4)))
    assert response.status_code == 201, response.text
    assert response.json()["total_cents"] == 5 * 9900
    assert catalog.cache is not None
    assert catalog.cache.misses == 1


def test_orders_are_paged_newest_first(client: TestClient, products: list[Json]) -> None:
    ids = []
    for quantity in range(1, 6):
        response = client.post("/orders", json=order_of((products[1]["id"], quantity)))
        ids.append(response.json()["id"])
    first = client.get("/orders", params={"limit": 2}).json()
    assert [item["id"] for item in first["items"]] == ids[::-1][:2]
    seen = [item["id"] for item in first["items"]]
    cursor = first["next_cursor"]
    while cursor is not None:
        page = client.get("/orders", params={"limit": 2, "cursor": cursor}).json()
        seen += [item["id"] for item in page["items"]]
        cursor = page["next_cursor"]
    assert seen == ids[::-1]
    assert "lines" not in first["items"][0]


def test_unknown_and_unsellable_products_are_422s_naming_their_lines(
    client: TestClient, products: list[Json]
) -> None:
    tee, draft = products[0], products[3]
    body = order_of((tee["id"], 1), (999_999, 1), (draft["id"], 1))
    response = client.post("/orders", json=body)
    assert response.status_code == 422
    detail = response.json()["detail"]
    assert [item["loc"] for item in detail] == [
        ["body", "lines", 1, "product_id"],
        ["body", "lines", 2, "product_id"],
    ]
    assert detail[0]["input"] == 999_999
    assert "no such product" in detail[0]["msg"]
    assert "not for sale" in detail[1]["msg"]
    assert client.get("/orders").json()["items"] == []  # nothing stored


@pytest.mark.parametrize(
    ("body", "loc"),
    [
        ({"lines": []}, ["body", "lines"]),
        ({"lines": [{"product_id": 1, "quantity": 1}] * 51}, ["body", "lines"]),
        ({"lines": [{"product_id": 1, "quantity": 0}]}, ["body", "lines", 0, "quantity"]),
        ({"lines": [{"product_id": 1, "quantity": 1001}]}, ["body", "lines", 0, "quantity"]),
        ({"lines": [{"product_id": 0, "quantity": 1}]}, ["body", "lines", 0, "product_id"]),
        ({"lines": [{"product_id": "x", "quantity": 1}]}, ["body", "lines", 0, "product_id"]),
        ({"lines": [{"quantity": 1}]}, ["body", "lines", 0, "product_id"]),
        ({"lines": [{"product_id": 1, "quantity": 1, "x": 1}]}, ["body", "lines", 0, "x"]),
        ({}, ["body", "lines"]),
    ],
)
def test_bad_bodies_are_422s(client: TestClient, body: Json, loc: list[Any]) -> None:
    response = client.post("/orders", json=body)
    assert response.status_code == 422, response.text
    assert response.json()["detail"][0]["loc"] == loc


def test_bad_requests_are_4xx(client: TestClient) -> None:
    assert (
        client.post(
            "/orders", content=b"{", headers={"content-type": "application/json"}
        ).status_code
        == 422
    )
    assert (
        client.post("/orders", content=b"x", headers={"content-type": "text/plain"}).status_code
        == 415
    )
    assert client.get("/orders/0").status_code == 422
    assert client.get("/orders/123456").status_code == 404
    assert client.get("/orders", params={"limit": 0}).status_code == 422
    assert client.get("/orders", params={"cursor": "abc"}).status_code == 422


def test_catalog_not_configured_is_a_503(client: TestClient) -> None:
    from ..app import catalog

    catalog.base_url = None
    response = client.post("/orders", json=order_of((1, 1)))
    assert response.status_code == 503
    assert response.headers["retry-after"] == "1"
    assert "not configured" in response.json()["detail"]


def test_placing_an_order_needs_a_token_with_orders_write(
    client: TestClient, products: list[Json]
) -> None:
    from kit.testing import bearer, mint_token

    from ..app import app

    body = order_of((products[0]["id"], 1))
    anonymous = client.post("/orders", json=body, headers={"authorization": ""})
    assert anonymous.status_code == 401
    assert anonymous.headers["www-authenticate"].startswith("Bearer")
    # refused before the body is read: no 422 naming fields
    assert client.post("/orders", json={}, headers={"authorization": ""}).status_code == 401
    reader = bearer(mint_token(app, scopes=["orders:read"], expires_in=60))
    assert client.post("/orders", json=body, headers=reader).status_code == 403
    forged = {"authorization": "Bearer not-a-token"}
    assert client.post("/orders", json=body, headers=forged).status_code == 401
    assert client.get("/orders", headers={"authorization": ""}).json()["items"] == []  # public
