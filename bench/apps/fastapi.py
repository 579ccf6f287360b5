"""The bench service as a FastAPI user writes it: Pydantic models, ``Depends``, response models."""

from __future__ import annotations

import asyncio
import random
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from html import escape
from typing import Annotated

import asyncpg
import httpx
from fastapi import Cookie, Depends, FastAPI, Header, HTTPException, Query, Request
from fastapi.responses import HTMLResponse, PlainTextResponse

from bench.apps.common import (
    AGGREGATE_ITEMS,
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
    ServerHeader,
    account_of,
    item_of,
    pool_options,
    upstream_url,
)
from bench.apps.models import (
    Account,
    Aggregate,
    Caller,
    Item,
    Message,
    Order,
    Page,
    Person,
    Receipt,
    World,
)


@asynccontextmanager
async def lifespan(app: FastAPI) -> AsyncIterator[None]:
    async with (
        asyncpg.create_pool(**pool_options()) as pool,
        httpx.AsyncClient(
            base_url=upstream_url(), limits=httpx.Limits(max_connections=100)
        ) as http,
    ):
        app.state.pool = pool
        app.state.http = http
        yield


app = FastAPI(title="bench (FastAPI)", lifespan=lifespan)
app.add_middleware(ServerHeader, name="fastapi")


async def get_connection(request: Request) -> AsyncIterator[asyncpg.Connection]:
    async with request.app.state.pool.acquire() as connection:
        yield connection


Connection = Annotated[asyncpg.Connection, Depends(get_connection)]


async def query_count(queries: str | None = None) -> int:
    try:
        count = int(queries or "")
    except ValueError:
        return 1
    return min(max(count, 1), MAX_QUERIES)


QueryCount = Annotated[int, Depends(query_count)]


@app.get("/json", response_model=Message)
async def json_serialization() -> Message:
    return Message(message=HELLO)


@app.get("/plaintext", response_class=PlainTextResponse)
async def plaintext() -> str:
    return HELLO


@app.get("/db", response_model=World)
async def single_query(connection: Connection) -> World:
    row = await connection.fetchrow(READ_WORLD, random.randint(1, WORLD_ROWS))
    return World(id=row["id"], randomNumber=row["randomnumber"])


@app.get("/queries", response_model=list[World])
async def multiple_queries(connection: Connection, count: QueryCount) -> list[World]:
    worlds = []
    for _ in range(count):
        row = await connection.fetchrow(READ_WORLD, random.randint(1, WORLD_ROWS))
        worlds.append(World(id=row["id"], randomNumber=row["randomnumber"]))
    return worlds


@app.get("/fortunes", response_class=HTMLResponse)
async def fortunes(connection: Connection) -> str:
    rows = [(row["id"], row["message"]) for row in await connection.fetch(READ_FORTUNES)]
    rows.append((0, EXTRA_FORTUNE))
    rows.sort(key=lambda row: row[1])
    return (
        PAGE_HEAD + "".join(ROW.format(id_, escape(message)) for id_, message in rows) + PAGE_TAIL
    )


@app.get("/updates", response_model=list[World])
async def updates(connection: Connection, count: QueryCount) -> list[World]:
    worlds = []
    # Distinct ids in ascending order: concurrent batches lock rows in the same order.
    for world_id in sorted(random.sample(range(1, WORLD_ROWS + 1), count)):
        row = await connection.fetchrow(READ_WORLD, world_id)
        worlds.append(World(id=row["id"], randomNumber=random.randint(1, WORLD_ROWS)))
    await connection.execute(
        WRITE_WORLDS, [world.id for world in worlds], [world.randomNumber for world in worlds]
    )
    return worlds


@app.post("/validate", response_model=Person)
async def validate(person: Person) -> Person:
    return person


def get_http(request: Request) -> httpx.AsyncClient:
    http: httpx.AsyncClient = request.app.state.http
    return http


@app.get("/aggregate", response_model=Aggregate)
async def aggregate(http: Annotated[httpx.AsyncClient, Depends(get_http)]) -> Aggregate:
    answers = await asyncio.gather(*(http.get(f"/item/{n}") for n in AGGREGATE_ITEMS))
    items = [answer.raise_for_status().json() for answer in answers]
    return Aggregate(items=items, total_cents=sum(item["price_cents"] for item in items))


# The REST shapes (services/bench/rest.py)


@app.get("/items/{item_id}", response_model=Item, responses={404: {"description": NOT_FOUND}})
async def read_item(item_id: int) -> Item:
    item = item_of(item_id)
    if item is None:
        raise HTTPException(404, NOT_FOUND)
    return Item(id=item.id, name=item.name, price_cents=item.price_cents)


@app.get("/search", response_model=Page)
async def search(
    limit: Annotated[int, Query(ge=1, le=LIMIT_MAX)] = 10,
    offset: Annotated[int, Query(ge=0)] = 0,
    tag: Annotated[list[str], Query()] = [],  # noqa: B006 (FastAPI copies defaults)
) -> Page:
    return Page(limit=limit, offset=offset, tags=tag, ids=list(range(offset, offset + limit)))


@app.get("/whoami", response_model=Caller)
async def whoami(
    x_tenant: Annotated[str, Header(max_length=TENANT_MAX)],
    session: Annotated[str | None, Cookie()] = None,
) -> Caller:
    return Caller(tenant=x_tenant, session=session)


@app.get(
    "/accounts/{account_id}", response_model=Account, responses={404: {"description": NOT_FOUND}}
)
async def read_account(account_id: int) -> Account:
    account = account_of(account_id)
    if account is None:
        raise HTTPException(404, NOT_FOUND)
    return Account(
        id=account.id,
        name=account.name,
        email=account.email,
        manager_id=account.manager_id,
        tags=account.tags,
    )


@app.post("/orders", response_model=Receipt, status_code=201)
async def create_order(order: Order) -> Receipt:
    quantity = sum(line.quantity for line in order.lines)
    return Receipt(customer=order.customer, lines=order.lines, note=order.note, quantity=quantity)
