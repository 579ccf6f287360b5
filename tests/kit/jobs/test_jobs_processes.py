"""Durable jobs on real server processes and a real Postgres: a kill -9 mid-job loses nothing,
two instances never run one job at once, a rolled-back request enqueues nothing, a periodic
job runs once per period with three instances, and a queue's limit holds across instances."""

from __future__ import annotations

import signal

import httpx

from .conftest import Serve, query, states, wait_for


def place(url: str, n: int, job: str = "record", **body: object) -> dict[str, int]:
    answer = httpx.post(
        f"{url}/things", params={"job": job}, json={"name": f"thing-{n}", **body}, timeout=10
    )
    assert answer.status_code == 201, answer.text
    result: dict[str, int] = answer.json()
    return result


def test_a_rolled_back_request_enqueues_nothing(serve: Serve, fresh_database_url: str) -> None:
    server = serve()
    for n in range(3):
        answer = httpx.post(
            f"{server.url}/things", params={"fail": "1"}, json={"name": f"no-{n}"}, timeout=10
        )
        assert answer.status_code == 409
    place(server.url, 1)
    wait_for(lambda: states(fresh_database_url) == {"done": 1}, what="the committed job")
    assert query(fresh_database_url, "SELECT count(*) AS n FROM things")[0]["n"] == 1
    assert query(fresh_database_url, "SELECT count(*) AS n FROM kit_jobs")[0]["n"] == 1


def test_kill_9_mid_job_loses_no_job_and_no_job_runs_twice_at_once(
    serve: Serve, fresh_database_url: str
) -> None:
    # jobs last longer than the lease: the renewals, not luck, keep a second instance off them
    env = {"KIT_JOBS_LEASE": "1", "JOBS_SLEEP": "1.5", "JOBS_CONCURRENCY": "3"}
    first = serve(**env)
    second = serve(**env)
    for n in range(12):
        place(first.url, n)

    def first_runs() -> list[int]:
        rows = query(
            fresh_database_url,
            "SELECT id FROM kit_jobs WHERE state = 'running' AND lease_owner LIKE $1",
            f"%:{first.proc.pid}:%",  # uvicorn, one worker: the server process runs the app
        )
        return [row["id"] for row in rows]

    held = wait_for(first_runs, what="the first instance running jobs")
    first.stop(signal.SIGKILL)
    wait_for(lambda: states(fresh_database_url) == {"done": 12}, timeout=90, what="every job done")
    runs = query(fresh_database_url, "SELECT job_id, attempt FROM job_runs")
    every = query(fresh_database_url, "SELECT id FROM kit_jobs")
    assert {row["job_id"] for row in runs} == {row["id"] for row in every}
    # the killed instance's jobs ran again, as a new attempt (the killed one counts)
    again = query(fresh_database_url, "SELECT id, attempts FROM kit_jobs WHERE id = ANY($1)", held)
    assert all(row["attempts"] >= 2 for row in again), again
    # the exclusion constraint refused nothing: no attempt failed on an overlapping run
    assert "conflicting key value violates exclusion constraint" not in second.output()
    assert "attempt 2 failed" not in second.output()
    assert any("its lease expired" in line["msg"] for line in second.lines())


def test_a_periodic_job_runs_once_per_period_with_three_instances(
    serve: Serve, fresh_database_url: str
) -> None:
    servers = [serve(JOBS_TICK="1") for _ in range(3)]

    def periods() -> list[str]:
        rows = query(fresh_database_url, "SELECT DISTINCT period FROM ticks ORDER BY period")
        return [row["period"] for row in rows]

    wait_for(lambda: len(periods()) >= 4, what="four periods")
    for server in servers:
        server.stop()
    rows = query(fresh_database_url, "SELECT period, count(*) AS n FROM ticks GROUP BY period")
    assert all(row["n"] == 1 for row in rows), [dict(r) for r in rows]
    pids = {row["pid"] for row in query(fresh_database_url, "SELECT pid FROM ticks")}
    assert pids  # run by whichever instance claimed it first
    keys = query(fresh_database_url, "SELECT count(*) AS n FROM kit_jobs WHERE name = 'tick'")
    assert keys[0]["n"] == len(rows) or keys[0]["n"] == len(rows) + 1  # the next may be queued


def test_a_queues_limit_holds_across_instances(serve: Serve, fresh_database_url: str) -> None:
    servers = [serve(JOBS_LIMIT="2") for _ in range(2)]
    for n in range(10):
        place(servers[n % 2].url, n, job="limited", seconds=0.3)
    wait_for(lambda: states(fresh_database_url) == {"done": 10}, what="every limited job")
    rows = query(fresh_database_url, "SELECT max(running) AS most FROM job_runs")
    assert rows[0]["most"] <= 2  # each run counted itself: at most two at any start
    runs = query(fresh_database_url, "SELECT DISTINCT pid FROM job_runs")
    assert len(runs) >= 1


def test_a_failing_job_is_retried_with_backoff_then_dead_with_its_last_error(
    serve: Serve, fresh_database_url: str
) -> None:
    server = serve()
    place(server.url, 1, job="fail")
    wait_for(lambda: states(fresh_database_url) == {"dead": 1}, what="the job dead")
    (row,) = query(fresh_database_url, "SELECT attempts, last_error FROM kit_jobs")
    assert row["attempts"] == 3
    assert row["last_error"] == "RuntimeError: failing on purpose (attempt 3)"
    messages = [line["msg"] for line in server.lines() if line["logger"] == "kit.jobs"]
    assert sum("failed, retried in" in m for m in messages) == 2
    assert any("is dead after attempt 3" in m for m in messages)
