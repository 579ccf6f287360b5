"""Test databases: one template per migrations state, cloned for every test that asks."""

from __future__ import annotations

import asyncio
import concurrent.futures
import hashlib
import itertools
import os
import secrets
from collections.abc import Callable, Coroutine
from pathlib import Path
from typing import Any, TypeVar
from urllib.parse import urlsplit, urlunsplit

T = TypeVar("T")
TEMPLATE_LOCK = 0x6B69745F74706C  # serializes template builds and clones across sessions


def with_database(url: str, name: str) -> str:
    """``url`` pointing at database ``name`` (same server, user and options)."""
    parts = urlsplit(url)
    return urlunsplit(parts._replace(path=f"/{name}"))


def _run(factory: Callable[[], Coroutine[Any, Any, T]]) -> T:
    """Run a coroutine to completion in a private event loop (callers may be inside one)."""
    with concurrent.futures.ThreadPoolExecutor(1) as pool:
        return pool.submit(asyncio.run, factory()).result()


_NAMES = itertools.count()


class TemplateDatabases:
    """Builds one template database per migrations state and clones test databases from it."""

    def __init__(self, url: str) -> None:
        self.url = url
        self.created: list[str] = []
        self._migrated: set[str] = set()

    @staticmethod
    def template_name(migrations: Path | None) -> str:
        digest = hashlib.sha256()
        if migrations is not None:
            for path in sorted(Path(migrations).glob("*.sql")):
                digest.update(path.name.encode() + b"\0" + path.read_bytes() + b"\0")
        return f"kit_tpl_{digest.hexdigest()[:16]}"

    async def _clone(self, migrations: Path | None, name: str) -> None:
        import asyncpg

        from kit.db.migrate import apply_migrations

        template = self.template_name(migrations)
        admin = await asyncpg.connect(self.url)
        try:
            await admin.execute("SELECT pg_advisory_lock($1)", TEMPLATE_LOCK)
            exists = await admin.fetchval(
                "SELECT true FROM pg_database WHERE datname = $1", template
            )
            if not exists:
                await admin.execute(f'CREATE DATABASE "{template}"')
            if migrations is not None and template not in self._migrated:
                # once per session: also completes a template left half-built by an
                # interrupted run (connecting on every clone would make each clone wait for
                # that session to end)
                await apply_migrations(with_database(self.url, template), migrations)
                self._migrated.add(template)
            await admin.execute(f'CREATE DATABASE "{name}" TEMPLATE "{template}"')
        finally:
            await admin.close()  # releases the advisory lock

    def create(self, migrations: Path | None) -> str:
        """A new database with ``migrations`` applied; returns its URL."""
        # Unique across every TemplateDatabases in this process, and across an earlier run whose
        # process had the same pid and left its databases behind.
        name = f"kit_test_{os.getpid()}_{next(_NAMES)}_{secrets.token_hex(3)}"
        _run(lambda: self._clone(migrations, name))
        self.created.append(name)
        return with_database(self.url, name)

    async def _drop(self, names: list[str]) -> None:
        import asyncpg

        admin = await asyncpg.connect(self.url)
        try:
            for name in names:
                await admin.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
        finally:
            await admin.close()

    def drop(self, url: str) -> None:
        name = urlsplit(url).path.lstrip("/")
        _run(lambda: self._drop([name]))
        self.created.remove(name)

    def drop_all(self) -> None:
        if self.created:
            _run(lambda: self._drop(self.created))
            self.created.clear()
