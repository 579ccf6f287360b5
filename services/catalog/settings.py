"""The catalog's own settings (``CATALOG_*``), read once at import; kit's are ``KIT_*``."""

from __future__ import annotations

from typing import Annotated

import msgspec

from kit.service_settings import ServiceSettings

from .schemas import Limit


class CatalogSettings(ServiceSettings, frozen=True):
    env_prefix = "CATALOG_"
    # GET /products's page size when the client sends no ?limit= (the most it may ask is 100)
    page_size: Annotated[Limit, msgspec.Meta(description="default ?limit= of GET /products")] = 20


settings = CatalogSettings.from_env()
