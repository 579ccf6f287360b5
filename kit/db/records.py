"""asyncpg records to msgspec Structs (validated), or straight to JSON built by Postgres.

The conversion for a (type, columns) pair is decided once and cached: when the columns are
exactly the Struct's fields in order, rows are validated as tuples and passed positionally,
about twice as fast as going through one dict per row.
"""

from __future__ import annotations

import inspect
from collections.abc import Callable, Sequence
from typing import Any, TypeVar

import asyncpg
import msgspec

T = TypeVar("T")

Converter = Callable[[Sequence[asyncpg.Record]], list[Any]]
_converters: dict[tuple[Any, tuple[str, ...]], Converter] = {}


def _by_dicts(type_: Any) -> Converter:
    list_type: Any = list[type_]

    def convert(rows: Sequence[asyncpg.Record]) -> list[Any]:
        result: list[Any] = msgspec.convert([dict(row) for row in rows], list_type)
        return result

    return convert


def _positional(type_: Any, columns: tuple[str, ...]) -> Converter | None:
    if not (isinstance(type_, type) and issubclass(type_, msgspec.Struct)):
        return None
    fields = msgspec.structs.fields(type_)
    if tuple(f.name for f in fields) != columns or type_.__struct_config__.array_like:
        return None
    parameters = inspect.signature(type_).parameters.values()
    if any(p.kind is not inspect.Parameter.POSITIONAL_OR_KEYWORD for p in parameters):
        return None  # keyword-only fields
    row_type: Any = list[tuple.__class_getitem__(tuple(f.type for f in fields))]  # type: ignore[misc]

    def convert(rows: Sequence[asyncpg.Record]) -> list[Any]:
        return [type_(*values) for values in msgspec.convert(list(map(tuple, rows)), row_type)]

    return convert


def converter(
    type_: type[T], columns: tuple[str, ...]
) -> Callable[[Sequence[asyncpg.Record]], list[T]]:
    key = (type_, columns)
    found = _converters.get(key)
    if found is None:
        found = _converters[key] = _positional(type_, columns) or _by_dicts(type_)
    return found


def rows_as(type_: type[T], rows: Sequence[asyncpg.Record]) -> list[T]:
    """Validate ``rows`` into a list of ``type_`` (a Struct, dataclass, TypedDict...)."""
    if not rows:
        return []
    return converter(type_, tuple(rows[0].keys()))(rows)


async def fetch_as(conn: asyncpg.Connection, type_: type[T], query: str, *args: Any) -> list[T]:
    """Run ``query`` with ``args`` and return its rows as ``type_`` instances."""
    return rows_as(type_, await conn.fetch(query, *args))


async def fetchrow_as(conn: asyncpg.Connection, type_: type[T], query: str, *args: Any) -> T | None:
    """The first row of ``query`` as a ``type_`` instance, or None if there is none."""
    row = await conn.fetchrow(query, *args)
    if row is None:
        return None
    return converter(type_, tuple(row.keys()))((row,))[0]


async def fetch_json(conn: asyncpg.Connection, query: str, *args: Any) -> msgspec.Raw:
    """The rows of ``query`` as a JSON array of objects, built by Postgres (``json_agg``).

    Returned as ``msgspec.Raw`` so a handler can return it (or embed it) without re-encoding.
    """
    text = await conn.fetchval(
        f"SELECT coalesce(json_agg(kit_rows), '[]'::json)::text FROM ({query}) AS kit_rows", *args
    )
    return msgspec.Raw(text.encode())
