-- Catalog's first table. Applied at startup (KIT_MIGRATE=1) or by `kit migrate services.catalog.app:app`;
-- once applied, never edit a migration: add 0002_*.sql instead.
CREATE TABLE items (
    id          bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    name        text NOT NULL UNIQUE CHECK (length(name) BETWEEN 1 AND 100),
    description text CHECK (length(description) <= 2000),
    created_at  timestamptz NOT NULL DEFAULT now()
);
