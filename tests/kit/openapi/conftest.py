"""Real servers for the docs tests: started on first use, shared by the module, always stopped."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from importlib import import_module
from pathlib import Path
from typing import Any

import pytest

from tests.kit.openapi.server import Server, serve

# Services that call others: the variable naming each dependency's URL, and its app.
DEPENDENCIES = {
    "services.orders.app:app": {"CATALOG_URL": "services.catalog.app:app"},
    "services.bench.app:app": {"BENCH_UPSTREAM_URL": "bench.upstream:app"},
}


def load_app(target: str) -> Any:
    module, _, attr = target.partition(":")
    return getattr(import_module(module), attr)


@pytest.fixture(scope="module")
def running(
    request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[Callable[[str], Server]]:
    """``running(APP)``: a ``kit serve`` process of APP on a fresh database if it has one."""
    servers: dict[str, Server] = {}
    databases: list[str] = []
    directory: Path = tmp_path_factory.mktemp("servers")

    def start(target: str) -> Server:
        if target not in servers:
            env = {}
            database = getattr(load_app(target), "database", None)
            if database is not None:
                templates = request.getfixturevalue("kit_template_databases")
                url = templates.create(database.migrations)
                databases.append(url)
                env = {"DATABASE_URL": url, "KIT_MIGRATE": "0"}
            for variable, dependency in DEPENDENCIES.get(target, {}).items():
                env[variable] = start(dependency).url
            servers[target] = serve(target, directory, **env)
        return servers[target]

    try:
        yield start
    finally:
        for server in servers.values():
            server.stop()
        if databases:
            templates = request.getfixturevalue("kit_template_databases")
            for url in databases:
                templates.drop(url)
