"""Orders: placed against the catalog over HTTP. `kit serve services.orders.app:app`.

``CATALOG_URL`` is the catalog's base URL. Placing an order checks every line against the
catalog concurrently (kit.http's ``fan_out``, under the request's deadline; product lookups
are cached, and served stale while the catalog fails), stores the order with the names and
prices it read and its confirmation (a durable job, kit.jobs) in one transaction. The catalog down
answers 503 with ``Retry-After`` (unless every product is cached); the catalog slow answers 504
at the deadline. Placing an order needs a bearer JWT with ``orders:write`` (401 without one,
403 without the scope). /readyz checks only this service's own database: the catalog being down must
not take orders out of the load balancer too.
"""

from __future__ import annotations

import logging
from pathlib import Path
from typing import Annotated, Any

import msgspec

from kit import App, HTTPException, Query, Response
from kit.db import Connection, Database, fetch_as, fetchrow_as
from kit.errors import ErrorItem, ValidationFailed
from kit.http import HttpClient, Outbound, Upstream, UpstreamUnavailable, fan_out
from kit.jobs import Job, Jobs
from kit.security import JWTBearer, Security
from kit.service_settings import ServiceSettings

from . import queries
from .schemas import (
    CatalogProduct,
    Confirmation,
    Id,
    Limit,
    Line,
    Order,
    OrderIn,
    OrderPage,
    OrderSummary,
)

logger = logging.getLogger("orders")


Seconds = Annotated[float, msgspec.Meta(gt=0, le=3600)]
HttpURL = Annotated[str, msgspec.Meta(pattern=r"^https?://[^\s/?#]+[^\s]*$", max_length=2000)]


class OrdersSettings(ServiceSettings, frozen=True):
    env_prefix = "ORDERS_"
    catalog_url: HttpURL | None = msgspec.field(name="CATALOG_URL", default=None)
    catalog_timeout: Seconds = 2.0
    catalog_cache_ttl: Annotated[float, msgspec.Meta(ge=0, le=86400)] = 30.0
    notify_url: HttpURL | None = None
    task_workers: Annotated[int, msgspec.Meta(ge=1, le=256)] = 4
    confirm_attempts: Annotated[int, msgspec.Meta(ge=1, le=1000)] = 20


settings = OrdersSettings.from_env()

catalog = Upstream(
    "catalog",
    settings.catalog_url,
    timeout=settings.catalog_timeout,
    retries=2,
    breaker_threshold=5,
    breaker_reset=2.0,
    max_concurrency=100,
    cache_ttl=settings.catalog_cache_ttl,
    stale_for=300.0,
)
# Where confirmations are announced (a notification service), if anywhere.
notify = Upstream("notify", settings.notify_url, timeout=10.0, retries=0)
http = HttpClient(catalog, notify)
# Confirmations are durable jobs: stored with the order, sent at least once (a restart or a
# kill -9 mid-send included), retried with backoff while the notifier fails.
jobs = Jobs(max_attempts=settings.confirm_attempts)
jobs.queue("confirmations", concurrency=settings.task_workers)

app = App(
    title="orders",
    version="1.0.0",
    description="Orders placed against the catalog: checked over HTTP, stored with their prices.",
    database=Database(migrations=Path(__file__).with_name("migrations")),
)
app.add_part(http.part())
app.add_part(jobs.part(app))  # added last: stopped first, while the pool is open

# Who may place orders: a bearer JWT with this scope, checked before the body is read. Nothing
# of the caller's credentials is forwarded to the catalog (only X-Request-ID and traceparent):
# the catalog's reads are public, and a token meant for orders is no business of the catalog.
WRITE = [Security(JWTBearer(), scopes=["orders:write"])]

PLACE_ERRORS = {
    503: "The catalog is unreachable or failing",
    504: "The catalog did not answer within the request's deadline",
}


@app.post("/orders", status_code=201, tags=["orders"], responses=PLACE_ERRORS, dependencies=WRITE)
async def place_order(order: OrderIn, client: Outbound, response: Response) -> Order:
    """Place an order: every product is checked against the catalog, its name and price kept.

    An unknown product, or one not for sale, is a 422 naming the line.
    """
    products = await look_up(client, order)
    lines = [
        Line(line.product_id, product.name, line.quantity, product.price_cents)
        for line in order.lines
        for product in (products[line.product_id],)
    ]
    total = sum(line.quantity * line.unit_price_cents for line in lines)
    stored = await store(total, lines)
    response.headers["location"] = f"/orders/{stored.id}"
    return Order(stored.id, stored.status, stored.total_cents, stored.created_at, lines)


