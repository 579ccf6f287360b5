from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

from kit.benchmark import schema
from kit.benchmark.wrk import MISSING
from runtimes.registry import NAMES
from tests.bench.conftest import kit_bench

TINY = ["--connections", "8", "--duration", "1", "--warmup", "1"]


def test_one_real_cell(bench_env: dict[str, str], tmp_path: Path) -> None:
    proc = kit_bench(
        "--frameworks", "raw", "--runtimes", "uvicorn", "--endpoints", "json", *TINY,
        "--out", str(tmp_path), env=bench_env,
    )  # fmt: skip
    assert proc.returncode == 0, proc.stderr
    written = [Path(line) for line in proc.stdout.splitlines()]
    assert [p.suffix for p in written] == [".json", ".md", ".png", ".png", ".png"]
    assert all(p.parent == tmp_path and p.stat().st_size > 0 for p in written)
    assert all(p.read_bytes().startswith(b"\x89PNG") for p in written[2:])

    run = schema.load(written[0])
    assert run.machine.cpu_count >= 1
    assert run.versions.packages["uvicorn"]
    assert (run.method.connections, run.method.duration_s, run.method.warmup_s) == (8, 1, 1)
    assert run.method.endpoints == {"json": "GET /json"}
    [record] = run.records
    assert (record.framework, record.runtime, record.endpoint) == ("raw", "uvicorn", "json")
    assert record.failure is None
    assert record.requests > 0
    assert record.rps > 0
    assert record.errors == record.non_2xx == record.socket_errors == 0
    assert 0 < record.p50_ms <= record.p90_ms <= record.p99_ms
    assert record.rss_mb > 0
    assert record.startup_s > 0
    assert "| uvicorn | raw |" in written[1].read_text()


def test_a_server_that_cannot_start_is_a_visible_failed_cell(
    bench_env: dict[str, str], tmp_path: Path
) -> None:
    # A venv without packages: `kit serve` imports from the repository, then misses its deps.
    subprocess.run([sys.executable, "-m", "venv", "--without-pip", tmp_path / "venv"], check=True)
    bare = tmp_path / "venv" / "bin" / "python"
    proc = kit_bench(
        "--frameworks", "raw", "--runtimes", "uvicorn", "--endpoints", "json", *TINY,
        "--python", str(bare), "--out", str(tmp_path), env=bench_env,
    )  # fmt: skip
    assert proc.returncode == 1, proc.stderr
    assert "raw uvicorn json: FAILED server: exited with 1:" in proc.stderr
    assert "kit bench: 1 of 1 cells failed" in proc.stderr
    [record] = schema.load(Path(proc.stdout.splitlines()[0])).records
    assert record.requests == 0
    assert record.failure is not None
    assert record.failure.startswith("server: exited with 1:")
    assert "No module named" in record.failure
    report = Path(proc.stdout.splitlines()[1]).read_text()
    assert "| raw / uvicorn / json / Python" in report
    assert "| uvicorn | raw | failed |" in report


def test_missing_wrk_is_one_line_and_exit_2(tmp_path: Path) -> None:
    proc = kit_bench("--quick", "--out", str(tmp_path), env={"PATH": str(tmp_path)})
    assert proc.returncode == 2
    assert proc.stderr == MISSING + "\n"
    assert proc.stdout == ""
    assert list(tmp_path.iterdir()) == []


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["--frameworks", "kit,flask"], "unknown framework flask; use kit, fastapi,"),
        (["--runtimes", "daphne"], f"unknown runtime daphne; use {', '.join(NAMES)}"),
        (["--endpoints", ""], "no name in ''"),
        (["--endpoints", "json,graphql"], "unknown endpoint graphql; use json,"),
        (["--connections", "0"], "0 must be >= 1"),
        (["--duration", "soon"], "invalid _positive value: 'soon'"),
        (["--python", "/nonexistent/python"], "--python /nonexistent/python: not an executable"),
    ],
)
def test_bad_flags_are_one_clear_error(args: list[str], message: str, tmp_path: Path) -> None:
    proc = kit_bench(*args, "--out", str(tmp_path), env={"PATH": "/usr/bin:/bin"})
    assert proc.returncode == 2
    assert message in proc.stderr
    assert "Traceback" not in proc.stderr


def test_merge_rejects_a_file_that_is_not_a_result(tmp_path: Path) -> None:
    bad = tmp_path / "bad.json"
    bad.write_text('{"machine": 1}')
    proc = kit_bench("--merge", str(bad), "--out", str(tmp_path), env={"PATH": "/usr/bin:/bin"})
    assert proc.returncode == 2
    assert "kit bench --merge:" in proc.stderr
    assert "Traceback" not in proc.stderr
