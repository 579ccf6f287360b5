"""Fixtures: a seeded database of its own, and the apps as real server processes on it."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from kit.testing import TemplateDatabases
from tests.services.bench.harness import MIGRATIONS, Servers


@pytest.fixture(scope="session")
def bench_database_url(kit_template_databases: TemplateDatabases) -> str:
    """A database of its own with the bench migration applied (dropped by kit's plugin)."""
    return kit_template_databases.create(MIGRATIONS)


@pytest.fixture(scope="session")
def bench_servers(
    bench_database_url: str, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[Servers]:
    servers = Servers(bench_database_url, tmp_path_factory.mktemp("bench-servers"))
    try:
        yield servers
    finally:
        servers.stop_all()
