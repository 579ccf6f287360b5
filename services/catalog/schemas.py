"""Catalog's request and response bodies: msgspec Structs, validated on decode."""

from __future__ import annotations

from datetime import datetime
from typing import Annotated

import msgspec

Name = Annotated[str, msgspec.Meta(min_length=1, max_length=100)]
Description = Annotated[str, msgspec.Meta(max_length=2000)]


class ItemIn(msgspec.Struct, forbid_unknown_fields=True):
    name: Name
    description: Description | None = None


class Item(msgspec.Struct):
    id: int
    name: str
    description: str | None
    created_at: datetime


class ItemPage(msgspec.Struct):
    items: list[Item]
    next_after: int | None  # pass as ?after= to read the next page; null on the last one
