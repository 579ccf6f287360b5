"""The orders' SQL, in one place. asyncpg prepares each statement once per connection."""

from __future__ import annotations

ORDER_COLUMNS = "id, status, total_cents, created_at"

INSERT_ORDER = f"INSERT INTO orders (total_cents) VALUES ($1) RETURNING {ORDER_COLUMNS}"
# Every line in one statement: arrays of equal length, one element per line.
INSERT_LINES = """
INSERT INTO order_lines (order_id, position, product_id, name, quantity, unit_price_cents)
SELECT $1, line.position - 1, line.product_id, line.name, line.quantity, line.unit_price_cents
FROM unnest($2::bigint[], $3::text[], $4::integer[], $5::integer[])
     WITH ORDINALITY AS line (product_id, name, quantity, unit_price_cents, position)
"""
GET_ORDER = f"SELECT {ORDER_COLUMNS} FROM orders WHERE id = $1"
GET_LINES = """
SELECT product_id, name, quantity, unit_price_cents
FROM order_lines WHERE order_id = $1 ORDER BY position
"""
# Newest first; the cursor is the last id of the previous page.
LIST_ORDERS = f"""
SELECT {ORDER_COLUMNS} FROM orders
WHERE $1::bigint IS NULL OR id < $1
ORDER BY id DESC LIMIT $2
"""
CONFIRM_ORDER = """
UPDATE orders SET status = 'confirmed', confirmed_at = now()
WHERE id = $1 AND status = 'placed'
"""
