"""The catalog: categories, and products with their variants. `kit serve services.catalog.app:app`.

Health probes, metrics, JSON logs and /docs come with ``kit.App``; this file only holds the
routes and the steps they share. Bodies and their rules are in schemas.py, SQL in queries.py,
the schema in migrations/.

Reads borrow a ``ReadConnection``: a replica from ``DATABASE_REPLICA_URLS`` when one is in
rotation, else the primary. Every write is one transaction (``Transaction``): a product and its
variants are stored together or not at all. A product's ETag is its version; PATCH and DELETE
need ``If-Match`` (see preconditions.py). Reads are public; every write needs a bearer JWT with
the scope ``catalog:write``, verified as the ``KIT_AUTH_*`` settings say (401 without one, 403
without the scope, both before the body is read).
"""

from __future__ import annotations

import operator
from pathlib import Path
from typing import Annotated, Any

import asyncpg
import msgspec
from msgspec import UNSET

from kit import App, Header, HTTPException, Query, Response
from kit.db import (
    Connection,
    Database,
    ReadConnection,
    Transaction,
    conflict_on,
    fetch_as,
    fetchrow_as,
    retry_transaction,
)
from kit.errors import ErrorItem, ValidationFailed
from kit.security import JWTBearer, Security

from . import queries
from .cursor import Cursor, InvalidCursor, Token, decode_cursor, encode_cursor
from .preconditions import check_if_match, etag, matches, require_if_match
from .schemas import (
    Category,
    CategoryIn,
    Id,
    Limit,
    PriceCents,
    Product,
    ProductIn,
    ProductPage,
    ProductPatch,
    ProductSummary,
    SingleLine,
    Sort,
    Status,
    Variant,
)
from .settings import settings


async def decode_json_columns(conn: asyncpg.Connection) -> None:
    """json values (the aggregated variants) arrive as Python lists, decoded by msgspec."""
    await conn.set_type_codec(
        "json",
        schema="pg_catalog",
        encoder=lambda value: msgspec.json.encode(value).decode(),
        decoder=msgspec.json.decode,
    )


app = App(
    title="catalog",
    version="1.0.0",
    description="A product catalog: categories, products with variants, keyset pages, ETags.",
    database=Database(migrations=Path(__file__).with_name("migrations"), init=decode_json_columns),
)

# Who may write: a bearer JWT with this scope, checked before the body is read.
WRITE = [Security(JWTBearer(), scopes=["catalog:write"])]

IfMatch = Annotated[
    str | None, Header(description="the ETag of your last read; `*` overwrites regardless")
]
IfNoneMatch = Annotated[str | None, Header(description="answer 304 if the ETag still matches")]

# What a valid cursor key is for each sort column (a forged one is a 422, not a 500).
KEY_TYPES: dict[str, Any] = {"id": Id, "price_cents": PriceCents, "name": SingleLine}
# Per sort: how to read the cursor key from a row, and its type.
CURSOR_KEYS = {
    sort: (operator.attrgetter(column), KEY_TYPES[column])
    for sort, (column, _) in queries.SORTS.items()
}

# Integrity violations as 409s with a precise detail; stateless, so made once and reused.
SLUG_TAKEN = conflict_on(asyncpg.UniqueViolationError, detail="a category with this slug exists")
CATEGORY_IN_USE = conflict_on(
    asyncpg.ForeignKeyViolationError, detail="the category still has products"
)
SKU_TAKEN = conflict_on(asyncpg.UniqueViolationError, detail="a product with this SKU exists")
VARIANT_SKU_TAKEN = conflict_on(
    asyncpg.UniqueViolationError, detail="a variant with this SKU exists"
)
NO_SUCH_CATEGORY = conflict_on(
    asyncpg.ForeignKeyViolationError, detail="no category has this category_id"
)

NO_CHANGES = ProductPatch()

# Documented answers besides 200/422 (kit's OpenAPI adds the {"detail": ...} body).
PRODUCT_NOT_FOUND = {404: "No product has this id"}
GUARDED_WRITE = {
    **PRODUCT_NOT_FOUND,
    412: "If-Match is stale: the current ETag is in the ETag header",
    428: "If-Match is missing",
}
SKU_OR_CATEGORY_CONFLICT = {409: "A SKU is taken or repeated, or category_id names no category"}


# -- categories


