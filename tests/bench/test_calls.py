from __future__ import annotations

import os
import subprocess
import sys

import pytest

from bench.db_overhead import MIGRATIONS
from kit.testing import TemplateDatabases
from tests.bench.conftest import ROOT


def run(*argv: str, env: dict[str, str] | None = None) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "bench.calls", *argv],
        cwd=ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
    )


def test_counts_the_same_calls_in_every_run() -> None:
    first, second = (run("--endpoints", "json,validate", "--requests", "40") for _ in range(2))
    assert first.returncode == 0, first.stderr
    rows = [line for line in first.stdout.splitlines() if line.startswith("| ")]
    assert rows[0] == "| endpoint | raw | kit | kit+ops | kit - raw | ops |"
    assert [row.split(" | ")[0] for row in rows[2:]] == ["| json", "| validate"]
    cells = {
        row.split(" | ")[0]: [float(c) for c in row.strip("| ").split(" | ")[1:]]
        for row in rows[2:]
    }
    raw, kit, ops = cells["| json"][:3]
    assert 0 < raw < kit < ops  # each layer adds calls
    # a count, not a clock (kit+ops also counts its periodic tasks, which run by the clock)
    again = {row.split(" | ")[0]: row.split(" | ")[1:3] for row in second.stdout.splitlines()}
    assert all(again[row.split(" | ")[0]] == row.split(" | ")[1:3] for row in rows[2:])


def test_rejects_unknown_endpoints_and_apps_and_empty_cells() -> None:
    for argv in (
        ["--endpoints", "nope"],
        ["--requests", "0"],
        ["--apps", "django"],
        ["--apps", ","],
    ):
        proc = run(*argv)
        assert proc.returncode == 2
        assert "must be" in proc.stderr


def test_operations_stay_under_thirty_calls_per_request() -> None:
    # A count, not a clock: 37 before the observer and access line were trimmed, 27 after.
    proc = run("--endpoints", "json", "--requests", "80")
    assert proc.returncode == 0, proc.stderr
    (row,) = [line for line in proc.stdout.splitlines() if line.startswith("| json")]
    ops = float(row.strip("| ").split(" | ")[-1])
    assert ops <= 30, row


def test_counts_the_apps_asked_for() -> None:
    proc = run("--endpoints", "json", "--requests", "16", "--apps", "kit,blacksheep")
    assert proc.returncode == 0, proc.stderr
    rows = [line for line in proc.stdout.splitlines() if line.startswith("| ")]
    assert rows[0] == "| endpoint | kit | blacksheep |"  # no difference without its two apps
    kit, blacksheep = (float(c) for c in rows[2].strip("| ").split(" | ")[1:])
    assert 0 < kit < blacksheep


@pytest.fixture
def bench_database(kit_template_databases: TemplateDatabases) -> str:
    return kit_template_databases.create(MIGRATIONS)


def test_kit_borrows_a_connection_in_fewer_calls_than_raw_asgi(bench_database: str) -> None:
    # A count, not a clock: asyncpg's pool.acquire() and shielded release() cost raw ASGI 143
    # calls per GET /db; kit takes an idle connection and gives it back itself (kit.db.borrow):
    # 171 before, 88 after.
    proc = run(
        "--endpoints", "db,fortunes", "--apps", "raw,kit", "--requests", "80",
        env={**os.environ, "DATABASE_URL": bench_database},
    )  # fmt: skip
    assert proc.returncode == 0, proc.stderr
    for endpoint in ("db", "fortunes"):
        (row,) = [line for line in proc.stdout.splitlines() if line.startswith(f"| {endpoint} ")]
        raw, kit, _ = (float(c) for c in row.strip("| ").split(" | ")[1:])
        assert kit < raw, row
