"""The catalog's request and response bodies: msgspec Structs, validated on decode.

Every input field has its rule here; the same rules are CHECK constraints in the migration,
so a client sees a 422 naming the field long before Postgres would refuse the row.
"""

from __future__ import annotations

from datetime import datetime
from typing import Annotated, Literal

import msgspec
from msgspec import UNSET, Meta, UnsetType

MAX_BIGINT = 2**63 - 1

# Postgres text cannot hold NUL; single-line fields refuse every control character.
LINE = r"^[^\x00-\x1f\x7f]*$"
TEXT = r"^[^\x00]*$"

Id = Annotated[int, Meta(ge=1, le=MAX_BIGINT)]
SingleLine = Annotated[str, Meta(pattern=LINE)]
Slug = Annotated[str, Meta(pattern=r"^[a-z0-9]+(?:-[a-z0-9]+)*$", max_length=64)]
Sku = Annotated[str, Meta(pattern=r"^[A-Z0-9][A-Z0-9-]{1,31}$", description="e.g. TSHIRT-01")]
Name = Annotated[str, Meta(min_length=1, max_length=200, pattern=LINE)]
CategoryName = Annotated[str, Meta(min_length=1, max_length=100, pattern=LINE)]
Label = Annotated[str, Meta(min_length=1, max_length=100, pattern=LINE)]
Description = Annotated[str, Meta(max_length=2000, pattern=TEXT)]
PriceCents = Annotated[int, Meta(ge=0, le=100_000_000)]
Stock = Annotated[int, Meta(ge=0, le=1_000_000)]
Status = Literal["draft", "active", "archived"]


class CategoryIn(msgspec.Struct, forbid_unknown_fields=True):
    slug: Slug
    name: CategoryName


class Category(msgspec.Struct):
    id: int
    slug: str
    name: str
    created_at: datetime


class Variant(msgspec.Struct, forbid_unknown_fields=True):
    sku: Sku
    label: Label
    stock: Stock = 0


Variants = Annotated[list[Variant], Meta(max_length=50)]


class ProductIn(msgspec.Struct, forbid_unknown_fields=True):
    sku: Sku
    name: Name
    price_cents: PriceCents
    description: Description | None = None
    status: Status = "draft"
    category_id: Id | None = None
    variants: Variants = []


class ProductPatch(msgspec.Struct, forbid_unknown_fields=True):
    """A partial update: a field left out stays as it is; ``null`` clears a nullable one.

    ``variants``, when sent, replaces the whole list. The SKU never changes.
    """

    name: Name | UnsetType = UNSET
    description: Description | UnsetType | None = UNSET
    price_cents: PriceCents | UnsetType = UNSET
    status: Status | UnsetType = UNSET
    category_id: Id | UnsetType | None = UNSET
    variants: Variants | UnsetType = UNSET


class ProductSummary(msgspec.Struct):
    id: int
    sku: str
    name: str
    description: str | None
    price_cents: int
    status: Status
    category_id: int | None
    version: int
    created_at: datetime
    updated_at: datetime


class Product(ProductSummary):
    variants: list[Variant]


class ProductPage(msgspec.Struct):
    items: list[ProductSummary]
    next_cursor: str | None  # pass as ?cursor= for the next page; null on the last one


Sort = Literal["created", "-created", "price", "-price", "name", "-name"]
Limit = Annotated[int, Meta(ge=1, le=100)]
