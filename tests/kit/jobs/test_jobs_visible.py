"""What an operator sees of the jobs: the request's trace continued by the job (a child span),
log lines with job id, attempt, request id and trace id, gauges read from the table at scrape
time, and the admin view (list with filters, retry a dead job) behind /admin's key."""

from __future__ import annotations

import re

import httpx

from .conftest import Serve, query, states, wait_for

TRACE_ID = "4bf92f3577b34da6a3ce929d0e0e4736"
PARENT = f"00-{TRACE_ID}-00f067aa0ba902b7-01"
KEY = "jobs-admin-key-0123456789"


def test_a_job_and_a_task_continue_the_trace_of_the_request_that_queued_them(
    serve: Serve, fresh_database_url: str
) -> None:
    server = serve(KIT_OTEL="1", OTEL_TRACES_EXPORTER="none", JOBS_SPANS="1")
    headers = {"traceparent": PARENT, "x-request-id": "placing-1"}
    with httpx.Client(base_url=server.url, timeout=10, headers=headers) as http:
        assert http.post("/things", json={"name": "traced"}).status_code == 201
        answer = http.post("/tasks/after-commit", json={"name": "read later"})
        assert answer.status_code == 201
    wait_for(lambda: states(fresh_database_url) == {"done": 1}, what="the job done")
    wait_for(
        lambda: any("task read thing" in line["msg"] for line in server.lines()),
        what="the task's log line",
    )
    spans = httpx.get(f"{server.url}/spans").json()
    servers = {s["name"]: s for s in spans if s["kind"] == "SERVER"}
    (job,) = [s for s in spans if s["name"] == "job record"]
    assert job["kind"] == "CONSUMER"
    assert job["trace_id"] == TRACE_ID
    assert job["parent_id"] == servers["POST /things"]["span_id"]  # a child of the request
    assert job["attributes"]["kit.job.attempt"] == 1
    (task,) = [s for s in spans if s["name"].startswith("task read-")]
    assert task["trace_id"] == TRACE_ID
    assert task["parent_id"] == servers["POST /tasks/after-commit"]["span_id"]
    # the job's and the task's queries are spans of their own span
    queries = [s for s in spans if "db.query.text" in s["attributes"]]
    assert any(q["parent_id"] == job["span_id"] for q in queries)
    assert any(q["parent_id"] == task["span_id"] for q in queries)

    lines = server.lines()
    (done,) = [line for line in lines if line["msg"].startswith("job 1 (record) done")]
    assert (done["job_id"], done["attempt"]) == (1, 1)
    assert (done["request_id"], done["trace_id"]) == ("placing-1", TRACE_ID)
    (mine,) = [line for line in lines if line["msg"] == "job 1 attempt 1 starts"]
    assert (mine["request_id"], mine["trace_id"]) == ("placing-1", TRACE_ID)
    (read,) = [line for line in lines if line["msg"].startswith("task read thing")]
    assert (read["request_id"], read["trace_id"]) == ("placing-1", TRACE_ID)


def sample(text: str, name: str, labels: str) -> float | None:
    match = re.search(rf"^{name}\{{{re.escape(labels)}\}} (\S+)$", text, re.MULTILINE)
    return None if match is None else float(match.group(1))


def gauge(text: str, name: str, labels: str) -> float:
    value = sample(text, name, labels)
    assert value is not None, f"{name}{{{labels}}} not in /metrics"
    return value


def test_gauges_from_the_table_and_the_admin_view(serve: Serve, fresh_database_url: str) -> None:
    # two worker processes: the gauges must not be counted twice
    server = serve("uvicorn", "--workers", "2", KIT_ADMIN="1", KIT_API_KEYS=f"{KEY} admin")
    with httpx.Client(base_url=server.url, timeout=10) as http:
        for n in range(2):
            assert http.post("/things", params={"job": "fail"}, json={"name": f"f{n}"}).is_success
        later = {"name": "later", "seconds": 0}
        assert http.post("/things", json=later).is_success
        wait_for(lambda: states(fresh_database_url) == {"dead": 2, "done": 1}, what="dead jobs")
        # one statement: made due in "default" first, a worker there would claim it before
        # it reached "parked", a queue nobody works
        query(
            fresh_database_url,
            "UPDATE kit_jobs SET queue = 'parked', run_at = now() - interval '5 s',"
            " state = 'ready', attempts = 0 WHERE name = 'record'",
        )
        for _ in range(4):  # whichever worker answers, the same numbers
            text = http.get("/metrics").text
            assert gauge(text, "kit_jobs", 'queue="default",state="dead"') == 2
            assert gauge(text, "kit_jobs", 'queue="parked",state="ready"') == 1
            assert gauge(text, "kit_jobs_oldest_ready_age_seconds", 'queue="parked"') >= 4

        def counted() -> bool:  # each worker's counters reach the others within a second
            # until then a counter may be missing (its worker's snapshot not written yet)
            text = http.get("/metrics").text
            return (
                sample(text, "kit_jobs_dead_total", 'queue="default"') == 2
                and sample(text, "kit_jobs_retried_total", 'queue="default"') == 4
            )

        wait_for(counted, what="the counters merged over the workers")

        assert http.get("/admin/jobs").status_code == 401
        admin = {"X-API-Key": KEY}
        page = http.get("/admin/jobs", params={"state": "dead", "limit": 1}, headers=admin)
        assert page.status_code == 200, page.text
        body = page.json()
        assert [item["state"] for item in body["items"]] == ["dead"]
        assert body["items"][0]["last_error"].startswith("RuntimeError: failing on purpose")
        rest = http.get(
            "/admin/jobs", params={"state": "dead", "before": body["next_before"]}, headers=admin
        ).json()
        assert len(rest["items"]) == 1
        assert rest["next_before"] is None
        assert http.get("/admin/jobs", params={"state": "bogus"}, headers=admin).status_code == 422
        assert http.get("/admin/jobs", params={"limit": 10**6}, headers=admin).status_code == 422
        dead_id = body["items"][0]["id"]
        retried = http.post(f"/admin/jobs/{dead_id}/retry", headers=admin)
        assert retried.status_code == 200, retried.text
        assert http.post(f"/admin/jobs/{dead_id}/retry", headers=admin).status_code in (409, 200)
        assert http.post("/admin/jobs/999999/retry", headers=admin).status_code == 404
        assert http.post("/admin/jobs/abc/retry", headers=admin).status_code == 422
    # retried: it runs again (and fails again, three more attempts)
    wait_for(
        lambda: query(
            fresh_database_url,
            "SELECT attempts FROM kit_jobs WHERE id = $1 AND state = 'dead'",
            dead_id,
        ),
        what="the retried job dead again",
    )
