"""``PgBouncer``: Debian's (or any installed) PgBouncer on a free loopback port in front of a
test PostgreSQL, for testing a service through a transaction pooler (``KIT_DB_PGBOUNCER=1``)::

    bouncer = PgBouncer(database_url, tmp_dir, pool_size=2).start()
    try:
        url = bouncer.url("mydb")  # every database of that server, through the pooler
    finally:
        bouncer.stop()

As root it runs as the embedded PostgreSQL's system user (PgBouncer refuses root).
"""

from __future__ import annotations

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

from kit.db.embedded import _make_traversable, _server_user
from kit.testing.server import free_port

PGBOUNCER = shutil.which("pgbouncer") or "/usr/sbin/pgbouncer"
HAVE_PGBOUNCER = Path(PGBOUNCER).exists()


def run_as() -> dict[str, Any]:
    """``subprocess`` keywords to run as the embedded server's user when we are root."""
    user = _server_user()
    if user is None:
        return {}
    entry = pwd.getpwnam(user)
    return {"user": entry.pw_uid, "group": entry.pw_gid, "extra_groups": []}


def own(path: Path) -> None:
    identity = run_as()
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
        """Write the configuration and start; returns once it accepts connections."""
        self.directory.mkdir(parents=True, exist_ok=True)
        self.directory.chmod(0o755)
        own(self.directory)
        if run_as():
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
            own(path)
        with (self.directory / "stdout.log").open("wb") as out:
            self.proc = subprocess.Popen(
                [PGBOUNCER, str(config)], **run_as(), stdout=out, stderr=out, cwd="/"
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
