"""bench.dress and bench.shapes run end to end on tiny counts, and refuse what they cannot do."""

from __future__ import annotations

import os
import subprocess
import sys

import pytest

from tests.bench.conftest import ROOT

pytest.importorskip("litestar", reason="the peers need the `peers` extra")


def run(
    module: str, *argv: str, env: dict[str, str] | None = None
) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", module, *argv],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=300,
        env={**os.environ, **(env or {})},
    )


def test_dress_reports_every_part_of_every_framework() -> None:
    proc = run("bench.dress", "--rounds", "1", "--requests", "20")
    assert proc.returncode == 0, proc.stderr[-2000:]
    rows = [line for line in proc.stdout.splitlines() if line.startswith("| ")]
    assert rows[0].startswith("| framework | bare | +metrics | +access | +jwt | +tracing |")
    cells = {row.split(" | ")[0].strip("| "): row.strip("| ").split(" | ") for row in rows[1:]}
    assert list(cells) == ["kit", "fastapi", "litestar"]
    assert cells["fastapi"][3] == "n/a"  # its access log is the server's: served runs only
    for values in cells.values():
        assert float(values[1]) > 0
        assert values[-1].endswith("%")


def test_dress_served_measures_kit_and_fastapi_behind_their_token() -> None:
    # a real server and wrk, one second per cell; every answer must be a 200 (the token works);
    # FastAPI runs under granian's own CLI (its access log), which never says "kit: serving"
    argv = ["--server", "--frameworks", "kit,fastapi", "--variants", "bare,dressed"]
    proc = run("bench.dress", *argv, "--rounds", "1", "--duration", "1", "--warmup", "1")
    assert proc.returncode == 0, proc.stderr[-2000:]
    for framework in ("kit", "fastapi"):
        row = next(line for line in proc.stdout.splitlines() if line.startswith(f"| {framework} |"))
        values = row.strip("| ").split(" | ")
        assert float(values[1]) > 0
        assert float(values[-2]) > 0


@pytest.mark.skipif(
    subprocess.run(["which", "valgrind"], capture_output=True).returncode != 0,
    reason="counting instructions needs valgrind",
)
def test_dress_counts_instructions_under_callgrind() -> None:
    argv = ["--instructions", "--frameworks", "kit", "--variants", "bare,jwt,dressed"]
    proc = run("bench.dress", *argv, "--requests", "20")
    assert proc.returncode == 0, proc.stderr[-2000:]
    row = next(line for line in proc.stdout.splitlines() if line.startswith("| kit |"))
    values = row.strip("| ").split(" | ")
    bare, jwt, dressed = int(values[1]), int(values[4]), int(values[-2])
    assert bare > 1000
    assert jwt > 0  # verifying the token (from the cache) is work, never less than none
    assert dressed > bare


@pytest.mark.parametrize(
    "argv",
    [["--frameworks", "django"], ["--variants", "bare,metrics"], ["--variants", "bare,dressed,x"]],
)
def test_dress_refuses_unknown_names(argv: list[str]) -> None:
    proc = run("bench.dress", *argv)
    assert proc.returncode == 2, proc.stderr


def test_shapes_measures_each_app_on_each_shape(database_url: str) -> None:
    proc = run(
        "bench.shapes",
        "--rounds",
        "1",
        "--requests",
        "10",
        "--apps",
        "kit,litestar,blacksheep",
        env={"DATABASE_URL": database_url},
    )
    assert proc.returncode == 0, proc.stderr[-2000:]
    rows = [line for line in proc.stdout.splitlines() if line.startswith("| ")]
    assert rows[0].startswith("| endpoint | kit | litestar | blacksheep | kit / json |")
    names = [row.split(" | ")[0].strip("| ") for row in rows[1:]]
    assert names == [
        "json",
        "plaintext",
        "validate",
        "item",
        "search",
        "whoami",
        "account",
        "item_404",
        "order",
    ]
    assert all(row.split(" | ")[-2].split()[0] in ("litestar", "blacksheep") for row in rows[1:])
