"""Catalog: `kit serve services.catalog.app:app`.

Health probes, metrics, JSON logs and /docs come with ``kit.App``; this file only holds the
routes. SQL is in queries.py, bodies in schemas.py, the schema in migrations/.
"""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import asyncpg
import msgspec

from kit import App, HTTPException, Query
from kit.db import Connection, Database, Transaction, conflict_on, fetch_as, fetchrow_as

from . import queries
from .schemas import Item, ItemIn, ItemPage

app = App(
    title="catalog",
    version="0.1.0",
    description="Catalog: items, created, listed, read and deleted.",
    database=Database(migrations=Path(__file__).with_name("migrations")),
)

After = Annotated[int, msgspec.Meta(ge=0)]
Limit = Annotated[int, msgspec.Meta(ge=1, le=100)]


@app.post("/items", status_code=201, tags=["items"])
async def create_item(item: ItemIn, conn: Transaction) -> Item:
    """Create an item; its name must be unique (409 otherwise)."""
    with conflict_on(asyncpg.UniqueViolationError, detail="an item with this name exists"):
        created = await fetchrow_as(conn, Item, queries.INSERT_ITEM, item.name, item.description)
    assert created is not None  # INSERT ... RETURNING always returns the row
    return created


@app.get("/items/{item_id}", tags=["items"])
async def get_item(item_id: int, conn: Connection) -> Item:
    """Read one item."""
    item = await fetchrow_as(conn, Item, queries.GET_ITEM, item_id)
    if item is None:
        raise HTTPException(404, "item not found")
    return item


@app.get("/items", tags=["items"])
async def list_items(
    conn: Connection,
    after: Annotated[After, Query(description="the next_after of the previous page")] = 0,
    limit: Annotated[Limit, Query()] = 20,
) -> ItemPage:
    """List items in creation order, ``limit`` at a time."""
    items = await fetch_as(conn, Item, queries.LIST_ITEMS, after, limit)
    return ItemPage(items, items[-1].id if len(items) == limit else None)


@app.delete("/items/{item_id}", status_code=204, tags=["items"])
async def delete_item(item_id: int, conn: Connection) -> None:
    """Delete one item."""
    if await conn.execute(queries.DELETE_ITEM, item_id) == "DELETE 0":
        raise HTTPException(404, "item not found")
