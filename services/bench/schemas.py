"""Request and response shapes of the bench service, and the /validate rules the peers copy."""

from __future__ import annotations

from typing import Annotated

import msgspec

HELLO = "Hello, World!"
NAME_MAX = 100
AGE_MAX = 150
TAGS_MAX = 10
# Matched with Python's `re` everywhere (msgspec; Pydantic is told to use the same engine).
EMAIL_PATTERN = r"^[^@\s]+@[^@\s]+\.[^@\s]+$"


class Message(msgspec.Struct):
    message: str


class World(msgspec.Struct):
    id: int
    randomNumber: int


class Person(msgspec.Struct):
    name: Annotated[str, msgspec.Meta(min_length=1, max_length=NAME_MAX)]
    age: Annotated[int, msgspec.Meta(ge=0, le=AGE_MAX)]
    email: Annotated[str, msgspec.Meta(pattern=EMAIL_PATTERN)]
    tags: Annotated[list[str], msgspec.Meta(max_length=TAGS_MAX)] = []

    def __post_init__(self) -> None:
        # The normalisation every app applies: addresses compare case-insensitively.
        self.email = self.email.lower()


# GET /aggregate: the items fetched concurrently from the upstream at BENCH_UPSTREAM_URL
# (``kit serve bench.upstream:app``), and their total.
UPSTREAM_URL_ENV = "BENCH_UPSTREAM_URL"
AGGREGATE_ITEMS = (1, 2, 3, 4)


class Item(msgspec.Struct):
    id: int
    name: str
    price_cents: int


class Aggregate(msgspec.Struct):
    items: list[Item]
    total_cents: int
