"""``kit bench --app``: a user's service on the same harness, real servers and wrk."""

from __future__ import annotations

from pathlib import Path

import pytest

from bench import schema
from bench.runner import app_name
from tests.bench.conftest import kit_bench

TINY = ["--runtimes", "uvicorn", "--connections", "4", "--duration", "1", "--warmup", "0"]
APP = "tests.bench.tiny:app"


def test_own_app_paths_are_cells_named_after_the_app(
    bench_env: dict[str, str], tmp_path: Path
) -> None:
    proc = kit_bench(
        "--app", APP, "--path", "/hello", "--path", "/nowhere#404", *TINY,
        "--out", str(tmp_path), env=bench_env,
    )  # fmt: skip
    assert proc.returncode == 0, proc.stderr
    written = [Path(line) for line in proc.stdout.splitlines()]
    assert written[0].name.endswith("-tiny-py" + written[0].name.split("-py")[-1])
    run = schema.load(written[0])
    assert run.method.endpoints == {"/hello": "GET /hello", "/nowhere#404": "GET /nowhere -> 404"}
    by_path = {r.endpoint: r for r in run.records}
    assert {r.framework for r in run.records} == {"tiny"}
    for record in by_path.values():
        assert record.failure is None
        assert record.requests > 0
        assert record.errors == 0  # the 404s were asked for: they are the load, not errors
        assert record.server_cpu_us > 0
        assert record.load_before >= 0
    assert run.versions.build.provenance
    report = written[1].read_text()
    assert "# kit benchmark: tiny" in report
    assert "| uvicorn | tiny |" in report


def test_own_app_post_with_a_body_file(bench_env: dict[str, str], tmp_path: Path) -> None:
    body = tmp_path / "note.json"
    body.write_text('{"text": "hi"}')
    proc = kit_bench(
        "--app", APP, "--path", "/notes", "--method", "post", "--body", str(body),
        "--ready-path", "/hello", *TINY, "--out", str(tmp_path), env=bench_env,
    )  # fmt: skip
    assert proc.returncode == 0, proc.stderr
    [record] = schema.load(Path(proc.stdout.splitlines()[0])).records
    assert record.failure is None
    assert record.requests > 0
    assert record.errors == 0


def test_a_path_answering_otherwise_than_expected_is_a_visible_error(
    bench_env: dict[str, str], tmp_path: Path
) -> None:
    proc = kit_bench(
        "--app", APP, "--path", "/nowhere", *TINY, "--ready-path", "/hello",
        "--out", str(tmp_path), env=bench_env,
    )  # fmt: skip
    assert proc.returncode == 0, proc.stderr
    [record] = schema.load(Path(proc.stdout.splitlines()[0])).records
    assert record.failure is not None
    assert "answered 404" in record.failure
    assert record.errors == record.non_2xx > 0


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["--app", "tests.bench.tiny"], "is not MODULE:ATTR"),
        (["--app", APP], "--app needs at least one --path"),
        (["--app", APP, "--path", "hello"], "--path hello: must start with /"),
        (["--app", APP, "--path", "/x#99"], "the status after # must be 200-599"),
        (["--path", "/hello"], "--path and --body need --app"),
        (["--app", APP, "--path", "/x", "--frameworks", "kit"], "--app replaces --frameworks"),
        (["--app", APP, "--path", "/x", "--body", "/nonexistent"], "--body /nonexistent:"),
        (["--app", APP, "--path", "/x", "--method", "GET!"], "is not an HTTP method"),
        (["--python", "3.x"], "give a version like 3.12 or 3.14t"),
    ],
)
def test_bad_own_app_flags_are_one_clear_error(
    args: list[str], message: str, tmp_path: Path
) -> None:
    proc = kit_bench(*args, "--out", str(tmp_path), env={"PATH": "/usr/bin:/bin"})
    assert proc.returncode == 2, proc.stderr
    assert message in proc.stderr
    assert "Traceback" not in proc.stderr


@pytest.mark.parametrize(
    ("spec", "name"),
    [
        ("services.catalog.app:app", "catalog"),
        ("myservice:application", "myservice"),
        ("tests.bench.tiny:app", "tiny"),
        ("app:app", "app"),
    ],
)
def test_app_name(spec: str, name: str) -> None:
    assert app_name(spec) == name
