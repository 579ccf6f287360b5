"""The bench service as a BlackSheep user writes it, the way its docs recommend: handlers
registered on the router with typed parameters (route, query, ``FromHeader``, ``FromCookie``),
JSON through ``json_settings`` (here msgspec's encoder and decoder), and the pool opened in
``on_start``. BlackSheep binds bodies to dataclasses or Pydantic models, not to msgspec
Structs, so the bodies are decoded and validated by msgspec by hand."""

from __future__ import annotations

import random
from html import escape
from typing import Any

import asyncpg
import msgspec
from blacksheep import Application, Content, FromCookie, FromHeader, Request, Response
from blacksheep.exceptions import BadRequest
from blacksheep.server.responses import html, json, text
from blacksheep.settings.json import json_settings

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
    Order,
    Person,
    Upstream,
    World,
    account_of,
    item_of,
    page_of,
    pool_options,
    receipt_of,
)

_encode = msgspec.json.Encoder().encode
json_settings.use(loads=msgspec.json.decode, dumps=lambda value: _encode(value).decode())
# strict=False: the coercions kit applies to bodies ("30" is accepted for an int)
decode_person = msgspec.json.Decoder(Person, strict=False).decode
decode_order = msgspec.json.Decoder(Order, strict=False).decode

app = Application()
get = app.router.get
post = app.router.post
pool: asyncpg.Pool
upstream = Upstream()


async def open_resources(application: Application) -> None:
    global pool
    pool = await asyncpg.create_pool(**pool_options())
    await upstream.open()


async def close_resources(application: Application) -> None:
    await pool.close()
    await upstream.close()


app.on_start += open_resources
app.on_stop += close_resources


async def server_header(request: Request, handler: Any) -> Response:
    response: Response = await handler(request)
    response.add_header(b"server", b"blacksheep")  # kit serve turns the servers' own off
    return response


app.middlewares.append(server_header)


def query_count(queries: str | None) -> int:
    try:
        count = int(queries or "")
    except ValueError:
        return 1
    return min(max(count, 1), MAX_QUERIES)


def unprocessable(detail: Any) -> Response:
    return json({"detail": detail}, 422)


@get("/json")
async def json_serialization() -> Response:
    return json({"message": HELLO})


@get("/plaintext")
async def plaintext() -> Response:
    return text(HELLO)


@get("/db")
async def single_query() -> Response:
    async with pool.acquire() as connection:
        row = await connection.fetchrow(READ_WORLD, random.randint(1, WORLD_ROWS))
    return json(World(row[0], row[1]))


@get("/queries")
async def multiple_queries(queries: str | None = None) -> Response:
    async with pool.acquire() as connection:
        worlds = [
            World(*await connection.fetchrow(READ_WORLD, random.randint(1, WORLD_ROWS)))
            for _ in range(query_count(queries))
        ]
    return json(worlds)


@get("/fortunes")
async def fortunes() -> Response:
    async with pool.acquire() as connection:
        rows = [(row[0], row[1]) for row in await connection.fetch(READ_FORTUNES)]
    rows.append((0, EXTRA_FORTUNE))
    rows.sort(key=lambda row: row[1])
    return html(PAGE_HEAD + "".join([ROW.format(i, escape(m)) for i, m in rows]) + PAGE_TAIL)


@get("/updates")
async def updates(queries: str | None = None) -> Response:
    # Distinct ids in ascending order: concurrent batches lock rows in the same order.
    ids = sorted(random.sample(range(1, WORLD_ROWS + 1), query_count(queries)))
    numbers = [random.randint(1, WORLD_ROWS) for _ in ids]
    async with pool.acquire() as connection:
        for world_id in ids:
            await connection.fetchrow(READ_WORLD, world_id)
        await connection.execute(WRITE_WORLDS, ids, numbers)
    return json([World(world_id, number) for world_id, number in zip(ids, numbers, strict=True)])


@post("/validate")
async def validate(request: Request) -> Response:
    try:
        person = decode_person(await request.read() or b"")
    except (msgspec.DecodeError, UnicodeDecodeError) as exc:  # incl. ValidationError
        return unprocessable(str(exc))
    return json(person)


@get("/aggregate")
async def aggregate() -> Response:
    return json(await upstream.aggregate())


# The REST shapes (services/bench/rest.py)


class TenantHeader(FromHeader[str]):
    name = "X-Tenant"


class SessionCookie(FromCookie[str]):
    name = "session"


def not_found() -> Response:
    return json({"detail": NOT_FOUND}, 404)


@get("/items/{item_id}")
async def read_item(item_id: int) -> Response:
    item = item_of(item_id)
    return not_found() if item is None else json(item)


@get("/search")
async def search(limit: int = 10, offset: int = 0, tag: list[str] | None = None) -> Response:
    if not 1 <= limit <= LIMIT_MAX:
        return unprocessable([{"loc": ["query", "limit"], "msg": "Out of range", "input": limit}])
    if offset < 0:
        return unprocessable([{"loc": ["query", "offset"], "msg": "Negative", "input": offset}])
    return json(page_of(limit, offset, tag or []))


@get("/whoami")
async def whoami(tenant: TenantHeader, session: SessionCookie | None = None) -> Response:
    if len(tenant.value) > TENANT_MAX:
        return unprocessable([{"loc": ["header", "x-tenant"], "msg": "Too long"}])
    return json(Caller(tenant.value, session.value if session is not None else None))


@get("/accounts/{account_id}")
async def read_account(account_id: int) -> Response:
    account = account_of(account_id)
    return not_found() if account is None else json(account)


@post("/orders")
async def create_order(request: Request) -> Response:
    try:
        order = decode_order(await request.read() or b"")
    except (msgspec.DecodeError, UnicodeDecodeError) as exc:  # incl. ValidationError
        return unprocessable(str(exc))
    return json(receipt_of(order), 201)


async def bad_request(application: Application, request: Request, exc: Exception) -> Response:
    # A parameter BlackSheep could not bind (a missing header, a path id that is not a number):
    # 422 with a JSON body, as the other apps answer, instead of a plain-text 400.
    return Response(422, None, Content(b"application/json", _encode({"detail": str(exc)})))


app.exceptions_handlers[BadRequest] = bad_request
