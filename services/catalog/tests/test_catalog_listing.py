"""Listing: keyset pages through every sort, and filters on indexed columns."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import pytest

from kit.testing import TestClient

from ..queries import SORTS
from .pages import expected, seed, walk

Json = dict[str, Any]


@pytest.fixture(scope="module")
def products(shared_client: TestClient) -> list[Json]:
    """The rows every test of this module reads (and none writes)."""
    return seed(shared_client)


@pytest.fixture
def client(shared_client: TestClient) -> TestClient:
    return shared_client


@pytest.mark.parametrize("sort", list(SORTS))
def test_pages_cover_every_row_once_in_order(
    client: TestClient, products: list[Json], sort: str
) -> None:
    for limit in (1, 2, 7, 100):
        ids = [item["id"] for item in walk(client, limit, sort=sort)]
        assert ids == expected(products, sort), (sort, limit)


def test_default_order_is_newest_first(client: TestClient, products: list[Json]) -> None:
    page = client.get("/products").json()
    assert [item["id"] for item in page["items"]] == [p["id"] for p in reversed(products)]
    assert page["next_cursor"] is None
    assert "variants" not in page["items"][0]  # the list is a summary


@pytest.mark.parametrize(
    ("params", "keep"),
    [
        ({"status": "active"}, lambda p: p["status"] == "active"),
        ({"min_price": 900}, lambda p: p["price_cents"] >= 900),
        ({"max_price": 500}, lambda p: p["price_cents"] <= 500),
        (
            {"min_price": 500, "max_price": 1500, "status": "active"},
            lambda p: 500 <= p["price_cents"] <= 1500 and p["status"] == "active",
        ),
        ({"category": True}, lambda p: p["category_id"] is not None),
        ({"min_price": 3000}, lambda p: False),
    ],
)
def test_filters(
    client: TestClient, products: list[Json], params: Json, keep: Callable[[Json], bool]
) -> None:
    if params.pop("category", False):
        params["category_id"] = next(p["category_id"] for p in products if p["category_id"])
    ids = [item["id"] for item in walk(client, 2, sort="price", **params)]
    assert ids == expected([p for p in products if keep(p)], "price")
