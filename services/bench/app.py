"""TechEmpower's test types on kit, plus one validated POST.

Serve it with ``kit serve services.bench.app:app``; the peers in bench/apps do the same work
with FastAPI, Starlette and raw ASGI.
"""

from __future__ import annotations

import os
import random
from pathlib import Path
from typing import Annotated

from kit import App, Depends, HTMLResponse, PlainTextResponse
from kit.db import Connection, Database
from kit.http import HttpClient, Outbound, Upstream, UpstreamUnavailable, fan_out
from services.bench.fortunes import render_fortunes
from services.bench.queries import MAX_QUERIES, READ_FORTUNES, READ_WORLD, WORLD_ROWS, WRITE_WORLDS
from services.bench.rest import router as rest_router
from services.bench.schemas import (
    AGGREGATE_ITEMS,
    HELLO,
    UPSTREAM_URL_ENV,
    Aggregate,
    Item,
    Message,
    Person,
    World,
)

app = App(
    title="bench",
    version="1.0",
    description="TechEmpower's test types, and a validated POST.",
    database=Database(Path(__file__).parent / "migrations"),
    # TechEmpower wants a Server header; `kit serve` turns the servers' own off
    response_headers={"server": "kit"},
)
http = HttpClient(Upstream("upstream", os.environ.get(UPSTREAM_URL_ENV)))
app.add_part(http.part())
app.include_router(rest_router)  # the REST shapes (services/bench/rest.py)


async def query_count(queries: str | None = None) -> int:
    """``?queries=N`` as TechEmpower reads it: clamped to 1..500, and 1 when not a number."""
    try:
        count = int(queries or "")
    except ValueError:
        return 1
    return min(max(count, 1), MAX_QUERIES)


QueryCount = Annotated[int, Depends(query_count)]


@app.get("/json")
async def json_serialization() -> Message:
    return Message(HELLO)


@app.get("/plaintext", response_class=PlainTextResponse)
async def plaintext() -> str:
    return HELLO


@app.get("/db")
async def single_query(conn: Connection) -> World:
    return World(*await conn.fetchrow(READ_WORLD, random.randint(1, WORLD_ROWS)))


@app.get("/queries")
async def multiple_queries(conn: Connection, count: QueryCount) -> list[World]:
    return [
        World(*await conn.fetchrow(READ_WORLD, random.randint(1, WORLD_ROWS))) for _ in range(count)
    ]


@app.get("/fortunes", response_class=HTMLResponse)
async def fortunes(conn: Connection) -> str:
    return render_fortunes(await conn.fetch(READ_FORTUNES))


@app.get("/updates")
async def updates(conn: Connection, count: QueryCount) -> list[World]:
    # Distinct ids in ascending order: concurrent batches lock rows in the same order.
    ids = sorted(random.sample(range(1, WORLD_ROWS + 1), count))
    numbers = [random.randint(1, WORLD_ROWS) for _ in ids]
    for world_id in ids:  # TechEmpower's rules: read each row before updating it
        await conn.fetchrow(READ_WORLD, world_id)
    await conn.execute(WRITE_WORLDS, ids, numbers)
    return [World(world_id, number) for world_id, number in zip(ids, numbers, strict=True)]


@app.post("/validate")
async def validate(person: Person) -> Person:
    """Echo a valid person, normalised (email lowercased, tags defaulted to [])."""
    return person


@app.get("/aggregate", responses={503: "The upstream is unreachable", 504: "It was too slow"})
async def aggregate(client: Outbound) -> Aggregate:
    """The upstream's items, fetched concurrently, and their total."""
    answers = await fan_out(client.get("upstream", f"/item/{n}") for n in AGGREGATE_ITEMS)
    if any(answer.status != 200 for answer in answers):
        raise UpstreamUnavailable("upstream", "answered an error")
    items = [answer.json(Item) for answer in answers]
    return Aggregate(items, sum(item.price_cents for item in items))
