"""Orders against a catalog that answers 1 GiB, or a gzip bomb: a fast 502, not a 500, and the
orders process stays small (it grew by 600 MB in 2 s before kit.http bounded answers)."""

from __future__ import annotations

from pathlib import Path

import httpx
import pytest

from kit.testing import ServerProcess

from .conftest import REPO, WRITER, order_of, orders_process


def rss_mib(pid: int) -> float:
    with open(f"/proc/{pid}/status") as status:
        for line in status:
            if line.startswith("VmRSS:"):
                return int(line.split()[1]) / 1024
    raise AssertionError("no VmRSS")


@pytest.mark.parametrize("answer", ["huge", "bomb"])
def test_a_catalog_answering_a_gibibyte_is_a_502_and_orders_stays_small(
    answer: str, fresh_database_url: str, tmp_path: Path
) -> None:
    env = {"KIT_ACCESS_LOG": "0", "KIT_GRACEFUL_TIMEOUT": "1", "STUB_PRODUCTS": answer}
    stub = ServerProcess(
        "tests.kit.outbound.upstream:app", runtime="uvicorn", env=env, cwd=REPO, log=tmp_path
    )
    with stub, orders_process(fresh_database_url, stub.url, tmp_path / "orders.log") as orders:
        before = rss_mib(orders.pid)
        with httpx.Client(base_url=orders.url, timeout=60, headers=WRITER) as http:
            for round_ in range(3):
                lines = [(100 * round_ + n, 1) for n in range(1, 6)]  # five lines, five calls
                response = http.post("/orders", json=order_of(*lines))
                if round_ == 0:
                    assert response.status_code == 502, response.text
                    assert "over the limit" in response.json()["detail"]
                else:  # the catalog's breaker may be open by now: 503 without a call
                    assert response.status_code in (502, 503), response.text
            assert http.get("/orders").json()["items"] == []  # nothing stored
        grown = rss_mib(orders.pid) - before
    assert grown < 200, f"orders grew by {grown:.0f} MiB"
