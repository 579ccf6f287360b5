"""The orders' request and response bodies, and what they read from the catalog."""

from __future__ import annotations

from datetime import datetime
from typing import Annotated, Literal

import msgspec
from msgspec import Meta

MAX_BIGINT = 2**63 - 1

Id = Annotated[int, Meta(ge=1, le=MAX_BIGINT)]
Quantity = Annotated[int, Meta(ge=1, le=1000)]
Limit = Annotated[int, Meta(ge=1, le=100)]
Status = Literal["placed", "confirmed"]


class LineIn(msgspec.Struct, forbid_unknown_fields=True):
    product_id: Id
    quantity: Quantity


class OrderIn(msgspec.Struct, forbid_unknown_fields=True):
    lines: Annotated[list[LineIn], Meta(min_length=1, max_length=50)]


class Line(msgspec.Struct):
    product_id: int
    name: str
    quantity: int
    unit_price_cents: int


class OrderSummary(msgspec.Struct):
    id: int
    status: Status
    total_cents: int
    created_at: datetime


class Order(OrderSummary):
    lines: list[Line]


class OrderPage(msgspec.Struct):
    items: list[OrderSummary]
    next_cursor: int | None  # pass as ?cursor= for the next page; null on the last one


class CatalogProduct(msgspec.Struct):
    """The fields of the catalog's product that an order needs (others are ignored)."""

    id: int
    name: str
    price_cents: int
    status: str


class Confirmation(msgspec.Struct):
    """The payload of an order's confirmation job."""

    order_id: int