@app.post(
    "/categories",
    status_code=201,
    tags=["categories"],
    responses={409: "Slug taken"},
    dependencies=WRITE,
)
async def create_category(category: CategoryIn, conn: Connection, response: Response) -> Category:
    """Create a category; slugs are unique (409)."""
    with SLUG_TAKEN:
        created = await fetchrow_as(
            conn, Category, queries.INSERT_CATEGORY, category.slug, category.name
        )
    assert created is not None  # INSERT ... RETURNING returns the row
    response.headers["location"] = f"/categories/{created.id}"
    return created


@app.get("/categories", tags=["categories"])
async def list_categories(conn: ReadConnection) -> list[Category]:
    """Every category, by slug."""
    return await fetch_as(conn, Category, queries.LIST_CATEGORIES)


@app.get("/categories/{category_id}", tags=["categories"], responses={404: "No such category"})
async def get_category(category_id: Id, conn: ReadConnection) -> Category:
    """Read one category."""
    category = await fetchrow_as(conn, Category, queries.GET_CATEGORY, category_id)
    if category is None:
        raise HTTPException(404, "category not found")
    return category


@app.delete(
    "/categories/{category_id}",
    status_code=204,
    tags=["categories"],
    responses={404: "No such category", 409: "Products use this category"},
    dependencies=WRITE,
)
async def delete_category(category_id: Id, conn: Connection) -> None:
    """Delete a category that no product uses (409 otherwise)."""
    with CATEGORY_IN_USE:
        deleted = await conn.execute(queries.DELETE_CATEGORY, category_id)
    if deleted == "DELETE 0":
        raise HTTPException(404, "category not found")


# -- products


@app.post(
    "/products",
    status_code=201,
    tags=["products"],
    responses=SKU_OR_CATEGORY_CONFLICT,
    dependencies=WRITE,
)
async def create_product(product: ProductIn, conn: Transaction, response: Response) -> Product:
    """Create a product with its variants, in one transaction; SKUs are unique (409)."""
    refuse_repeated_skus(product.variants)
    with SKU_TAKEN, NO_SUCH_CATEGORY:
        product_id = await conn.fetchval(
            queries.INSERT_PRODUCT,
            product.sku,
            product.name,
            product.description,
            product.price_cents,
            product.status,
            product.category_id,
        )
    await insert_variants(conn, product_id, product.variants)
    response.headers["location"] = f"/products/{product_id}"
    return await read_product(conn, product_id, response)


@app.get(
    "/products/{product_id}",
    tags=["products"],
    responses={**PRODUCT_NOT_FOUND, 304: "Not Modified: If-None-Match names the current ETag"},
)
async def get_product(
    product_id: Id, conn: ReadConnection, response: Response, if_none_match: IfNoneMatch = None
) -> Product:
    """Read a product and its variants; its ETag comes in the `ETag` header."""
    product = await read_product(conn, product_id, response)
    if if_none_match is not None and matches(if_none_match, product.version):
        raise HTTPException(304, headers={"ETag": etag(product.version)})
    return product


@app.patch(
    "/products/{product_id}",
    tags=["products"],
    responses={**GUARDED_WRITE, **SKU_OR_CATEGORY_CONFLICT},
    dependencies=WRITE,
)
@retry_transaction(retries=3)
async def update_product(
    product_id: Id,
    patch: ProductPatch,
    conn: Connection,
    response: Response,
    if_match: IfMatch = None,
) -> Product:
    """Change the fields sent, and only those (null clears a nullable one); needs If-Match.

    `variants`, when sent, replaces the whole list. 428 without If-Match, 412 when stale.
    """
    expected = require_if_match(if_match)
    skus: list[str] = []
    if patch.variants is not UNSET:
        refuse_repeated_skus(patch.variants)
        skus = [variant.sku for variant in patch.variants]
    await lock_for_write(conn, product_id, expected, skus)
    if patch == NO_CHANGES:  # nothing sent: not a new version
        return await read_product(conn, product_id, response)
    with NO_SUCH_CATEGORY:
        await conn.execute(
            queries.UPDATE_PRODUCT,
            product_id,
            *sent(patch.name),
            *sent(patch.description),
            *sent(patch.price_cents),
            *sent(patch.status),
            *sent(patch.category_id),
        )
    if patch.variants is not UNSET:
        await conn.execute(queries.DELETE_VARIANTS, product_id)
        await insert_variants(conn, product_id, patch.variants)
    return await read_product(conn, product_id, response)


