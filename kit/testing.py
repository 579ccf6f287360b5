"""kit's pytest plugin (entry point ``pytest11: kit``): a real Postgres for every test.

Fixtures:

- ``database_url`` (session): ``DATABASE_URL``, or the embedded PostgreSQL (started once).
- ``kit_migrations``: the migrations directory for fresh databases; by default the one of the
  ``app`` fixture's database (``app.database.migrations``), if the test module has an ``app``.
- ``fresh_database_url``: a new database cloned from a template that has the migrations
  applied (built once per session), dropped after the test.
- ``db_connection``: an asyncpg connection to ``database_url`` inside a transaction that is
  rolled back after the test (for ``@pytest.mark.anyio`` tests).
- ``client``: a ``TestClient`` for the ``app`` fixture, its lifespan running and its
  database pointed at ``fresh_database_url``.

And ``ServerProcess``: a real ``kit serve`` process on a free loopback port, for tests that
need the server itself (runtimes, signals, workers, logs)::

    with ServerProcess("svc.app:app", runtime="granian", env={...}, log=tmp_path) as server:
        urllib.request.urlopen(server.url + "/items")
"""

from __future__ import annotations

import asyncio
import concurrent.futures
import contextlib
import hashlib
import http.client
import itertools
import os
import signal
import socket
import subprocess
import sys
import time
from collections.abc import AsyncIterator, Callable, Coroutine, Iterator, Mapping
from pathlib import Path
from types import TracebackType
from typing import TYPE_CHECKING, Any, TypeVar
from urllib.parse import urlsplit, urlunsplit

import pytest

from kit.settings import Settings

if TYPE_CHECKING:
    import asyncpg
    from starlette.testclient import TestClient

__all__ = ["ServerProcess", "TestClient", "free_port", "with_database"]

T = TypeVar("T")
S = TypeVar("S", bound="ServerProcess")
TEMPLATE_LOCK = 0x6B69745F74706C  # serializes template builds and clones across sessions


def __getattr__(name: str) -> Any:
    # lazy, so that loading the plugin does not need httpx
    if name == "TestClient":
        from starlette.testclient import TestClient

        return TestClient
    raise AttributeError(f"module 'kit.testing' has no attribute {name!r}")


def with_database(url: str, name: str) -> str:
    """``url`` pointing at database ``name`` (same server, user and options)."""
    parts = urlsplit(url)
    return urlunsplit(parts._replace(path=f"/{name}"))


def free_port(host: str = "127.0.0.1") -> int:
    """A port that was free on ``host`` a moment ago (the OS picks it: bind port 0)."""
    with socket.socket() as sock:
        sock.bind((host, 0))
        return int(sock.getsockname()[1])


