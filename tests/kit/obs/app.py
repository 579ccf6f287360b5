"""The app the observability tests serve: its own metrics, a traced chain, a slow query."""

from __future__ import annotations

import logging
import os
from typing import Annotated, Any

import asyncpg
import httpx

from kit import App, Depends, Request
from kit.db import Database, connection
from kit.http import HttpClient, Outbound, Upstream
from kit.ops.custom_metrics import Counter, Histogram

log = logging.getLogger("obs.app")
HITS = Counter("obs_hits", "Hits of /count, by colour.", ["colour"], max_series=3)
SIZES = Histogram("obs_size", "Sizes seen by /count.", buckets=(1, 10, 100))

spans = None
if os.environ.get("OBS_SPANS"):  # tracing tests: finished spans stay in memory, /spans lists them
    from opentelemetry import trace
    from opentelemetry.sdk.trace import TracerProvider
    from opentelemetry.sdk.trace.export import SimpleSpanProcessor
    from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter

    spans = InMemorySpanExporter()
    provider = TracerProvider()
    provider.add_span_processor(SimpleSpanProcessor(spans))
    trace.set_tracer_provider(provider)

database = Database() if os.environ.get("OBS_DB") else None
app = App(title="obs", version="1.2.3", database=database)
http = HttpClient(Upstream("down", os.environ.get("OBS_DOWNSTREAM"), retries=0))
app.add_part(http.part())


@app.get("/count")
async def count(colour: str = "red", size: float = 1.0) -> dict[str, int]:
    HITS.labels(colour=colour).inc()
    SIZES.observe(size)
    return {"pid": os.getpid()}


@app.get("/log")
async def log_lines() -> dict[str, bool]:
    log.debug("a debug line")
    log.info("an info line")
    return {"logged": True}


@app.get("/db/sleep")
async def db_sleep(
    conn: Annotated[asyncpg.Connection, Depends(connection)], seconds: float = 3.0
) -> dict[str, bool]:
    await conn.execute("SELECT pg_sleep($1)", seconds)
    return {"slept": True}


@app.get("/chain")
async def chain(
    conn: Annotated[asyncpg.Connection, Depends(connection)], downstream: str = ""
) -> dict[str, Any]:
    """Queries Postgres twice, then (if given) calls ``downstream``/items/7 with tracing."""
    from kit.ops.tracing_http import TracingTransport

    one = await conn.fetchval("SELECT 1")
    rows = await conn.fetch("SELECT generate_series(1, 50) AS n")  # one span, not 50
    log.info("chain queried", extra={"rows": len(rows)})
    answer: dict[str, Any] = {"one": one}
    if downstream:
        async with httpx.AsyncClient(transport=TracingTransport()) as client:
            answer["downstream"] = (await client.get(downstream + "/items/7")).json()
    return answer


@app.get("/chain-http")
async def chain_http(client: Outbound) -> dict[str, Any]:
    """Calls the downstream service through kit.http."""
    answer: dict[str, Any] = (await client.get("down", "/items/7")).json()
    return answer


@app.get("/items/{item_id}")
async def item(item_id: int, request: Request) -> dict[str, Any]:
    return {"item_id": item_id, "traceparent": request.headers.get("traceparent")}


@app.get("/spans")
async def finished_spans() -> list[dict[str, Any]]:
    if spans is None:
        return []
    return [
        {
            "name": s.name,
            "kind": s.kind.name,
            "trace_id": format(s.context.trace_id, "032x"),
            "span_id": format(s.context.span_id, "016x"),
            "parent_id": format(s.parent.span_id, "016x") if s.parent else None,
            "attributes": dict(s.attributes or {}),
            "status": s.status.status_code.name,
        }
        for s in spans.get_finished_spans()
    ]
