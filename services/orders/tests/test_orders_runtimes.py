"""Orders and the catalog as two real `kit serve` processes, on each runtime."""

from __future__ import annotations

import json
from pathlib import Path

import httpx
import pytest

from services.catalog.tests.servers import runtime_params

from .conftest import WRITER, Json, catalog_process, order_of, orders_process


def access_lines(log: str, request_id: str) -> list[Json]:
    lines = [json.loads(line) for line in log.splitlines() if line.startswith("{")]
    return [
        line
        for line in lines
        if line["logger"] == "kit.access" and line.get("request_id") == request_id
    ]


@pytest.mark.parametrize("runtime", runtime_params())
def test_orders_against_the_catalog_on_a_real_server(
    runtime: str,
    catalog_database: str,
    products: list[Json],
    fresh_database_url: str,
    tmp_path: Path,
) -> None:
    tee, mug = products[0]["id"], products[1]["id"]
    catalog = catalog_process(catalog_database, tmp_path / "catalog.log", runtime)
    with catalog:
        orders = orders_process(fresh_database_url, catalog.url, tmp_path / "orders.log", runtime)
        with orders, httpx.Client(base_url=orders.url, timeout=10, headers=WRITER) as http:
            rid = f"order-trace-{runtime}"
            placed = http.post(
                "/orders", json=order_of((tee, 1), (mug, 2)), headers={"x-request-id": rid}
            )
            assert placed.status_code == 201, placed.text
            assert placed.json()["total_cents"] == 1500 + 2 * 250
            assert placed.headers["x-request-id"] == rid
            assert http.get(placed.headers["location"]).status_code == 200
            unknown = http.post("/orders", json=order_of((10**9, 1)))
            assert unknown.status_code == 422
            assert unknown.json()["detail"][0]["loc"] == ["body", "lines", 0, "product_id"]
            metrics = http.get("/metrics").text
            assert (
                'kit_outbound_requests_total{upstream="catalog",method="GET",outcome="200"}'
                in metrics
            )
            assert "kit_jobs_up 1" in metrics  # the confirmations' gauges, read at scrape
    # one id through both services: the catalog's access log has orders' calls under it
    assert [line["route"] for line in access_lines(orders.output(), rid)] == ["/orders"]
    called = access_lines(catalog.output(), rid)
    assert sorted(line["path"] for line in called) == [f"/products/{tee}", f"/products/{mug}"]
