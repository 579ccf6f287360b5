-- Orders and their lines, with the name and price each product had when the order was placed
-- (read from the catalog): an order never changes when the catalog does.
-- Applied at startup (KIT_MIGRATE=1) or by `kit migrate services.orders.app:app`; once
-- applied, never edit a migration: add 0002_*.sql instead.

CREATE TABLE orders (
    id           bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    status       text NOT NULL DEFAULT 'placed' CHECK (status IN ('placed', 'confirmed')),
    total_cents  bigint NOT NULL CHECK (total_cents >= 0),
    created_at   timestamptz NOT NULL DEFAULT now(),
    confirmed_at timestamptz
);

CREATE TABLE order_lines (
    order_id         bigint NOT NULL REFERENCES orders (id) ON DELETE CASCADE,
    position         integer NOT NULL CHECK (position >= 0),
    product_id       bigint NOT NULL CHECK (product_id >= 1),  -- the catalog's: no foreign key
    name             text NOT NULL,
    quantity         integer NOT NULL CHECK (quantity BETWEEN 1 AND 1000),
    unit_price_cents integer NOT NULL CHECK (unit_price_cents >= 0),
    PRIMARY KEY (order_id, position)
);
