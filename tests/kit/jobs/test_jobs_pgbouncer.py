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


def test_the_database_gone_and_back_the_workers_carry_on(
    serve: Serve, fresh_database_url: str, bouncer: PgBouncer, tmp_path: Path
) -> None:
    """The only way to the database (a pooler) stops: the instance keeps serving, /metrics says
    the jobs table is not answering (fast), the workers log the fault once rather than per poll;
    the pooler back on its port, a job enqueued meanwhile runs."""
    through = bouncer.url(urlsplit(fresh_database_url).path.lstrip("/"))
    env = {
        "DATABASE_URL": through,
        "KIT_DB_PGBOUNCER": "1",
        "KIT_DB_MIGRATE_URL": fresh_database_url,
        "KIT_DB_ACQUIRE_TIMEOUT": "0.5",
        "KIT_DB_CONNECT_TIMEOUT": "1",
    }
    server = serve(**env)
    with httpx.Client(base_url=server.url, timeout=10) as http:
        assert http.post("/things", json={"name": "before"}).is_success
        wait_for(lambda: states(fresh_database_url) == {"done": 1}, what="the first job")
        bouncer.stop()
        query(  # the pooler's server connections go too: nothing is left open to use
            fresh_database_url,
            "SELECT pg_terminate_backend(pid) FROM pg_stat_activity"
            " WHERE datname = $1 AND pid <> pg_backend_pid()",
            urlsplit(fresh_database_url).path.lstrip("/"),
        )
        for _ in range(3):
            metrics = http.get("/metrics")
            assert metrics.status_code == 200
            assert "kit_jobs_up 0" in metrics.text
        # enqueued on the side while the instance cannot reach the database
        query(
            fresh_database_url,
            "INSERT INTO kit_jobs (queue, name, payload, max_attempts)"
            " VALUES ('default', 'record', '{\"name\": \"meanwhile\"}', 3)",
        )
        wait_for(
            lambda: any("claiming jobs failed" in line["msg"] for line in server.lines()),
            what="a failed claim logged",
        )
        again = PgBouncer(fresh_database_url, tmp_path / "again", pool_size=3)
        again.port = bouncer.port
        again.start()
        try:
            wait_for(lambda: states(fresh_database_url) == {"done": 2}, what="the job after")
            assert "kit_jobs_up 1" in http.get("/metrics").text
        finally:
            again.stop()
    faults = [
        line for line in server.lines() if line["msg"].startswith("kit.jobs: claiming jobs failed")
    ]
    assert 1 <= len(faults) <= 5  # once per 10 s, not once per poll (every 0.1 s here)
