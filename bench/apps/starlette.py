"""The bench service in hand-written Starlette with msgspec and asyncpg, no kit: the path kit
must not be slower than."""

from __future__ import annotations

import random
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from html import escape
from typing import Any

import asyncpg
import msgspec
from starlette.applications import Starlette
from starlette.middleware import Middleware
from starlette.requests import Request
from starlette.responses import HTMLResponse, PlainTextResponse, Response
from starlette.routing import Route

from bench.apps.common import (
    EXTRA_FORTUNE,
    HELLO,
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
    Order,
    Person,
    SearchError,
    ServerHeader,
    Upstream,
    World,
    account_of,
    item_of,
    pool_options,
    receipt_of,
    search_page,
)

encode = msgspec.json.Encoder().encode
# strict=False: the coercions kit applies to bodies ("30" is accepted for an int)
decode_person = msgspec.json.Decoder(Person, strict=False).decode
decode_order = msgspec.json.Decoder(Order, strict=False).decode


class JSONResponse(Response):
    media_type = "application/json"

    def render(self, content: Any) -> bytes:
        return encode(content)


def query_count(request: Request) -> int:
    try:
        count = int(request.query_params["queries"])
    except (KeyError, ValueError):
        return 1
    return min(max(count, 1), MAX_QUERIES)


async def json_serialization(request: Request) -> Response:
    return JSONResponse({"message": HELLO})


async def plaintext(request: Request) -> Response:
    return PlainTextResponse(HELLO)


async def single_query(request: Request) -> Response:
    async with request.state.pool.acquire() as connection:
        row = await connection.fetchrow(READ_WORLD, random.randint(1, WORLD_ROWS))
    return JSONResponse(World(row[0], row[1]))


async def multiple_queries(request: Request) -> Response:
    count = query_count(request)
    async with request.state.pool.acquire() as connection:
        worlds = [
            World(*await connection.fetchrow(READ_WORLD, random.randint(1, WORLD_ROWS)))
            for _ in range(count)
        ]
    return JSONResponse(worlds)


async def fortunes(request: Request) -> Response:
    async with request.state.pool.acquire() as connection:
        rows = [(row[0], row[1]) for row in await connection.fetch(READ_FORTUNES)]
    rows.append((0, EXTRA_FORTUNE))
    rows.sort(key=lambda row: row[1])
    body = "".join([ROW.format(id_, escape(message)) for id_, message in rows])
    return HTMLResponse(PAGE_HEAD + body + PAGE_TAIL)


async def updates(request: Request) -> Response:
    # Distinct ids in ascending order: concurrent batches lock rows in the same order.
    ids = sorted(random.sample(range(1, WORLD_ROWS + 1), query_count(request)))
    numbers = [random.randint(1, WORLD_ROWS) for _ in ids]
    async with request.state.pool.acquire() as connection:
        for world_id in ids:
            await connection.fetchrow(READ_WORLD, world_id)
        await connection.execute(WRITE_WORLDS, ids, numbers)
    return JSONResponse(
        [World(world_id, number) for world_id, number in zip(ids, numbers, strict=True)]
    )


async def validate(request: Request) -> Response:
    try:
        person = decode_person(await request.body())
    except (msgspec.DecodeError, UnicodeDecodeError) as exc:  # incl. ValidationError
        return JSONResponse({"detail": str(exc)}, status_code=422)
    return JSONResponse(person)


upstream = Upstream()


# The REST shapes (services/bench/rest.py), read from the request by hand


def not_found() -> Response:
    return JSONResponse({"detail": NOT_FOUND}, status_code=404)


def path_id(request: Request, name: str) -> int | None:
    try:
        return int(request.path_params[name])
    except ValueError:
        return None


async def read_item(request: Request) -> Response:
    item_id = path_id(request, "item_id")
    item = item_of(item_id) if item_id is not None else None
    return not_found() if item is None else JSONResponse(item)


async def search(request: Request) -> Response:
    query = request.query_params
    try:
        page = search_page(query.get("limit"), query.get("offset"), query.getlist("tag"))
    except SearchError as exc:
        return JSONResponse({"detail": [exc.item]}, status_code=422)
    return JSONResponse(page)


async def whoami(request: Request) -> Response:
    tenant = request.headers.get("x-tenant")
    if tenant is None or len(tenant) > TENANT_MAX:
        detail = [{"loc": ["header", "x-tenant"], "msg": "Field required", "input": tenant}]
        return JSONResponse({"detail": detail}, status_code=422)
    return JSONResponse(Caller(tenant, request.cookies.get("session")))


async def read_account(request: Request) -> Response:
    account_id = path_id(request, "account_id")
    account = account_of(account_id) if account_id is not None else None
    return not_found() if account is None else JSONResponse(account)


async def create_order(request: Request) -> Response:
    try:
        order = decode_order(await request.body())
    except (msgspec.DecodeError, UnicodeDecodeError) as exc:  # incl. ValidationError
        return JSONResponse({"detail": str(exc)}, status_code=422)
    return JSONResponse(receipt_of(order), status_code=201)


async def aggregate(request: Request) -> Response:
    return JSONResponse(await upstream.aggregate())


@asynccontextmanager
async def lifespan(app: Starlette) -> AsyncIterator[dict[str, Any]]:
    async with asyncpg.create_pool(**pool_options()) as pool:
        await upstream.open()
        try:
            yield {"pool": pool}
        finally:
            await upstream.close()


app = Starlette(
    routes=[
        Route("/json", json_serialization),
        Route("/plaintext", plaintext),
        Route("/db", single_query),
        Route("/queries", multiple_queries),
        Route("/fortunes", fortunes),
        Route("/updates", updates),
        Route("/validate", validate, methods=["POST"]),
        Route("/aggregate", aggregate),
        Route("/items/{item_id}", read_item),
        Route("/search", search),
        Route("/whoami", whoami),
        Route("/accounts/{account_id}", read_account),
        Route("/orders", create_order, methods=["POST"]),
    ],
    middleware=[Middleware(ServerHeader, name="starlette")],
    lifespan=lifespan,
)
