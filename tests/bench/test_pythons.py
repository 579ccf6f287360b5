"""``kit bench --python``: finding interpreters, the report's Python columns and build notes."""

from __future__ import annotations

import sys
import sysconfig
from pathlib import Path

import msgspec
import pytest

from kit.benchmark import pythons, render, schema
from kit.benchmark.probe import build
from kit.benchmark.schema import Build
from tests.bench.conftest import FIXTURES, kit_bench

REAL = FIXTURES / "results_quick.json"
HERE = f"3.{sys.version_info.minor}"


def test_versions_and_paths_parse_in_order() -> None:
    wanted = pythons.parse("3.11, 3.14t,/opt/py/bin/python3")
    assert [w.label for w in wanted] == ["3.11", "3.14t", "/opt/py/bin/python3"]
    assert (wanted[1].minor, wanted[1].free_threaded) == (14, True)
    assert wanted[2].path == "/opt/py/bin/python3"


@pytest.mark.parametrize("raw", ["", "3", "3.x", "python3.12", "2.7"])
def test_nonsense_is_refused(raw: str) -> None:
    with pytest.raises(ValueError, match="--python"):
        pythons.parse(raw)


def test_the_running_version_is_found_and_answers_for_itself() -> None:
    [want] = pythons.parse(HERE)
    executable, where = pythons.find(want)
    assert where in ("PATH", "pyenv", "uv")
    assert Path(executable).is_file()


def test_a_missing_version_says_where_it_looked() -> None:
    [want] = pythons.parse("3.99")
    with pytest.raises(pythons.PythonMissing, match=r"Python 3\.99: not on PATH"):
        pythons.find(want)


def test_a_given_path_that_does_not_run_is_missing(tmp_path: Path) -> None:
    with pytest.raises(pythons.PythonMissing, match="does not run"):
        pythons.find(pythons.Wanted(str(tmp_path / "python"), path=str(tmp_path / "python")))


def test_this_interpreters_build_is_described() -> None:
    described = Build(**build())  # type: ignore[arg-type]
    assert described.executable
    assert described.provenance
    assert described.free_threaded == bool(sysconfig.get_config_var("Py_GIL_DISABLED"))
    assert "libpython" in described.text()


def test_report_has_python_as_a_column_and_a_skipped_one(tmp_path: Path) -> None:
    run = schema.load(REAL)
    other = msgspec.structs.replace(
        run,
        versions=msgspec.structs.replace(
            run.versions, python="3.13.1", build=Build(provenance="pyenv", shared=True)
        ),
    )
    render.write([run, other], tmp_path, "merged", skipped={"3.14": "Python 3.14: not found"})
    report = (tmp_path / "merged.md").read_text()
    assert "## By Python (granian)" in report
    assert "| endpoint | app | 3.11 | 3.13 | 3.14 |" in report
    assert "| skipped |" in report
    assert "- Python 3.14 skipped: Python 3.14: not found" in report
    assert "built differently" in report


def test_one_build_gives_no_build_warning(tmp_path: Path) -> None:
    run = schema.load(REAL)
    render.write([run, run], tmp_path, "same")
    assert "built differently" not in (tmp_path / "same.md").read_text()


def test_a_cell_taken_under_load_is_flagged(tmp_path: Path) -> None:
    run = schema.load(REAL)
    busy = msgspec.structs.replace(run.records[0], other_cpu_pct=render.OTHER_LOAD_LIMIT + 5)
    run = msgspec.structs.replace(run, records=[busy, *run.records[1:]])
    render.write([run], tmp_path, "busy")
    report = (tmp_path / "busy.md").read_text()
    assert "## Taken under load" in report
    assert f"{busy.framework}/{busy.runtime}/{busy.endpoint}" in report


def test_a_version_found_nowhere_is_skipped_not_a_crash(
    bench_env: dict[str, str], tmp_path: Path
) -> None:
    proc = kit_bench(
        "--python", "3.99", "--frameworks", "raw", "--runtimes", "uvicorn",
        "--endpoints", "json", "--duration", "1", "--warmup", "0",
        "--out", str(tmp_path), env=bench_env,
    )  # fmt: skip
    assert proc.returncode == 1
    assert "kit bench: skipped: Python 3.99: not on PATH, not in pyenv, not found by uv" in (
        proc.stderr
    )
    assert "no interpreter could be run; nothing to report" in proc.stderr
    assert "Traceback" not in proc.stderr
