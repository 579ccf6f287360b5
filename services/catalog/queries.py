"""The catalog's SQL, in one place. asyncpg prepares each statement once per connection."""

from __future__ import annotations

import functools
from typing import Any

# -- categories

CATEGORY_COLUMNS = "id, slug, name, created_at"
INSERT_CATEGORY = (
    f"INSERT INTO categories (slug, name) VALUES ($1, $2) RETURNING {CATEGORY_COLUMNS}"
)
GET_CATEGORY = f"SELECT {CATEGORY_COLUMNS} FROM categories WHERE id = $1"
LIST_CATEGORIES = f"SELECT {CATEGORY_COLUMNS} FROM categories ORDER BY slug"
DELETE_CATEGORY = "DELETE FROM categories WHERE id = $1"

# -- products

# In the order of schemas.ProductSummary's fields, so rows convert positionally.
PRODUCT_COLUMNS = (
    "id, sku, name, description, price_cents, status, category_id, version, created_at, updated_at"
)

# One statement, hence one snapshot: the product and its variants as of the same moment.
# json_agg arrives decoded (app.py registers a json codec on every connection).
GET_PRODUCT = f"""
SELECT {PRODUCT_COLUMNS},
       coalesce((SELECT json_agg(json_build_object('sku', v.sku, 'label', v.label,
                                                   'stock', v.stock) ORDER BY v.position)
                 FROM variants v WHERE v.product_id = p.id), '[]') AS variants
FROM products p WHERE p.id = $1
"""

INSERT_PRODUCT = """
INSERT INTO products (sku, name, description, price_cents, status, category_id)
VALUES ($1, $2, $3, $4, $5, $6) RETURNING id
"""

# All variants in one round trip, numbered in the order the client sent them.
INSERT_VARIANTS = """
INSERT INTO variants (product_id, position, sku, label, stock)
SELECT $1, v.position, v.sku, v.label, v.stock
FROM unnest($2::text[], $3::text[], $4::int[]) WITH ORDINALITY AS v(sku, label, stock, position)
"""
DELETE_VARIANTS = "DELETE FROM variants WHERE product_id = $1"

# Writers lock the row first: a concurrent writer waits here, then sees the new version.
LOCK_PRODUCT = "SELECT version FROM products WHERE id = $1 FOR UPDATE"
# Replacing variants also locks the products that own the SKUs being given, all in id order:
# two writers swapping SKUs then queue on the first lock instead of deadlocking on the index.
LOCK_PRODUCT_AND_SKU_OWNERS = """
SELECT id, version FROM products
WHERE id = $1 OR id IN (SELECT product_id FROM variants WHERE sku = ANY($2::text[]))
ORDER BY id
FOR UPDATE
"""

# One static statement for every partial update: each field comes as ($sent, $value), so
# "not sent" (keep) and null (clear) stay distinct without building SQL per request.
UPDATE_PRODUCT = """
UPDATE products SET
    name        = CASE WHEN $2  THEN $3  ELSE name END,
    description = CASE WHEN $4  THEN $5  ELSE description END,
    price_cents = CASE WHEN $6  THEN $7  ELSE price_cents END,
    status      = CASE WHEN $8  THEN $9  ELSE status END,
    category_id = CASE WHEN $10 THEN $11 ELSE category_id END,
    version     = version + 1,
    updated_at  = now()
WHERE id = $1
"""

DELETE_PRODUCT = "DELETE FROM products WHERE id = $1"

# -- listing: keyset pagination over indexed columns

# sort name -> (column, descending); "created" is id order (ids are handed out in order).
SORTS: dict[str, tuple[str, bool]] = {
    "created": ("id", False),
    "-created": ("id", True),
    "price": ("price_cents", False),
    "-price": ("price_cents", True),
    "name": ("name", False),
    "-name": ("name", True),
}
FILTERS: dict[str, str] = {
    "category_id": "category_id = ${}",
    "status": "status = ${}",
    "min_price": "price_cents >= ${}",
    "max_price": "price_cents <= ${}",
}


@functools.cache
def list_products(sort: str, filters: tuple[str, ...], after: bool) -> str:
    """The page query for one sort and set of filters (built once per combination).

    Parameters: the filters' values in ``filters`` order, then the cursor's key (and id,
    unless sorting by id) when ``after``, then the row limit.
    """
    column, descending = SORTS[sort]
    direction, beyond = ("DESC", "<") if descending else ("ASC", ">")
    conditions = [FILTERS[name].format(n) for n, name in enumerate(filters, start=1)]
    n = len(filters)
    if after and column == "id":
        conditions.append(f"id {beyond} ${n + 1}")
        n += 1
    elif after:  # a row comparison, which Postgres answers from the (column, id) index
        conditions.append(f"({column}, id) {beyond} (${n + 1}, ${n + 2})")
        n += 2
    where = f" WHERE {' AND '.join(conditions)}" if conditions else ""
    order = f"id {direction}" if column == "id" else f"{column} {direction}, id {direction}"
    return f"SELECT {PRODUCT_COLUMNS} FROM products{where} ORDER BY {order} LIMIT ${n + 1}"


def after_args(sort: str, key: Any, last_id: int) -> list[Any]:
    """A cursor's parameters for ``list_products(sort, ..., after=True)``."""
    return [last_id] if SORTS[sort][0] == "id" else [key, last_id]
