"""The bench service as one raw ASGI callable with msgspec and asyncpg: the floor no framework
can beat on the same server."""

from __future__ import annotations

import random
from collections.abc import Awaitable, Callable, MutableMapping
from html import escape
from typing import Any
from urllib.parse import parse_qsl

import asyncpg
import msgspec

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
    Upstream,
    World,
    account_of,
    item_of,
    pool_options,
    receipt_of,
    search_page,
)

Scope = MutableMapping[str, Any]
Message = MutableMapping[str, Any]
Receive = Callable[[], Awaitable[Message]]
Send = Callable[[Message], Awaitable[None]]


encode = msgspec.json.Encoder().encode
# strict=False: the coercions kit applies to bodies ("30" is accepted for an int)
decode_person = msgspec.json.Decoder(Person, strict=False).decode
decode_order = msgspec.json.Decoder(Order, strict=False).decode

JSON = b"application/json"
TEXT = b"text/plain; charset=utf-8"
HTML = b"text/html; charset=utf-8"
HELLO_JSON = encode({"message": HELLO})
HELLO_TEXT = HELLO.encode()
ROUTE_NOT_FOUND = encode({"detail": "Not Found"})
ITEM_NOT_FOUND = encode({"detail": NOT_FOUND})
METHOD_NOT_ALLOWED = encode({"detail": "Method Not Allowed"})

pool: asyncpg.Pool
upstream = Upstream()


async def respond(
    send: Send, body: bytes, content_type: bytes, status: int = 200, allow: bytes = b""
) -> None:
    headers = [
        (b"server", b"raw"),  # kit serve turns the servers' own Server header off
        (b"content-type", content_type),
        (b"content-length", str(len(body)).encode()),
    ]
    if allow:
        headers.append((b"allow", allow))
    await send({"type": "http.response.start", "status": status, "headers": headers})
    await send({"type": "http.response.body", "body": body})


def query_count(scope: Scope) -> int:
    count = 1
    for name, value in parse_qsl(scope["query_string"].decode("latin-1"), keep_blank_values=True):
        if name == "queries":  # the last one wins, as in Starlette
            try:
                count = min(max(int(value), 1), MAX_QUERIES)
            except ValueError:
                count = 1
    return count


async def json_serialization(scope: Scope, receive: Receive, send: Send) -> None:
    await respond(send, HELLO_JSON, JSON)


async def plaintext(scope: Scope, receive: Receive, send: Send) -> None:
    await respond(send, HELLO_TEXT, TEXT)


async def single_query(scope: Scope, receive: Receive, send: Send) -> None:
    async with pool.acquire() as connection:
        row = await connection.fetchrow(READ_WORLD, random.randint(1, WORLD_ROWS))
    await respond(send, encode(World(row[0], row[1])), JSON)


async def multiple_queries(scope: Scope, receive: Receive, send: Send) -> None:
    count = query_count(scope)
    async with pool.acquire() as connection:
        worlds = [
            World(*await connection.fetchrow(READ_WORLD, random.randint(1, WORLD_ROWS)))
            for _ in range(count)
        ]
    await respond(send, encode(worlds), JSON)


async def fortunes(scope: Scope, receive: Receive, send: Send) -> None:
    async with pool.acquire() as connection:
        rows = [(row[0], row[1]) for row in await connection.fetch(READ_FORTUNES)]
    rows.append((0, EXTRA_FORTUNE))
    rows.sort(key=lambda row: row[1])
    body = "".join([ROW.format(id_, escape(message)) for id_, message in rows])
    await respond(send, (PAGE_HEAD + body + PAGE_TAIL).encode(), HTML)


async def updates(scope: Scope, receive: Receive, send: Send) -> None:
    # Distinct ids in ascending order: concurrent batches lock rows in the same order.
    ids = sorted(random.sample(range(1, WORLD_ROWS + 1), query_count(scope)))
    numbers = [random.randint(1, WORLD_ROWS) for _ in ids]
    async with pool.acquire() as connection:
        for world_id in ids:
            await connection.fetchrow(READ_WORLD, world_id)
        await connection.execute(WRITE_WORLDS, ids, numbers)
    await respond(send, encode([World(i, n) for i, n in zip(ids, numbers, strict=True)]), JSON)


async def read_body(receive: Receive) -> bytes:
    chunks = []
    while True:
        message = await receive()
        if message["type"] != "http.request":  # the client went away
            break
        chunks.append(message.get("body", b""))
        if not message.get("more_body", False):
            break
    return b"".join(chunks)


async def validate(scope: Scope, receive: Receive, send: Send) -> None:
    try:
        person = decode_person(await read_body(receive))
    except (msgspec.DecodeError, UnicodeDecodeError) as exc:  # incl. ValidationError
        await respond(send, encode({"detail": str(exc)}), JSON, 422)
        return
    await respond(send, encode(person), JSON)


