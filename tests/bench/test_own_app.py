"""``kit bench --app``: a user's service on the same harness, real servers and wrk."""

from __future__ import annotations

from pathlib import Path

import pytest

from kit.benchmark import schema
from kit.benchmark.study import app_name
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


def test_a_path_answering_otherwise_than_expected_is_a_failed_cell(
    bench_env: dict[str, str], tmp_path: Path
) -> None:
    proc = kit_bench(
        "--app", APP, "--path", "/nowhere", "--path", "/hello", *TINY, "--ready-path", "/hello",
        "--out", str(tmp_path), env=bench_env,
    )  # fmt: skip
    assert proc.returncode == 1, proc.stderr
    assert "kit bench: 1 of 2 cells failed" in proc.stderr
    records = {r.endpoint: r for r in schema.load(Path(proc.stdout.splitlines()[0])).records}
    failed = records["/nowhere"]
    assert failed.failure is not None
    assert "answered 404" in failed.failure
    assert failed.requests == 0  # not measured: a rate of 404s is not a result
    assert records["/hello"].failure is None
    assert records["/hello"].requests > 0


def test_a_server_never_ready_is_a_failed_cell(bench_env: dict[str, str], tmp_path: Path) -> None:
    proc = kit_bench(
        "--app", APP, "--path", "/hello", *TINY, "--ready-path", "/nowhere",
        "--ready-timeout", "3", "--out", str(tmp_path), env=bench_env,
    )  # fmt: skip
    assert proc.returncode == 1, proc.stderr
    [record] = schema.load(Path(proc.stdout.splitlines()[0])).records
    assert record.failure is not None
    assert record.failure.startswith("server: not ready within 3 s (GET /nowhere -> 200)")
    assert record.requests == 0


def test_a_status_with_a_method_sends_that_method(
    bench_env: dict[str, str], tmp_path: Path
) -> None:
    # /events answers 202 to POST only (405 to GET); it is also the first path, so the
    # server's readiness is probed with the POST and its body as well.
    body = tmp_path / "event.json"
    body.write_text('{"text": "hi"}')
    proc = kit_bench(
        "--app", APP, "--path", "/events#202", "--method", "POST", "--body", str(body), *TINY,
        "--out", str(tmp_path), env=bench_env,
    )  # fmt: skip
    assert proc.returncode == 0, proc.stderr
    run = schema.load(Path(proc.stdout.splitlines()[0]))
    assert run.method.endpoints == {"/events#202": "POST /events -> 202"}
    [record] = run.records
    assert record.failure is None
    assert record.requests > 0
    assert record.errors == record.non_2xx == 0  # a 405 would count here


def test_a_protected_route_with_a_header_from_the_environment(
    bench_env: dict[str, str], tmp_path: Path
) -> None:
    token = "tiny-" + "t0ken" * 6
    api_key = "k" * 24
    env = {**bench_env, "TINY_TOKEN": token, "KIT_API_KEYS": api_key}
    proc = kit_bench(
        "--app", APP, "--path", "/private", "--header", "Authorization:Bearer ${TINY_TOKEN}",
        "--header", "X-Tenant: acme", *TINY, "--out", str(tmp_path), env=env,
    )  # fmt: skip
    assert proc.returncode == 0, proc.stderr
    written = [Path(line) for line in proc.stdout.splitlines()]
    run = schema.load(written[0])
    [record] = run.records
    assert record.failure is None
    assert record.requests > 0
    assert record.errors == 0  # every request carried the token: no 401
    assert run.method.headers == {"Authorization": "REDACTED", "X-Tenant": "acme"}
    assert run.method.env["KIT_API_KEYS"] == "REDACTED"
    for path in written[:2]:
        text = path.read_text()
        assert token not in text
        assert api_key not in text
        if secret := env.get("KIT_AUTH_JWT_SECRET"):
            assert secret not in text
    assert "`X-Tenant: acme`" in written[1].read_text()


def test_a_protected_route_without_its_header_fails(
    bench_env: dict[str, str], tmp_path: Path
) -> None:
    env = {**bench_env, "TINY_TOKEN": "x" * 20}
    proc = kit_bench(
        "--app", APP, "--path", "/private", "--ready-path", "/hello", *TINY,
        "--out", str(tmp_path), env=env,
    )  # fmt: skip
    assert proc.returncode == 1, proc.stderr
    [record] = schema.load(Path(proc.stdout.splitlines()[0])).records
    assert record.failure is not None
    assert "answered 401" in record.failure


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["--app", "tests.bench.tiny"], "is not MODULE:ATTR"),
        (["--app", APP], "--app needs at least one --path"),
        (["--app", APP, "--path", "hello"], "--path hello: must start with /"),
        (["--app", APP, "--path", "/x#99"], "the status after # must be 200-599"),
        (["--path", "/hello"], "--path, --method, --body and --ready-path need --app"),
        (["--method", "POST"], "--path, --method, --body and --ready-path need --app"),
        (["--app", APP, "--path", "/x", "--header", "Authorization"], "give NAME:VALUE"),
        (["--app", APP, "--path", "/x", "--header", "Bad Name:1"], "give NAME:VALUE"),
        (
            ["--app", APP, "--path", "/x", "--header", "Authorization:Bearer ${KIT_NO_SUCH}"],
            "--header Authorization: ${KIT_NO_SUCH} is not set",
        ),
        (["--app", APP, "--path", "/x", "--header", "X:" + "v" * 9000], "longer than 8192"),
        (["--app", APP, "--path", "/x y"], "no whitespace or control characters"),
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