class ServerProcess:
    """``kit serve APP ARGS`` on a free loopback port, in its own process group.

    ``runtime`` sets ``KIT_RUNTIME``; ``env`` overrides the inherited environment; the
    server's stdout and stderr go to ``log`` (a file, or a directory to put
    ``serve-PORT.log`` in). Ready means ``ready_path`` answers 200 within ``timeout`` seconds;
    subclasses may ask for more by overriding ``ready()``. ``stop()`` signals the server,
    waits up to ``stop_timeout`` and then kills its whole group, workers included.
    As a context manager: started and ready on entry, stopped on exit.
    """

    def __init__(
        self,
        app: str,
        *args: str,
        runtime: str | None = None,
        env: Mapping[str, str] | None = None,
        cwd: str | os.PathLike[str] | None = None,
        log: str | os.PathLike[str],
        ready_path: str = "/healthz",
        timeout: float = 60.0,
        stop_timeout: float = 10.0,
        name: str | None = None,
    ) -> None:
        self.app = app
        self.name = name or app
        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        log = Path(log)
        self.log = log / f"serve-{self.port}.log" if log.is_dir() else log
        self.command = [sys.executable, "-m", "kit.cli", "serve", app, "--port", str(self.port)]
        self.command += args
        self.environ = {**os.environ, **(env or {})}
        if runtime is not None:
            self.environ["KIT_RUNTIME"] = runtime
        self.cwd = cwd
        self.ready_path = ready_path
        self.timeout = timeout
        self.stop_timeout = stop_timeout
        self._proc: subprocess.Popen[bytes] | None = None

    @property
    def proc(self) -> subprocess.Popen[bytes]:
        if self._proc is None:
            raise RuntimeError(f"{self.name} was not started")
        return self._proc

    @property
    def pid(self) -> int:
        return self.proc.pid

    def spawn(self) -> None:
        """Start the process without waiting for it (``wait_ready()`` does)."""
        if self._proc is not None:
            raise RuntimeError(f"{self.name} was already started")
        with self.log.open("wb") as out:
            self._proc = subprocess.Popen(
                self.command,
                cwd=self.cwd,
                env=self.environ,
                stdout=out,
                stderr=subprocess.STDOUT,
                start_new_session=True,  # its own process group: stop() reaches the workers
            )

    def ready(self) -> bool:
        """Whether ``ready_path`` answers 200 (stdlib only: users' projects may lack httpx)."""
        conn = http.client.HTTPConnection("127.0.0.1", self.port, timeout=1)
        try:
            conn.request("GET", self.ready_path)
            return conn.getresponse().status == 200
        except (OSError, http.client.HTTPException):
            return False
        finally:
            conn.close()

    def wait_ready(self, deadline: float | None = None) -> None:
        """Poll ``ready()`` until ``deadline`` (a ``time.monotonic()`` value; default: now plus
        ``timeout``); raise with the log if the process exits or the deadline passes."""
        if deadline is None:
            deadline = time.monotonic() + self.timeout
        while not self.ready():
            code = self.proc.poll()
            if code is not None:
                raise RuntimeError(f"{self.name} exited with {code}:\n{self.output()}")
            if time.monotonic() > deadline:
                raise RuntimeError(f"{self.name} was not ready in time:\n{self.output()}")
            time.sleep(0.05)

    def start(self: S) -> S:
        """Spawn and wait until ready; on failure nothing is left running."""
        self.spawn()
        try:
            self.wait_ready()
        except BaseException:
            self.stop()
            raise
        return self

    def output(self) -> str:
        """What the server wrote so far."""
        return self.log.read_text(errors="replace")

    def send_signal(self, signum: int) -> None:
        """Signal the main process only, as systemd or ``docker stop`` do."""
        self.proc.send_signal(signum)

    def stop(self, signum: int = signal.SIGTERM, timeout: float | None = None) -> int | None:
        """Send ``signum`` (if still running), wait up to ``timeout`` (default
        ``stop_timeout``), then kill what is left of the group; return the exit code
        (None if it was never started)."""
        if self._proc is None:
            return None
        if self._proc.poll() is None:
            self._proc.send_signal(signum)
            with contextlib.suppress(subprocess.TimeoutExpired):
                self._proc.wait(self.stop_timeout if timeout is None else timeout)
        with contextlib.suppress(ProcessLookupError, PermissionError):
            os.killpg(self._proc.pid, signal.SIGKILL)
        return self._proc.wait()

    def __enter__(self: S) -> S:
        return self.start()

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        traceback: TracebackType | None,
    ) -> None:
        self.stop()


def _run(factory: Callable[[], Coroutine[Any, Any, T]]) -> T:
    """Run a coroutine to completion in a private event loop (callers may be inside one)."""
    with concurrent.futures.ThreadPoolExecutor(1) as pool:
        return pool.submit(asyncio.run, factory()).result()


class TemplateDatabases:
    """Builds one template database per migrations state and clones test databases from it."""

    def __init__(self, url: str) -> None:
        self.url = url
        self.created: list[str] = []
        self._counter = itertools.count()
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
        name = f"kit_test_{os.getpid()}_{next(self._counter)}"
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


@pytest.fixture(scope="session")
def database_url() -> str:
    """The session's PostgreSQL: ``DATABASE_URL``, or the embedded one in ``KIT_PGDATA``."""
    from kit.db.embedded import resolve_database_url

    return resolve_database_url(Settings.from_env())


@pytest.fixture(scope="session")
def kit_template_databases(database_url: str) -> Iterator[TemplateDatabases]:
    templates = TemplateDatabases(database_url)
    yield templates
    templates.drop_all()


@pytest.fixture
def kit_migrations(request: pytest.FixtureRequest) -> Path | None:
    """Override to choose the migrations of ``fresh_database_url`` (default: the app's)."""
    try:
        app = request.getfixturevalue("app")
    except pytest.FixtureLookupError:
        return None
    migrations = getattr(getattr(app, "database", None), "migrations", None)
    return Path(migrations) if migrations is not None else None


@pytest.fixture
def fresh_database_url(
    kit_template_databases: TemplateDatabases, kit_migrations: Path | None
) -> Iterator[str]:
    url = kit_template_databases.create(kit_migrations)
    yield url
    kit_template_databases.drop(url)


@pytest.fixture
async def db_connection(database_url: str, anyio_backend: Any) -> AsyncIterator[asyncpg.Connection]:
    import asyncpg

    conn = await asyncpg.connect(database_url)
    try:
        transaction = conn.transaction()
        await transaction.start()
        try:
            yield conn
        finally:
            await transaction.rollback()
    finally:
        await conn.close()


@pytest.fixture
def client(request: pytest.FixtureRequest) -> Iterator[TestClient]:
    from starlette.testclient import TestClient

    app = request.getfixturevalue("app")
    database = getattr(app, "database", None)
    if database is None:
        with TestClient(app) as test_client:
            yield test_client
        return
    url = request.getfixturevalue("fresh_database_url")
    previous = database.url
    database.url = url
    try:
        with TestClient(app) as test_client:
            yield test_client
    finally:
        database.url = previous