async def aggregate(scope: Scope, receive: Receive, send: Send) -> None:
    await respond(send, encode(await upstream.aggregate()), JSON)


# The REST shapes (services/bench/rest.py)


def path_id(scope: Scope, prefix: str) -> int | None:
    try:
        return int(scope["path"][len(prefix) :])
    except ValueError:
        return None


async def read_item(scope: Scope, receive: Receive, send: Send) -> None:
    item_id = path_id(scope, "/items/")
    item = item_of(item_id) if item_id is not None else None
    if item is None:
        await respond(send, ITEM_NOT_FOUND, JSON, 404)
    else:
        await respond(send, encode(item), JSON)


async def read_account(scope: Scope, receive: Receive, send: Send) -> None:
    account_id = path_id(scope, "/accounts/")
    account = account_of(account_id) if account_id is not None else None
    if account is None:
        await respond(send, ITEM_NOT_FOUND, JSON, 404)
    else:
        await respond(send, encode(account), JSON)


async def search(scope: Scope, receive: Receive, send: Send) -> None:
    single: dict[str, str] = {}
    tags = []
    for name, value in parse_qsl(scope["query_string"].decode("latin-1"), keep_blank_values=True):
        if name == "tag":
            tags.append(value)
        else:
            single[name] = value  # the last one wins, as in Starlette
    try:
        page = search_page(single.get("limit"), single.get("offset"), tags)
    except SearchError as exc:
        await respond(send, encode({"detail": [exc.item]}), JSON, 422)
        return
    await respond(send, encode(page), JSON)


def cookie(header: bytes, name: str) -> str | None:
    for pair in header.decode("latin-1").split(";"):
        key, _, value = pair.strip().partition("=")
        if key == name:
            return value
    return None


async def whoami(scope: Scope, receive: Receive, send: Send) -> None:
    tenant = session = None
    for name, value in scope["headers"]:
        if name == b"x-tenant":
            tenant = value.decode("latin-1")
        elif name == b"cookie":
            session = cookie(value, "session")
    if tenant is None or len(tenant) > TENANT_MAX:
        detail = [{"loc": ["header", "x-tenant"], "msg": "Field required", "input": tenant}]
        await respond(send, encode({"detail": detail}), JSON, 422)
        return
    await respond(send, encode(Caller(tenant, session)), JSON)


async def create_order(scope: Scope, receive: Receive, send: Send) -> None:
    try:
        order = decode_order(await read_body(receive))
    except (msgspec.DecodeError, UnicodeDecodeError) as exc:  # incl. ValidationError
        await respond(send, encode({"detail": str(exc)}), JSON, 422)
        return
    await respond(send, encode(receipt_of(order)), JSON, 201)


Endpoint = Callable[[Scope, Receive, Send], Awaitable[None]]
ROUTES: dict[str, tuple[str, Endpoint]] = {
    "/json": ("GET", json_serialization),
    "/plaintext": ("GET", plaintext),
    "/db": ("GET", single_query),
    "/queries": ("GET", multiple_queries),
    "/fortunes": ("GET", fortunes),
    "/updates": ("GET", updates),
    "/validate": ("POST", validate),
    "/aggregate": ("GET", aggregate),
    "/search": ("GET", search),
    "/whoami": ("GET", whoami),
    "/orders": ("POST", create_order),
}
# /PREFIX{id}: one segment after the prefix
PREFIXES: tuple[tuple[str, Endpoint], ...] = (("/items/", read_item), ("/accounts/", read_account))


def prefixed_route(path: str) -> tuple[str, Endpoint] | None:
    for prefix, endpoint in PREFIXES:
        if path.startswith(prefix) and "/" not in path[len(prefix) :] and len(path) > len(prefix):
            return "GET", endpoint
    return None


async def lifespan(receive: Receive, send: Send) -> None:
    global pool
    while True:
        message = await receive()
        if message["type"] == "lifespan.startup":
            try:
                pool = await asyncpg.create_pool(**pool_options())
                await upstream.open()
            except Exception as exc:
                await send({"type": "lifespan.startup.failed", "message": str(exc)})
                return
            await send({"type": "lifespan.startup.complete"})
        elif message["type"] == "lifespan.shutdown":
            await pool.close()
            await upstream.close()
            await send({"type": "lifespan.shutdown.complete"})
            return


async def app(scope: Scope, receive: Receive, send: Send) -> None:
    if scope["type"] == "http":
        route = ROUTES.get(scope["path"])
        if route is None:
            route = prefixed_route(scope["path"])
        if route is None:
            await respond(send, ROUTE_NOT_FOUND, JSON, 404)
        elif route[0] != scope["method"]:
            await respond(send, METHOD_NOT_ALLOWED, JSON, 405, allow=route[0].encode())
        else:
            await route[1](scope, receive, send)
    elif scope["type"] == "lifespan":
        await lifespan(receive, send)
