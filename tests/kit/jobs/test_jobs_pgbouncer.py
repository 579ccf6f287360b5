"""Jobs through PgBouncer in transaction mode: no session state (no LISTEN, no session
advisory lock, no named prepared statement) — claims, renewals, limits and retries work."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from urllib.parse import urlsplit

import httpx
import pytest

from kit.testing.pgbouncer import PgBouncer

from .conftest import Serve, query, states, wait_for


@pytest.fixture
def bouncer(database_url: str, tmp_path: Path) -> Iterator[PgBouncer]:
    pooler = PgBouncer(database_url, tmp_path / "pgbouncer", pool_size=3).start()
    try:
        yield pooler
    finally:
        pooler.stop()


def test_two_instances_through_a_transaction_pooler(
    serve: Serve, fresh_database_url: str, bouncer: PgBouncer
) -> None:
    through = bouncer.url(urlsplit(fresh_database_url).path.lstrip("/"))
    env = {
        "DATABASE_URL": through,
        "KIT_DB_PGBOUNCER": "1",
        "KIT_DB_MIGRATE_URL": fresh_database_url,
        "KIT_JOBS_LEASE": "1",  # renewals every third of a second, through the pooler
        "JOBS_SLEEP": "1.2",
        "JOBS_TICK": "1",
    }
    servers = [serve(**env) for _ in range(2)]
    with httpx.Client(timeout=10) as http:
        for n in range(8):
            url = servers[n % 2].url
            body = {"name": f"t{n}", "seconds": 0.2}
            assert http.post(f"{url}/things", params={"job": "limited"}, json=body).is_success
            assert http.post(f"{url}/things", json={"name": f"r{n}"}).is_success
        assert http.post(f"{servers[0].url}/things", params={"job": "fail"}, json=body).is_success

    def finished() -> bool:
        counts = states(fresh_database_url)
        return counts.get("dead") == 1 and not counts.get("ready") and not counts.get("running")

    wait_for(finished, timeout=90, what="every job done or dead")
    runs = query(fresh_database_url, "SELECT count(*) AS n, max(running) AS most FROM job_runs")
    assert runs[0]["n"] == 16  # each once: the long ones kept their leases through the pooler
    limited = query(
        fresh_database_url,
        "SELECT max(r.running) AS most FROM job_runs r JOIN kit_jobs j ON j.id = r.job_id"
        " WHERE j.queue = 'limited'",
    )
    assert limited[0]["most"] <= 2
    assert query(fresh_database_url, "SELECT count(*) AS n FROM ticks")[0]["n"] >= 1
    for server in servers:
        output = server.output()
        assert "prepared statement" not in output
        assert "kit.jobs:" not in output  # no fault while claiming, renewing or scheduling
