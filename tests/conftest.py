"""Root fixtures. The database fixtures come from kit's own pytest plugin (kit.testing)."""

import pytest


@pytest.fixture
def anyio_backend() -> str:
    return "asyncio"
