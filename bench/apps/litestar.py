"""The bench service as a Litestar user writes it, the way its docs recommend: msgspec Structs
for bodies and responses (Litestar's own serialisation), typed handler parameters, the pool
in the application state opened by a lifespan context manager."""

from __future__ import annotations

import random
import re
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from html import escape
from typing import Annotated, Any

import asyncpg
from litestar import Litestar, MediaType, Request, Response, get, post
from litestar.datastructures import State
from litestar.exceptions import HTTPException, NotFoundException, ValidationException
from litestar.middleware import DefineMiddleware
from litestar.params import (
    CookieParameter,
    FromPath,
    FromQuery,
    HeaderParameter,
    JSONBody,
    QueryParameter,
)

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
    Account,
    Aggregate,
    Caller,
    Item,
    Order,
    Page,
    Person,
    Receipt,
    ServerHeader,
    Upstream,
    World,
    account_of,
    item_of,
    page_of,
    pool_options,
    receipt_of,
)
from services.bench.schemas import Message

upstream = Upstream()


@asynccontextmanager
async def lifespan(app: Litestar) -> AsyncIterator[None]:
    async with asyncpg.create_pool(**pool_options()) as pool:
        app.state.pool = pool
        await upstream.open()
        try:
            yield
        finally:
            await upstream.close()


def query_count(queries: str | None) -> int:
    try:
        count = int(queries or "")
    except ValueError:
        return 1
    return min(max(count, 1), MAX_QUERIES)


@get("/json")
async def json_serialization() -> Message:
    return Message(HELLO)


@get("/plaintext", media_type=MediaType.TEXT)
async def plaintext() -> str:
    return HELLO


@get("/db")
async def single_query(state: State) -> World:
    async with state.pool.acquire() as connection:
        row = await connection.fetchrow(READ_WORLD, random.randint(1, WORLD_ROWS))
    return World(row[0], row[1])


@get("/queries")
async def multiple_queries(state: State, queries: FromQuery[str | None] = None) -> list[World]:
    async with state.pool.acquire() as connection:
        return [
            World(*await connection.fetchrow(READ_WORLD, random.randint(1, WORLD_ROWS)))
            for _ in range(query_count(queries))
        ]


@get("/fortunes", media_type=MediaType.HTML)
async def fortunes(state: State) -> str:
    async with state.pool.acquire() as connection:
        rows = [(row[0], row[1]) for row in await connection.fetch(READ_FORTUNES)]
    rows.append((0, EXTRA_FORTUNE))
    rows.sort(key=lambda row: row[1])
    return PAGE_HEAD + "".join([ROW.format(i, escape(m)) for i, m in rows]) + PAGE_TAIL


@get("/updates")
async def updates(state: State, queries: FromQuery[str | None] = None) -> list[World]:
    # Distinct ids in ascending order: concurrent batches lock rows in the same order.
    ids = sorted(random.sample(range(1, WORLD_ROWS + 1), query_count(queries)))
    numbers = [random.randint(1, WORLD_ROWS) for _ in ids]
    async with state.pool.acquire() as connection:
        for world_id in ids:
            await connection.fetchrow(READ_WORLD, world_id)
        await connection.execute(WRITE_WORLDS, ids, numbers)
    return [World(world_id, number) for world_id, number in zip(ids, numbers, strict=True)]


@post("/validate", status_code=200)
async def validate(data: JSONBody[Person]) -> Person:
    return data


@get("/aggregate")
async def aggregate() -> Aggregate:
    return await upstream.aggregate()


# The REST shapes (services/bench/rest.py)


@get("/items/{item_id:int}")
async def read_item(item_id: FromPath[int]) -> Item:
    item = item_of(item_id)
    if item is None:
        raise NotFoundException(NOT_FOUND)
    return item


@get("/search")
async def search(
    limit: Annotated[int, QueryParameter(ge=1, le=LIMIT_MAX)] = 10,
    offset: Annotated[int, QueryParameter(ge=0)] = 0,
    tag: FromQuery[list[str] | None] = None,
) -> Page:
    return page_of(limit, offset, tag or [])


@get("/whoami")
async def whoami(
    x_tenant: Annotated[str, HeaderParameter(name="x-tenant", max_length=TENANT_MAX)],
    session: Annotated[str | None, CookieParameter(name="session")] = None,
) -> Caller:
    return Caller(x_tenant, session)


@get("/accounts/{account_id:int}")
async def read_account(account_id: FromPath[int]) -> Account:
    account = account_of(account_id)
    if account is None:
        raise NotFoundException(NOT_FOUND)
    return account


@post("/orders")  # Litestar answers a POST with 201 by default
async def create_order(data: JSONBody[Order]) -> Receipt:
    return receipt_of(data)


# FastAPI's error bodies, which the other apps answer: {"detail": ...}, and 422 with a loc per
# field where Litestar's default is 400 with its own shape.
_KEY_PART = re.compile(r"[^.\[\]]+|\[(\d+)\]")


def _loc(source: str | None, key: str | None) -> list[Any]:
    loc: list[Any] = [source or "body"]
    for match in _KEY_PART.finditer(key or ""):
        loc.append(int(match.group(1)) if match.group(1) is not None else match.group(0))
    return loc


def not_found(request: Request[Any, Any, Any], exc: NotFoundException) -> Response[Any]:
    return Response({"detail": exc.detail}, status_code=404)


def invalid(request: Request[Any, Any, Any], exc: HTTPException) -> Response[Any]:
    """Litestar's 400s (failed validation, malformed JSON) as FastAPI's 422."""
    if not isinstance(exc, ValidationException):
        return Response({"detail": exc.detail}, status_code=422)
    extra = exc.extra if isinstance(exc.extra, list) else []
    detail = [
        {"loc": _loc(item.get("source"), item.get("key")), "msg": item.get("message", "")}
        for item in extra
        if isinstance(item, dict)
    ] or exc.detail
    return Response({"detail": detail}, status_code=422)


app = Litestar(
    route_handlers=[
        json_serialization,
        plaintext,
        single_query,
        multiple_queries,
        fortunes,
        updates,
        validate,
        aggregate,
        read_item,
        search,
        whoami,
        read_account,
        create_order,
    ],
    lifespan=[lifespan],
    middleware=[DefineMiddleware(ServerHeader, name="litestar")],
    exception_handlers={
        NotFoundException: not_found,
        400: invalid,
    },
    openapi_config=None,
)
