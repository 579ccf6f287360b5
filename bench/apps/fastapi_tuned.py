"""The bench service in FastAPI with the tricks of TechEmpower's FastAPI entry: a module-level
pool instead of ``Depends``, Response objects returned directly (no response-model validation or
``jsonable_encoder``) and a faster JSON encoder (msgspec; orjson is not a dependency here)."""

from __future__ import annotations

import random
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from html import escape
from typing import Annotated, Any

import asyncpg
import msgspec
from fastapi import Cookie, FastAPI, Header, Query
from fastapi.responses import HTMLResponse, PlainTextResponse, Response

from bench.apps.common import (
    EXTRA_FORTUNE,
    HELLO,
    LIMIT_MAX,
    MAX_QUERIES,
    NOT_FOUND,
    PAGE_HEAD,
    PAGE_TAIL,
    READ_FORTUNES,
    READ_WORLD,
    ROW,
    TENANT_MAX,
    WORLD_ROWS,
    WRITE_WORLDS,
    Caller,
    ServerHeader,
    Upstream,
    account_of,
    item_of,
    page_of,
    pool_options,
)
from bench.apps.models import Order, Person

pool: asyncpg.Pool
upstream = Upstream()
NOT_FOUND_BODY = msgspec.json.encode({"detail": NOT_FOUND})


@asynccontextmanager
async def lifespan(app: FastAPI) -> AsyncIterator[None]:
    global pool
    async with asyncpg.create_pool(**pool_options()) as pool:
        await upstream.open()
        try:
            yield
        finally:
            await upstream.close()


class MsgspecJSONResponse(Response):
    media_type = "application/json"

    def render(self, content: Any) -> bytes:
        return msgspec.json.encode(content)

    @classmethod
    def not_found(cls) -> Response:
        return Response(NOT_FOUND_BODY, 404, media_type=cls.media_type)


app = FastAPI(
    title="bench (FastAPI, tuned)",
    lifespan=lifespan,
    default_response_class=MsgspecJSONResponse,
    openapi_url=None,
)
app.add_middleware(ServerHeader, name="fastapi-tuned")


def query_count(queries: str | None) -> int:
    try:
        count = int(queries or "")
    except ValueError:
        return 1
    return min(max(count, 1), MAX_QUERIES)


@app.get("/json")
async def json_serialization() -> MsgspecJSONResponse:
    return MsgspecJSONResponse({"message": HELLO})


@app.get("/plaintext")
async def plaintext() -> PlainTextResponse:
    return PlainTextResponse(HELLO)


@app.get("/db")
async def single_query() -> MsgspecJSONResponse:
    async with pool.acquire() as connection:
        row = await connection.fetchrow(READ_WORLD, random.randint(1, WORLD_ROWS))
    return MsgspecJSONResponse({"id": row[0], "randomNumber": row[1]})


@app.get("/queries")
async def multiple_queries(queries: str | None = None) -> MsgspecJSONResponse:
    worlds = []
    async with pool.acquire() as connection:
        statement = await connection.prepare(READ_WORLD)
        for _ in range(query_count(queries)):
            row = await statement.fetchrow(random.randint(1, WORLD_ROWS))
            worlds.append({"id": row[0], "randomNumber": row[1]})
    return MsgspecJSONResponse(worlds)


@app.get("/fortunes")
async def fortunes() -> HTMLResponse:
    async with pool.acquire() as connection:
        rows = [(row[0], row[1]) for row in await connection.fetch(READ_FORTUNES)]
    rows.append((0, EXTRA_FORTUNE))
    rows.sort(key=lambda row: row[1])
    body = "".join([ROW.format(id_, escape(message)) for id_, message in rows])
    return HTMLResponse(PAGE_HEAD + body + PAGE_TAIL)


@app.get("/updates")
async def updates(queries: str | None = None) -> MsgspecJSONResponse:
    # Distinct ids in ascending order: concurrent batches lock rows in the same order.
    ids = sorted(random.sample(range(1, WORLD_ROWS + 1), query_count(queries)))
    numbers = [random.randint(1, WORLD_ROWS) for _ in ids]
    async with pool.acquire() as connection:
        statement = await connection.prepare(READ_WORLD)
        for world_id in ids:
            await statement.fetchrow(world_id)
        await connection.execute(WRITE_WORLDS, ids, numbers)
    return MsgspecJSONResponse(
        [
            {"id": world_id, "randomNumber": number}
            for world_id, number in zip(ids, numbers, strict=True)
        ]
    )


@app.post("/validate")
async def validate(person: Person) -> MsgspecJSONResponse:
    return MsgspecJSONResponse(person.model_dump())


@app.get("/aggregate")
async def aggregate() -> MsgspecJSONResponse:
    return MsgspecJSONResponse(await upstream.aggregate())


# The REST shapes (services/bench/rest.py), answered with msgspec Structs, not response models


@app.get("/items/{item_id}")
async def read_item(item_id: int) -> Response:
    item = item_of(item_id)
    if item is None:
        return MsgspecJSONResponse.not_found()
    return MsgspecJSONResponse(item)


@app.get("/search")
async def search(
    limit: Annotated[int, Query(ge=1, le=LIMIT_MAX)] = 10,
    offset: Annotated[int, Query(ge=0)] = 0,
    tag: Annotated[list[str], Query()] = [],  # noqa: B006 (FastAPI copies defaults)
) -> MsgspecJSONResponse:
    return MsgspecJSONResponse(page_of(limit, offset, tag))


@app.get("/whoami")
async def whoami(
    x_tenant: Annotated[str, Header(max_length=TENANT_MAX)],
    session: Annotated[str | None, Cookie()] = None,
) -> MsgspecJSONResponse:
    return MsgspecJSONResponse(Caller(x_tenant, session))


@app.get("/accounts/{account_id}")
async def read_account(account_id: int) -> Response:
    account = account_of(account_id)
    if account is None:
        return MsgspecJSONResponse.not_found()
    return MsgspecJSONResponse(account)


@app.post("/orders", status_code=201)
async def create_order(order: Order) -> MsgspecJSONResponse:
    receipt = order.model_dump()
    receipt["quantity"] = sum(line.quantity for line in order.lines)
    return MsgspecJSONResponse(receipt, status_code=201)
