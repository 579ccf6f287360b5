"""The embedded PostgreSQL: DATABASE_URL wins, several processes share one server safely."""

import os
import subprocess
import sys
import tempfile
from pathlib import Path

import pytest

from kit.db.embedded import Cluster, EmbeddedPostgresError, resolve_database_url
from kit.settings import Settings

SHARE = """
import sys
import tempfile
from kit.db.embedded import resolve_database_url
from kit.settings import Settings
url = resolve_database_url(Settings.from_env())
pid = open(sys.argv[1] + "/postmaster.pid").readline().strip()
print(url, pid, flush=True)
sys.stdin.read()
"""


@pytest.fixture
def scratch(scratch_root: Path) -> Path:
    return Path(tempfile.mkdtemp(dir=scratch_root))


def test_database_url_wins(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    pgdata = tmp_path / "pgdata"
    monkeypatch.delenv("DATABASE_URL", raising=False)
    settings = Settings(database_url="postgresql://u@db.example:6543/app", pgdata=str(pgdata))
    assert resolve_database_url(settings) == "postgresql://u@db.example:6543/app"
    monkeypatch.setenv("DATABASE_URL", "postgresql://env@db.example/app")
    assert resolve_database_url(Settings(pgdata=str(pgdata))) == "postgresql://env@db.example/app"
    assert not pgdata.exists()


def test_processes_starting_at_once_share_one_server(throwaway_pgdata: Path) -> None:
    pgdata = throwaway_pgdata  # initialized (initdb is slow); started below on a unix socket
    Cluster(pgdata).stop()
    env = {**os.environ, "KIT_PGDATA": str(pgdata)}
    env.pop("DATABASE_URL", None)
    procs = [
        subprocess.Popen(
            [sys.executable, "-c", SHARE, str(pgdata)],
            env=env,
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
        )
        for _ in range(3)
    ]
    try:
        lines = {proc.stdout.readline().strip() for proc in procs}  # type: ignore[union-attr]
        assert len(lines) == 1, lines
        url, _ = lines.pop().split()
        assert url == f"postgresql://postgres@/postgres?host={pgdata}&port=5432"
        for proc in procs[:2]:
            _, err = proc.communicate("", timeout=30)
            assert err.strip() == (
                f"kit: DATABASE_URL is unset; using embedded PostgreSQL 18 in {pgdata}"
            )
        assert Cluster(pgdata).is_running()  # one user left
        procs[2].communicate("", timeout=30)
        assert not Cluster(pgdata).is_running()  # the last one out stopped it
    finally:
        for proc in procs:
            proc.kill()
            proc.wait()


def test_a_directory_that_is_not_a_cluster_is_refused(scratch: Path) -> None:
    pgdata = scratch / "pgdata"
    pgdata.mkdir()
    (pgdata / "notes.txt").write_text("mine")
    with pytest.raises(EmbeddedPostgresError, match="is not empty and is not a PostgreSQL data"):
        resolve_database_url(Settings(pgdata=str(pgdata)))


def test_a_cluster_of_another_major_version_is_refused(scratch: Path) -> None:
    pgdata = scratch / "pgdata"
    pgdata.mkdir()
    (pgdata / "PG_VERSION").write_text("15\n")
    with pytest.raises(EmbeddedPostgresError, match="holds a PostgreSQL 15 cluster"):
        Cluster(pgdata).start()


def test_a_server_that_cannot_start_says_why(throwaway_pgdata: Path) -> None:
    Cluster(throwaway_pgdata).stop()
    cluster = Cluster(throwaway_pgdata, settings={"shared_buffers": "nonsense"})
    with pytest.raises(EmbeddedPostgresError, match=r"did not start: .*contains errors"):
        cluster.start(timeout=10)
