"""SIGTERM on every runtime: running jobs finish within the graceful time, or are given back
(the attempt not counted) and logged; nothing is left leased to a process that is gone."""

from __future__ import annotations

import signal

import httpx
import pytest

from tests.runtimes.conftest import runtime_params

from .conftest import Serve, query, states, wait_for


@pytest.mark.parametrize("runtime", runtime_params())
def test_sigterm_finishes_or_gives_back_and_logs_every_job(
    serve: Serve, fresh_database_url: str, runtime: str
) -> None:
    server = serve(runtime, KIT_GRACEFUL_TIMEOUT="3", JOBS_CONCURRENCY="4")
    with httpx.Client(base_url=server.url, timeout=10) as http:
        for n, seconds in enumerate([0.5, 0.5, 60, 60, 60, 60]):
            body = {"name": f"thing-{n}", "seconds": seconds}
            assert http.post("/things", json=body).status_code == 201
    wait_for(
        lambda: states(fresh_database_url) == {"done": 2, "running": 4},
        what="the quick jobs done, the four long ones running",
    )
    server.send_signal(signal.SIGTERM)
    assert server.proc.wait(timeout=30) is not None
    rows = query(fresh_database_url, "SELECT id, state, attempts FROM kit_jobs ORDER BY id")
    long_ones = {row["id"] for row in rows[2:]}
    assert [row["state"] for row in rows[:2]] == ["done", "done"]
    # given back, the attempt not counted: the next instance starts them as attempt 1
    assert {(row["state"], row["attempts"]) for row in rows[2:]} == {("ready", 0)}
    given_back = {
        line["job_id"]
        for line in server.lines()
        if line["logger"] == "kit.jobs" and "given back at shutdown" in line["msg"]
    }
    assert given_back == long_ones
