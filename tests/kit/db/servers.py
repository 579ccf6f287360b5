"""Real database servers for the tests of the database at scale: a streaming replica made with
the embedded server's own pg_basebackup (PgBouncer comes from kit.testing.pgbouncer)."""

from __future__ import annotations

from pathlib import Path

from kit.db.embedded import Cluster, _make_traversable
from kit.testing import free_port
from kit.testing.pgbouncer import own, run_as


def make_replica(primary: Cluster, pgdata: Path) -> Cluster:
    """A streaming replica of ``primary`` (running, on TCP) in ``pgdata``, started on a free
    port: ``pg_basebackup -R`` writes standby.signal and primary_conninfo."""
    pgdata.mkdir(mode=0o700)
    own(pgdata)
    if run_as():
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
