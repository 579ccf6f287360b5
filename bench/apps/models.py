"""Pydantic models of the two FastAPI apps, with the same rules as services/bench/schemas.py."""

from __future__ import annotations

from typing import Annotated

from pydantic import BaseModel, ConfigDict, Field, field_validator

from bench.apps.common import (
    AGE_MAX,
    EMAIL_PATTERN,
    LINES_MAX,
    NAME_MAX,
    QUANTITY_MAX,
    SKU_MAX,
    TAGS_MAX,
)


class Message(BaseModel):
    message: str


class World(BaseModel):
    id: int
    randomNumber: int


class Person(BaseModel):
    # The pattern is matched by the same engine as msgspec's, so `$` means the same thing.
    model_config = ConfigDict(regex_engine="python-re")

    name: Annotated[str, Field(min_length=1, max_length=NAME_MAX)]
    age: Annotated[int, Field(ge=0, le=AGE_MAX)]
    email: Annotated[str, Field(pattern=EMAIL_PATTERN)]
    tags: Annotated[list[str], Field(max_length=TAGS_MAX)] = []

    @field_validator("email")
    @classmethod
    def lowercase_email(cls, email: str) -> str:
        return email.lower()


class Item(BaseModel):
    id: int
    name: str
    price_cents: int


class Aggregate(BaseModel):
    items: list[Item]
    total_cents: int


# The REST shapes (services/bench/rest.py)


class Page(BaseModel):
    limit: int
    offset: int
    tags: list[str]
    ids: list[int]


class Caller(BaseModel):
    tenant: str
    session: str | None


class Account(BaseModel):
    id: int
    name: str
    email: str | None = None
    manager_id: int | None = None
    tags: list[str] = []


class Customer(BaseModel):
    model_config = ConfigDict(regex_engine="python-re")

    name: Annotated[str, Field(min_length=1, max_length=NAME_MAX)]
    email: Annotated[str, Field(pattern=EMAIL_PATTERN)]


class Line(BaseModel):
    sku: Annotated[str, Field(min_length=1, max_length=SKU_MAX)]
    quantity: Annotated[int, Field(ge=1, le=QUANTITY_MAX)]


class Order(BaseModel):
    customer: Customer
    lines: Annotated[list[Line], Field(min_length=1, max_length=LINES_MAX)]
    note: str | None = None


class Receipt(BaseModel):
    customer: Customer
    lines: list[Line]
    note: str | None
    quantity: int
