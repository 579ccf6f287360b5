from __future__ import annotations

from pathlib import Path

import msgspec
import pytest

from kit.benchmark import render, schema
from kit.benchmark.schema import Record, Run
from tests.bench.conftest import FIXTURES, kit_bench

REAL = FIXTURES / "results_quick.json"  # a real `kit bench --quick` run on this machine


@pytest.fixture
def run() -> Run:
    return schema.load(REAL)


def _cell(run: Run, framework: str, endpoint: str) -> Record:
    [record] = [r for r in run.records if (r.framework, r.endpoint) == (framework, endpoint)]
    return record


def _replace(run: Run, old: Record, new: Record) -> Run:
    records = [new if r is old else r for r in run.records]
    return msgspec.structs.replace(run, records=records)


def test_the_results_file_round_trips(run: Run, tmp_path: Path) -> None:
    schema.dump(run, tmp_path / "again.json")
    assert schema.load(tmp_path / "again.json") == run
    # the keys every results file has (machine, versions, method, records), in a real one
    raw = msgspec.json.decode(REAL.read_bytes())
    assert set(raw) == {"machine", "versions", "method", "records"}
    required = {"framework", "runtime", "python", "endpoint", "rps", "p50_ms", "p99_ms", "errors"}
    assert required | {"rss_mb"} <= set(raw["records"][0])


def test_report_states_the_method_above_the_tables(run: Run, tmp_path: Path) -> None:
    written = render.write([run], tmp_path, "r")
    text = (tmp_path / "r.md").read_text()
    method, summary = text.index("## Method"), text.index("## Summary")
    assert method < text.index("Latency caveat") < summary
    assert "coordinated omission" in text
    assert run.machine.cpu_model in text
    assert f"{run.method.connections} connections" in text
    assert run.method.pinning in text
    assert [p.name for p in written] == [
        "r.md",
        "r-endpoints.png",
        "r-runtimes.png",
        "r-python.png",
    ]
    for png in written[1:]:
        assert png.read_bytes().startswith(b"\x89PNG\r\n\x1a\n")
        assert f"]({png.name})" in text


def test_summary_has_kits_ratios_per_endpoint(run: Run, tmp_path: Path) -> None:
    text = render.markdown([run], {})
    assert "| endpoint | kit rps | fastapi rps | starlette rps | raw rps | kit/fastapi |" in text
    for endpoint in ("json", "db", "validate"):
        kit = _cell(run, "kit", endpoint)
        expected = [kit.rps / _cell(run, f, endpoint).rps for f in ("fastapi", "starlette", "raw")]
        row = f"| {endpoint} | {kit.rps:,.0f} |"
        [line] = [line for line in text.splitlines() if line.startswith(row)]
        assert line.endswith(" | ".join(f"{r:.2f}x" for r in expected) + " |")
        assert f"## {endpoint}: {run.method.endpoints[endpoint]}" in text


def test_endpoint_tables_carry_latency_memory_and_startup(run: Run) -> None:
    text = render.markdown([run], {})
    rec = _cell(run, "fastapi", "db")
    ratio = _cell(run, "kit", "db").rps / rec.rps
    # This older results file has no CPU figures: they show as "-", other CPU as 0.0.
    assert (
        f"| granian | fastapi | {rec.rps:,.0f} | {rec.p50_ms:.2f} | {rec.p90_ms:.2f} | "
        f"{rec.p99_ms:.2f} | {rec.rss_mb:.1f} | {rec.startup_s:.2f} | - | - | 0.0 | 0 | "
        f"{ratio:.2f}x |"
    ) in text


def test_endpoint_tables_carry_cpu_per_request(run: Run) -> None:
    rec = _cell(run, "kit", "db")
    measured = msgspec.structs.replace(rec, server_cpu_us=221.5, postgres_cpu_us=88.25)
    text = render.markdown([_replace(run, rec, measured)], {})
    assert "| server µs/req | Postgres µs/req | other CPU % |" in text
    assert f"| {rec.startup_s:.2f} | 221.5 | 88.2 | 0.0 | 0 |  |" in text


def test_errors_are_shown_never_hidden(run: Run) -> None:
    bad = _cell(run, "starlette", "json")
    noisy = msgspec.structs.replace(bad, non_2xx=12, socket_errors=3, errors=15)
    run = _replace(run, bad, noisy)
    dead = _cell(run, "raw", "db")
    run = _replace(run, dead, msgspec.structs.replace(dead, rps=0.0, requests=0, failure="boom"))
    text = render.markdown([run], {})
    assert "None: every cell answered" not in text
    assert f"| json | {_cell(run, 'kit', 'json').rps:,.0f} |" in text
    assert f"{noisy.rps:,.0f} ⚠" in text  # flagged in the summary
    assert "| ⚠ 12 non-2xx, 3 socket |" in text
    assert "| starlette / granian / json / Python 3.11 | - | 12 | 3 |" in text
    assert "| raw / granian / db / Python 3.11 | boom | 0 | 0 |" in text
    assert "| failed ⚠ |" in text
    # a failed peer gives no ratio rather than a division by zero
    db_row = next(line for line in text.splitlines() if line.startswith("| db |"))
    assert db_row.endswith("| - |")


def test_merged_runs_get_python_and_gil_columns(run: Run, tmp_path: Path) -> None:
    versions = msgspec.structs.replace(
        run.versions, python="3.14.0", implementation="CPython free-threaded", gil=False
    )
    other = msgspec.structs.replace(
        run,
        versions=versions,
        records=[msgspec.structs.replace(r, python="3.14.0", gil=False) for r in run.records],
    )
    schema.dump(run, tmp_path / "a.json")
    schema.dump(other, tmp_path / "b.json")
    proc = kit_bench(
        "--merge", str(tmp_path / "a.json"), str(tmp_path / "b.json"), "--out", str(tmp_path),
        env={"PATH": "/usr/bin:/bin"},
    )  # fmt: skip
    assert proc.returncode == 0, proc.stderr
    report = Path(proc.stdout.splitlines()[0])
    assert report.name.startswith("merged-")
    text = report.read_text()
    assert "| python | GIL | runtime | framework | rps |" in text
    assert "| 3.11 | on | granian | kit |" in text
    assert "| 3.14t | off | granian | kit |" in text
    assert "### granian, Python 3.14t (GIL off), 1 worker(s)" in text
    assert "3.14t = CPython free-threaded 3.14.0, GIL off" in text
    assert all(Path(line).exists() for line in proc.stdout.splitlines())


def test_an_empty_run_still_renders(run: Run, tmp_path: Path) -> None:
    empty = msgspec.structs.replace(run, records=[])
    written = render.write([empty], tmp_path, "empty")
    assert written == [tmp_path / "empty.md"]
    assert "## Method" in written[0].read_text()
