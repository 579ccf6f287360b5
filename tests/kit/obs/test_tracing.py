"""OpenTelemetry: spans of a real request through Postgres to a second service, trace ids in
the logs, sampling, and nothing of it when KIT_OTEL is off."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from typing import Any

import httpx

from tests.kit.obs.conftest import REPO

TRACE_ID = "4bf92f3577b34da6a3ce929d0e0e4736"
PARENT = f"00-{TRACE_ID}-00f067aa0ba902b7-01"


def traced(serve: Any, runtime: str, database_url: str, **env: str) -> Any:
    return serve(
        runtime,
        KIT_OTEL="1",
        OBS_SPANS="1",
        OBS_DB="1",
        DATABASE_URL=database_url,
        KIT_MIGRATE="0",
        **env,
    )


def test_request_through_postgres_and_a_second_service(
    serve: Any, runtime: str, database_url: str
) -> None:
    downstream = traced(serve, runtime, database_url)
    upstream = traced(serve, runtime, database_url, OBS_DOWNSTREAM=downstream.url)
    response = httpx.get(
        upstream.url + "/chain",
        params={"downstream": downstream.url},
        headers={"traceparent": PARENT},
        timeout=10,
    )
    assert response.status_code == 200, response.text
    assert response.json()["one"] == 1

    spans = httpx.get(upstream.url + "/spans").json()
    (server,) = [s for s in spans if s["kind"] == "SERVER" and s["name"] == "GET /chain"]
    assert server["trace_id"] == TRACE_ID  # continued from the caller's traceparent
    assert server["parent_id"] == "00f067aa0ba902b7"
    assert server["attributes"]["http.route"] == "/chain"
    assert server["attributes"]["http.response.status_code"] == 200
    queries = [s for s in spans if s["kind"] == "CLIENT" and "db.query.text" in s["attributes"]]
    mine = ["SELECT 1", "SELECT generate_series(1, 50) AS n"]
    # (kit's own queries when a connection opens, if any, are spans too)
    queries = [q for q in queries if q["attributes"]["db.query.text"] in mine]
    texts = [q["attributes"]["db.query.text"] for q in queries]
    assert texts == mine  # one span per query, not per row
    assert all(q["parent_id"] == server["span_id"] for q in queries)
    assert all(q["name"].startswith("SELECT") for q in queries)
    (outbound,) = [
        s for s in spans if s["kind"] == "CLIENT" and "db.query.text" not in s["attributes"]
    ]
    assert outbound["parent_id"] == server["span_id"]
    assert outbound["attributes"]["http.response.status_code"] == 200

    # the second service got traceparent naming the outbound span, and continued the trace
    echoed = response.json()["downstream"]["traceparent"]
    assert echoed == f"00-{TRACE_ID}-{outbound['span_id']}-01"
    remote = httpx.get(downstream.url + "/spans").json()
    (item,) = [s for s in remote if s["trace_id"] == TRACE_ID]
    assert item["trace_id"] == TRACE_ID
    assert item["parent_id"] == outbound["span_id"]

    # the same through kit.http, the kit's own client
    other = "4bf92f3577b34da6a3ce929d0e0e4737"
    via_kit = httpx.get(
        upstream.url + "/chain-http",
        headers={"traceparent": f"00-{other}-00f067aa0ba902b7-01"},
        timeout=10,
    )
    assert via_kit.status_code == 200, via_kit.text
    spans = httpx.get(upstream.url + "/spans").json()
    (server,) = [s for s in spans if s["name"] == "GET /chain-http"]
    (call,) = [s for s in spans if s["kind"] == "CLIENT" and s["trace_id"] == other]
    assert call["parent_id"] == server["span_id"]
    assert call["attributes"]["http.response.status_code"] == 200
    assert call["attributes"]["url.full"] == downstream.url + "/items/7"
    assert via_kit.json()["traceparent"] == f"00-{other}-{call['span_id']}-01"
    remote = httpx.get(downstream.url + "/spans").json()
    (item,) = [s for s in remote if s["trace_id"] == other]
    assert item["parent_id"] == call["span_id"]

    upstream.stop()
    lines = upstream.lines()
    (handler_line,) = [line for line in lines if line.get("msg") == "chain queried"]
    assert handler_line["trace_id"] == TRACE_ID
    (access,) = [
        line for line in lines if line["logger"] == "kit.access" and line["path"] == "/chain"
    ]
    assert access["trace_id"] == TRACE_ID
    spans_access = next(
        line for line in lines if line["logger"] == "kit.access" and line["path"] == "/spans"
    )
    assert len(spans_access["trace_id"]) == 32  # a new trace: no traceparent came with it
    assert spans_access["trace_id"] != TRACE_ID


def test_sampler_from_the_standard_variables(serve: Any, database_url: str) -> None:
    server = traced(
        serve,
        "uvicorn",
        database_url,
        OTEL_TRACES_SAMPLER="traceidratio",
        OTEL_TRACES_SAMPLER_ARG="0",
    )
    for _ in range(5):
        assert httpx.get(server.url + "/chain").status_code == 200
    assert httpx.get(server.url + "/spans").json() == []
    # a sampled parent does not change a plain ratio sampler's answer; parentbased would
    assert httpx.get(server.url + "/chain", headers={"traceparent": PARENT}).status_code == 200
    assert httpx.get(server.url + "/spans").json() == []


def test_kit_builds_the_provider_from_otel_variables(serve: Any) -> None:
    server = serve(
        "uvicorn", KIT_OTEL="1", OTEL_TRACES_EXPORTER="console", OTEL_SERVICE_NAME="obs-svc"
    )
    assert httpx.get(server.url + "/items/3").status_code == 200
    server.stop()
    output = server.output()
    assert '"name": "GET /items/{item_id}"' in output  # the console exporter's JSON
    assert '"service.name": "obs-svc"' in output
    # one line per span, like the log lines beside it: every JSON line parses on its own
    records = [json.loads(line) for line in output.splitlines() if line.startswith("{")]
    spans = [r for r in records if "context" in r and "name" in r]
    assert "GET /items/{item_id}" in {span["name"] for span in spans}


def test_unknown_exporter_is_one_line_and_exit_2() -> None:
    done = subprocess.run(
        [sys.executable, "-m", "kit.cli", "serve", "tests.kit.obs.app:app"],
        cwd=REPO,
        env={**_env(), "KIT_OTEL": "1", "OTEL_TRACES_EXPORTER": "zipkin"},
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert done.returncode == 2
    assert done.stderr.strip().splitlines()[-1] == (
        "kit serve: OTEL_TRACES_EXPORTER='zipkin' is not allowed; use one of otlp, console, none"
    )


def test_off_imports_nothing_and_adds_no_layer() -> None:
    code = (
        "import sys; from tests.kit.obs.app import app; stack = app.build_middleware_stack();"
        "assert not [m for m in sys.modules if m.startswith('opentelemetry')], 'imported';"
        "print(type(stack).__name__)"
    )
    done = subprocess.run(
        [sys.executable, "-c", code], cwd=REPO, env=_env(), capture_output=True, text=True
    )
    assert done.returncode == 0, done.stderr
    assert done.stdout.strip() == "ObserveMiddleware"


def _env() -> dict[str, str]:
    return {k: v for k, v in os.environ.items() if not k.startswith(("KIT_OTEL", "OTEL_"))}