@app.get("/orders/{order_id}", tags=["orders"], responses={404: "No order has this id"})
async def get_order(order_id: Id, conn: Connection) -> Order:
    """Read an order and its lines."""
    summary = await fetchrow_as(conn, OrderSummary, queries.GET_ORDER, order_id)
    if summary is None:
        raise HTTPException(404, "order not found")
    lines = await fetch_as(conn, Line, queries.GET_LINES, order_id)
    return Order(summary.id, summary.status, summary.total_cents, summary.created_at, lines)


@app.get("/orders", tags=["orders"])
async def list_orders(
    conn: Connection,
    limit: Annotated[Limit, Query()] = 20,
    cursor: Annotated[Id | None, Query(description="`next_cursor` of the last page")] = None,
) -> OrderPage:
    """A page of orders, newest first; follow `next_cursor` for the next one."""
    rows = await fetch_as(conn, OrderSummary, queries.LIST_ORDERS, cursor, limit + 1)
    if len(rows) <= limit:
        return OrderPage(rows, None)
    return OrderPage(rows[:limit], rows[limit - 1].id)


# -- the steps


async def look_up(client: HttpClient, order: OrderIn) -> dict[int, CatalogProduct]:
    """Each product of the order, read from the catalog concurrently; 422 naming every line
    whose product is unknown or not for sale."""
    ids = list(dict.fromkeys(line.product_id for line in order.lines))
    found = await fan_out(read_product(client, product_id) for product_id in ids)
    products = {pid: product for pid, product in zip(ids, found, strict=True) if product}
    errors = []
    for position, line in enumerate(order.lines):
        product = products.get(line.product_id)
        if product is None or product.status != "active":
            reason = "no such product" if product is None else "this product is not for sale"
            errors.append(
                ErrorItem(
                    "value_error",
                    ["body", "lines", position, "product_id"],
                    f"Value error, {reason}",
                    line.product_id,
                )
            )
    if errors:
        raise ValidationFailed(errors)
    return products


async def read_product(client: HttpClient, product_id: int) -> CatalogProduct | None:
    response = await client.get("catalog", f"/products/{product_id}", cache=True)
    if response.status == 404:
        return None
    if response.status != 200:
        raise UpstreamUnavailable("catalog", f"answered {response.status}")
    try:
        return response.json(CatalogProduct)
    except msgspec.DecodeError:
        raise UpstreamUnavailable("catalog", "answered an unreadable product") from None


async def store(total: int, lines: list[Line]) -> OrderSummary:
    """The order, its lines and its confirmation job, in one transaction (a connection is taken
    only now, after the catalog calls, so none is held while waiting on the catalog)."""
    database = app.database
    assert database is not None
    conn = await database.acquire()
    try:
        async with conn.transaction():
            stored = await fetchrow_as(conn, OrderSummary, queries.INSERT_ORDER, total)
            assert stored is not None  # INSERT ... RETURNING returns the row
            await conn.execute(
                queries.INSERT_LINES,
                stored.id,
                [line.product_id for line in lines],
                [line.name for line in lines],
                [line.quantity for line in lines],
                [line.unit_price_cents for line in lines],
            )
            key = f"order-{stored.id}"  # the notifier's Idempotency-Key
            await jobs.enqueue(conn, "confirm-order", Confirmation(stored.id), key=key)
    finally:
        await database.release(conn)
    return stored


@jobs.job("confirm-order", queue="confirmations", payload=Confirmation)
async def confirm(job: Job[Confirmation]) -> None:
    """The job: announce the order (when a notification service is set), then mark it
    confirmed. Runs after the commit, with the request's id and trace; at least once, so the
    notifier gets the job's key as ``Idempotency-Key`` to drop a repeat."""
    order_id = job.payload.order_id
    if notify.base_url is not None:
        answer = await http.post(
            "notify",
            "/notifications",
            json={"order_id": order_id},
            headers={"Idempotency-Key": job.key},
        )
        if answer.status >= 400:
            raise RuntimeError(f"notification of order {order_id} answered {answer.status}")
    database: Any = app.database
    conn = await database.acquire()
    try:
        await conn.execute(queries.CONFIRM_ORDER, order_id)
    finally:
        await database.release(conn)
    logger.info("order %d confirmed", order_id)
