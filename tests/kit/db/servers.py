"""Real database servers for the tests of the database at scale: Debian's PgBouncer in front of
a Postgres, and a streaming replica made with the embedded server's own pg_basebackup."""

from __future__ import annotations

import asyncio
import contextlib
import os
import pwd
import shutil
import socket
import subprocess
import time
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs, urlsplit

import asyncpg

from kit.db.embedded import Cluster, _make_traversable, _server_user
from kit.testing import free_port

PGBOUNCER = shutil.which("pgbouncer") or "/usr/sbin/pgbouncer"
HAVE_PGBOUNCER = Path(PGBOUNCER).exists()


def _identity() -> dict[str, Any]:
    """Run as the embedded server's user when we are root (PgBouncer refuses root too)."""
    user = _server_user()
    if user is None:
        return {}
    entry = pwd.getpwnam(user)
    return {"user": entry.pw_uid, "group": entry.pw_gid, "extra_groups": []}


def _own(path: Path) -> None:
    identity = _identity()
    if identity:
        os.chown(path, identity["user"], identity["group"])


def upstream(url: str) -> tuple[str, int]:
    """The host (or socket directory) and port of a postgres URL."""
    parts = urlsplit(url)
    query = parse_qs(parts.query)
    host = query.get("host", [parts.hostname or "127.0.0.1"])[0]
    port = int(query.get("port", [str(parts.port or 5432)])[0])
    return host, port


class PgBouncer:
    """PgBouncer in ``pool_mode`` on a free loopback port, in front of the server of
    ``server_url``; every database of that server is reachable through it."""

    def __init__(
        self,
        server_url: str,
        directory: Path,
        *,
        pool_mode: str = "transaction",
        pool_size: int = 3,
        ignore_startup_parameters: str = "",
    ) -> None:
        self.host, self.server_port = upstream(server_url)
        self.directory = directory
        self.port = free_port()
        self.pool_mode = pool_mode
        self.pool_size = pool_size
        self.ignore = ignore_startup_parameters
        self.proc: subprocess.Popen[bytes] | None = None

    def url(self, database: str) -> str:
        return f"postgresql://postgres@127.0.0.1:{self.port}/{database}"

    def start(self) -> PgBouncer:
        self.directory.mkdir(parents=True, exist_ok=True)
        self.directory.chmod(0o755)
        _own(self.directory)
        if _identity():
            _make_traversable(self.directory)
        (self.directory / "users.txt").write_text('"postgres" ""\n')
        config = self.directory / "pgbouncer.ini"
        config.write_text(
            "[databases]\n"
            f"* = host={self.host} port={self.server_port}\n"
            "[pgbouncer]\n"
            "listen_addr = 127.0.0.1\n"
            f"listen_port = {self.port}\n"
            "unix_socket_dir =\n"
            "auth_type = trust\n"
            f"auth_file = {self.directory / 'users.txt'}\n"
            f"pool_mode = {self.pool_mode}\n"
            f"default_pool_size = {self.pool_size}\n"
            "max_client_conn = 500\n"
            f"ignore_startup_parameters = {self.ignore}\n"
            f"logfile = {self.directory / 'pgbouncer.log'}\n"
            "admin_users = postgres\n"
        )
        for path in self.directory.iterdir():
            _own(path)
        with (self.directory / "stdout.log").open("wb") as out:
            self.proc = subprocess.Popen(
                [PGBOUNCER, str(config)], **_identity(), stdout=out, stderr=out, cwd="/"
            )
        deadline = time.monotonic() + 10
        while True:
            if self.proc.poll() is not None:
                raise RuntimeError(f"pgbouncer exited: {self.log()}")
            try:
                socket.create_connection(("127.0.0.1", self.port), timeout=0.5).close()
                return self
            except OSError:
                if time.monotonic() > deadline:
                    raise RuntimeError(f"pgbouncer did not listen: {self.log()}") from None
                time.sleep(0.02)

    def log(self) -> str:
        text = ""
        for name in ("stdout.log", "pgbouncer.log"):
            with contextlib.suppress(OSError):
                text += (self.directory / name).read_text()[-2000:]
        return text or "no log"

    def stop(self) -> None:
        if self.proc is not None and self.proc.poll() is None:
            self.proc.terminate()
            try:
                self.proc.wait(5)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()


def make_replica(primary: Cluster, pgdata: Path) -> Cluster:
    """A streaming replica of ``primary`` (running, on TCP) in ``pgdata``, started on a free
    port: ``pg_basebackup -R`` writes standby.signal and primary_conninfo."""
    pgdata.mkdir(mode=0o700)
    _own(pgdata)
    if _identity():
        _make_traversable(pgdata)
    result = primary._run(
        "pg_basebackup",
        "-D",
        str(pgdata),
        "-R",
        "-X",
        "stream",
        "-h",
        primary.host or str(primary.socket_dir),
        "-p",
        str(primary.port),
        "-U",
        "postgres",
        "--no-sync",
        "--checkpoint=fast",  # a spread one would wait minutes
        timeout=30,
    )
    if result.returncode != 0:
        raise RuntimeError(f"pg_basebackup failed: {result.stderr.strip()}")
    replica = Cluster(pgdata, port=free_port(), host="127.0.0.1")
    replica.start()
    return replica


def run(query: str, url: str, *args: Any) -> Any:
    """One query on ``url`` from a synchronous test; returns its first value."""

    async def go() -> Any:
        conn = await asyncpg.connect(url)
        try:
            return await conn.fetchval(query, *args)
        finally:
            await conn.close()

    return asyncio.run(go())
