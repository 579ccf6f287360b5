"""The app the operations tests serve: known routes, a blocking handler, slow ones, a database."""

from __future__ import annotations

import asyncio
import logging
import os
import time
from typing import Annotated, Any

import asyncpg
import msgspec

from kit import App, Depends, Request, request_id
from kit.db import Database, connection

log = logging.getLogger("ops.app")
# Only the database tests set this: the other servers start without Postgres.
database = Database() if os.environ.get("OPS_DB") else None
app = App(title="ops", database=database)


class Person(msgspec.Struct):
    name: str
    age: Annotated[int, msgspec.Meta(ge=0, le=150)]
    tags: Annotated[list[str], msgspec.Meta(max_length=10)] = []


@app.post("/people")
async def people(person: Person) -> Person:
    return person


@app.get("/items/{item_id}")
async def item(item_id: int) -> dict[str, Any]:
    log.info("looking up item", extra={"item_id": item_id})
    return {"item_id": item_id, "request_id": request_id(), "pid": os.getpid()}


@app.get("/block")
async def block() -> dict[str, bool]:
    time.sleep(0.3)  # the mistake the loop monitor exists for  # noqa: ASYNC251
    return {"blocked": True}


@app.get("/slow")
async def slow(seconds: float = 0.5) -> dict[str, float]:
    await asyncio.sleep(seconds)
    return {"slept": seconds}


@app.get("/drain")
async def drain(request: Request) -> dict[str, str]:
    """Stays in flight until readiness leaves "ready" (at most 5 s), then reports it."""
    readiness = request.app.state.kit_readiness
    for _ in range(100):
        if readiness.state != "ready":
            break
        await asyncio.sleep(0.05)
    return {"readiness": readiness.state}


@app.get("/db/sleep")
async def db_sleep(
    conn: Annotated[asyncpg.Connection, Depends(connection)], seconds: float = 3.0
) -> dict[str, bool]:
    await conn.execute("SELECT pg_sleep($1)", seconds)
    return {"slept": True}


@app.get("/db/one")
async def db_one(conn: Annotated[asyncpg.Connection, Depends(connection)]) -> dict[str, int]:
    return {"one": await conn.fetchval("SELECT 1")}
