-- The catalog: categories, products, and each product's variants (sizes, colours...).
-- Applied at startup (KIT_MIGRATE=1) or by `kit migrate services.catalog.app:app`; once
-- applied, never edit a migration: add 0002_*.sql instead.

CREATE TABLE categories (
    id         bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    slug       text NOT NULL UNIQUE CHECK (slug ~ '^[a-z0-9]+(-[a-z0-9]+)*$' AND length(slug) <= 64),
    name       text NOT NULL CHECK (length(name) BETWEEN 1 AND 100),
    created_at timestamptz NOT NULL DEFAULT now()
);

CREATE TABLE products (
    id          bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    sku         text NOT NULL UNIQUE,
    name        text NOT NULL CHECK (length(name) BETWEEN 1 AND 200),
    description text CHECK (length(description) <= 2000),
    price_cents integer NOT NULL CHECK (price_cents >= 0),
    status      text NOT NULL DEFAULT 'draft' CHECK (status IN ('draft', 'active', 'archived')),
    category_id bigint REFERENCES categories (id),  -- a category with products cannot be deleted
    version     integer NOT NULL DEFAULT 1,         -- the ETag: bumped by every write
    created_at  timestamptz NOT NULL DEFAULT now(),
    updated_at  timestamptz NOT NULL DEFAULT now()
);

-- One index per sort order and per filter. The id breaks ties, so keyset pages on
-- (column, id) never skip or repeat a row; "created" order is the id itself.
CREATE INDEX products_price_idx ON products (price_cents, id);
CREATE INDEX products_name_idx ON products (name, id);
CREATE INDEX products_category_idx ON products (category_id, id);
CREATE INDEX products_status_idx ON products (status, id);

CREATE TABLE variants (
    product_id bigint NOT NULL REFERENCES products (id) ON DELETE CASCADE,
    position   smallint NOT NULL,  -- the order the client gave them in
    sku        text NOT NULL UNIQUE,
    label      text NOT NULL CHECK (length(label) BETWEEN 1 AND 100),
    stock      integer NOT NULL CHECK (stock >= 0),
    PRIMARY KEY (product_id, position)
);
