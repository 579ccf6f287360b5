"""Fixtures for Catalog's tests; `client`, `database_url` and friends come from kit.testing."""

import pytest

from kit import App

from ..app import app as service


@pytest.fixture
def app() -> App:
    """The app under test: kit's `client` fixture runs it on a fresh, migrated database."""
    return service
