"""Catalog's SQL, in one place: each statement is prepared once per connection by asyncpg."""

ITEM_COLUMNS = "id, name, description, created_at"

INSERT_ITEM = f"INSERT INTO items (name, description) VALUES ($1, $2) RETURNING {ITEM_COLUMNS}"

GET_ITEM = f"SELECT {ITEM_COLUMNS} FROM items WHERE id = $1"

# Keyset pagination: rows after the last id seen, so pages stay stable while rows are added.
LIST_ITEMS = f"SELECT {ITEM_COLUMNS} FROM items WHERE id > $1 ORDER BY id LIMIT $2"

DELETE_ITEM = "DELETE FROM items WHERE id = $1"
