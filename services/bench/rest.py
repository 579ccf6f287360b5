"""The shapes every REST service has, next to TechEmpower's: a path parameter, query parameters
(limit, offset, a tag list), a header and a cookie, a Struct with optional fields, a POST with a
nested body, and a 404 raised by the handler. The peers in bench/apps answer them byte for byte
alike (tests/bench/test_parity_rest.py)."""

from __future__ import annotations

from typing import Annotated

import msgspec

from kit import Cookie, Header, HTTPException, Query, Router
from services.bench.schemas import EMAIL_PATTERN, NAME_MAX, Item

ITEMS_MAX = 1000  # ids 1..ITEMS_MAX exist; any other is a 404
LIMIT_MAX = 100
TENANT_MAX = 64
SKU_MAX = 32
QUANTITY_MAX = 1000
LINES_MAX = 50
NOT_FOUND = "Item not found"


class Page(msgspec.Struct):
    limit: int
    offset: int
    tags: list[str]
    ids: list[int]


class Caller(msgspec.Struct):
    tenant: str
    session: str | None


class Account(msgspec.Struct):
    id: int
    name: str
    email: str | None = None
    manager_id: int | None = None
    tags: list[str] = []


class Customer(msgspec.Struct):
    name: Annotated[str, msgspec.Meta(min_length=1, max_length=NAME_MAX)]
    email: Annotated[str, msgspec.Meta(pattern=EMAIL_PATTERN)]


class Line(msgspec.Struct):
    sku: Annotated[str, msgspec.Meta(min_length=1, max_length=SKU_MAX)]
    quantity: Annotated[int, msgspec.Meta(ge=1, le=QUANTITY_MAX)]


class Order(msgspec.Struct):
    customer: Customer
    lines: Annotated[list[Line], msgspec.Meta(min_length=1, max_length=LINES_MAX)]
    note: str | None = None


class Receipt(msgspec.Struct):
    customer: Customer
    lines: list[Line]
    note: str | None
    quantity: int


def item_of(item_id: int) -> Item | None:
    if not 1 <= item_id <= ITEMS_MAX:
        return None
    return Item(item_id, f"item-{item_id}", item_id * 100)


def account_of(account_id: int) -> Account | None:
    """Every optional field set on some ids and absent (null, []) on others."""
    if not 1 <= account_id <= ITEMS_MAX:
        return None
    return Account(
        account_id,
        f"account-{account_id}",
        f"account-{account_id}@example.com" if account_id % 2 == 0 else None,
        account_id // 2 if account_id > 1 else None,
        ["admin"] if account_id % 3 == 0 else [],
    )


def page_of(limit: int, offset: int, tags: list[str]) -> Page:
    return Page(limit, offset, tags, list(range(offset, offset + limit)))


def receipt_of(order: Order) -> Receipt:
    return Receipt(
        order.customer, order.lines, order.note, sum(line.quantity for line in order.lines)
    )


router = Router()


@router.get("/items/{item_id}", responses={404: NOT_FOUND})
async def read_item(item_id: int) -> Item:
    item = item_of(item_id)
    if item is None:
        raise HTTPException(404, NOT_FOUND)
    return item


@router.get("/search")
async def search(
    limit: Annotated[int, Query(), msgspec.Meta(ge=1, le=LIMIT_MAX)] = 10,
    offset: Annotated[int, Query(), msgspec.Meta(ge=0)] = 0,
    tag: Annotated[list[str], Query()] = [],  # noqa: B006 (never mutated; FastAPI's spelling)
) -> Page:
    return page_of(limit, offset, tag)


@router.get("/whoami")
async def whoami(
    x_tenant: Annotated[str, Header(), msgspec.Meta(max_length=TENANT_MAX)],
    session: Annotated[str | None, Cookie()] = None,
) -> Caller:
    return Caller(x_tenant, session)


@router.get("/accounts/{account_id}", responses={404: NOT_FOUND})
async def read_account(account_id: int) -> Account:
    account = account_of(account_id)
    if account is None:
        raise HTTPException(404, NOT_FOUND)
    return account


@router.post("/orders", status_code=201)
async def create_order(order: Order) -> Receipt:
    return receipt_of(order)