@app.delete(
    "/products/{product_id}",
    status_code=204,
    tags=["products"],
    responses=GUARDED_WRITE,
    dependencies=WRITE,
)
async def delete_product(product_id: Id, conn: Transaction, if_match: IfMatch = None) -> None:
    """Delete a product and its variants; needs If-Match (428 without it, 412 when stale)."""
    expected = require_if_match(if_match)
    await lock_for_write(conn, product_id, expected)
    await conn.execute(queries.DELETE_PRODUCT, product_id)


@app.get("/products", tags=["products"])
async def list_products(
    conn: ReadConnection,
    category_id: Annotated[Id | None, Query()] = None,
    status: Annotated[Status | None, Query()] = None,
    min_price: Annotated[PriceCents | None, Query(description="in cents, inclusive")] = None,
    max_price: Annotated[PriceCents | None, Query(description="in cents, inclusive")] = None,
    sort: Annotated[Sort, Query(description="a field; `-` for descending")] = "-created",
    limit: Annotated[Limit, Query()] = settings.page_size,
    cursor: Annotated[Token | None, Query(description="`next_cursor` of the last page")] = None,
) -> ProductPage:
    """A page of products, filtered and sorted; follow `next_cursor` for the next one."""
    filters = {
        "category_id": category_id,
        "status": status,
        "min_price": min_price,
        "max_price": max_price,
    }
    used = tuple(name for name, value in filters.items() if value is not None)
    args: list[Any] = [filters[name] for name in used]
    key_of, key_type = CURSOR_KEYS[sort]
    if cursor is not None:
        try:
            after = decode_cursor(cursor, sort, key_type)
        except InvalidCursor as exc:
            raise ValidationFailed(
                [ErrorItem("value_error", ["query", "cursor"], f"Value error, {exc}", cursor)]
            ) from None
        args += queries.after_args(sort, after.key, after.id)
    query = queries.list_products(sort, used, cursor is not None)
    rows = await fetch_as(conn, ProductSummary, query, *args, limit + 1)  # one more: a next page?
    if len(rows) <= limit:
        return ProductPage(rows, None)
    last = rows[limit - 1]
    return ProductPage(rows[:limit], encode_cursor(Cursor(sort, key_of(last), last.id)))


# -- the steps the handlers share


async def read_product(conn: asyncpg.Connection, product_id: int, response: Response) -> Product:
    """The product as the API shows it, with its ETag set on ``response``; 404 if missing."""
    product = await fetchrow_as(conn, Product, queries.GET_PRODUCT, product_id)
    if product is None:
        raise HTTPException(404, "product not found")
    response.headers["etag"] = etag(product.version)
    return product


async def lock_for_write(
    conn: asyncpg.Connection, product_id: int, if_match: str, skus: list[str] | None = None
) -> None:
    """Lock the product's row for this transaction, then check the client's If-Match.

    A concurrent writer waits on the lock and then sees the new version: of two writes made
    with the same ETag, exactly one succeeds and the other gets 412. With ``skus`` (variants
    being replaced) the products owning them are locked too, in id order, so that writers
    moving SKUs between products wait for each other instead of deadlocking.
    """
    if skus:
        rows = await conn.fetch(queries.LOCK_PRODUCT_AND_SKU_OWNERS, product_id, skus)
        version = next((row["version"] for row in rows if row["id"] == product_id), None)
    else:
        version = await conn.fetchval(queries.LOCK_PRODUCT, product_id)
    if version is None:
        raise HTTPException(404, "product not found")
    check_if_match(if_match, version)


async def insert_variants(
    conn: asyncpg.Connection, product_id: int, variants: list[Variant]
) -> None:
    if not variants:
        return
    with VARIANT_SKU_TAKEN:
        await conn.execute(
            queries.INSERT_VARIANTS,
            product_id,
            [variant.sku for variant in variants],
            [variant.label for variant in variants],
            [variant.stock for variant in variants],
        )


def refuse_repeated_skus(variants: list[Variant]) -> None:
    """A SKU given twice in one request conflicts with itself: 409, before the database."""
    seen: set[str] = set()
    for variant in variants:
        if variant.sku in seen:
            raise HTTPException(409, f"variant SKU {variant.sku} is given twice")
        seen.add(variant.sku)


def sent(value: Any) -> tuple[bool, Any]:
    """A PATCH field as UPDATE_PRODUCT's ($sent, $value): UNSET keeps the column, any other
    value (null included) replaces it."""
    return (False, None) if value is UNSET else (True, value)
