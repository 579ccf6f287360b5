"""Catalog: a kit service (``kit serve services.catalog.app:app``)."""
