from __future__ import annotations

import shutil
from pathlib import Path

import pytest

from kit.benchmark import wrk
from kit.benchmark.server import free_port
from tests.bench.conftest import FIXTURES


def test_parses_a_clean_run() -> None:
    result = wrk.parse((FIXTURES / "wrk_ok.txt").read_text())
    assert result.requests == 103501
    assert result.seconds == pytest.approx(2.10)
    assert result.rps == pytest.approx(49289.01)
    assert result.p50_ms == pytest.approx(0.618)
    assert result.p75_ms == pytest.approx(0.640)
    assert result.p90_ms == pytest.approx(0.671)
    assert result.p99_ms == pytest.approx(1.27)
    assert (result.non_2xx, result.socket_errors) == (0, 0)


def test_counts_error_statuses() -> None:
    result = wrk.parse((FIXTURES / "wrk_non2xx.txt").read_text())
    assert result.non_2xx == result.requests == 97539
    assert result.socket_errors == 0


def test_counts_socket_errors_and_statuses_together() -> None:
    result = wrk.parse((FIXTURES / "wrk_errors.txt").read_text())
    assert (result.connect_errors, result.read_errors, result.write_errors) == (0, 0, 0)
    assert result.timeouts == result.socket_errors == 32
    assert result.non_2xx == 240
    assert result.p99_ms == pytest.approx(0.90)
    assert result.p50_ms == pytest.approx(0.084)


def test_a_run_without_answers_parses_as_zero() -> None:
    result = wrk.parse((FIXTURES / "wrk_zero.txt").read_text())
    assert (result.requests, result.rps, result.p99_ms) == (0, 0.0, 0.0)


@pytest.mark.parametrize(
    "text",
    [
        "",
        "unable to connect to 127.0.0.1:1 Connection refused",
        # a report cut off before its percentiles
        "Running 2s test @ http://127.0.0.1:1/\n  103501 requests in 2.10s, 15.00MB read\n"
        "Requests/sec:  49289.01\n",
    ],
)
def test_rejects_what_is_not_a_latency_report(text: str) -> None:
    with pytest.raises(wrk.WrkError, match="not a wrk --latency report"):
        wrk.parse(text)


def test_command_pins_and_rounds() -> None:
    argv = wrk.command("wrk", "http://127.0.0.1:9/json", connections=64, seconds=2.4, cpus=[1])
    assert argv == [
        "taskset", "-c", "1", "wrk", "-t1", "-c64", "-d2s", "--timeout=2s", "--latency",
        "http://127.0.0.1:9/json",
    ]  # fmt: skip


def test_command_never_opens_fewer_connections_than_threads() -> None:
    argv = wrk.command("wrk", "http://x/", connections=1, seconds=0.2, threads=4)
    assert "-c4" in argv
    assert "-d1s" in argv


def test_post_script_carries_the_body(tmp_path: Path) -> None:
    script = wrk.post_script(b'{"name":"Ada"}', tmp_path).read_text()
    assert 'wrk.method = "POST"' in script
    assert 'wrk.body = [[{"name":"Ada"}]]' in script
    assert 'wrk.headers["Content-Type"] = "application/json"' in script


@pytest.mark.parametrize("text", ["[[1]]", "a]=]b]]", "\nstarts with a newline", "]==]"])
def test_a_lua_string_holds_any_text(text: str) -> None:
    quoted = wrk.lua_string(text)
    level = quoted.index("[", 1)  # [==[ ... ]==]
    closing = "]" + quoted[1:level] + "]"
    body = quoted[level + 1 : -len(closing)]
    assert quoted.endswith(closing)
    assert closing not in body
    # Lua drops one newline right after the opening bracket
    assert (body[1:] if body.startswith("\n") else body) == text


def test_headers_go_into_the_script_not_the_command_line(tmp_path: Path) -> None:
    headers = {"Authorization": "Bearer s3cret]]", "X-Tenant": "a"}
    script = wrk.request_script("GET", None, tmp_path, headers)
    text = script.read_text()
    assert 'wrk.headers["Authorization"] = [=[Bearer s3cret]]]=]' in text
    assert 'wrk.headers["X-Tenant"] = [[a]]' in text
    assert script.stat().st_mode & 0o077 == 0  # only its owner reads the secret
    argv = wrk.command("wrk", "http://x/", connections=1, seconds=1, script=script)
    assert not any("s3cret" in arg for arg in argv)


def test_missing_wrk_is_one_clear_line(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    monkeypatch.setenv("PATH", str(tmp_path))
    with pytest.raises(wrk.WrkNotFound) as info:
        wrk.find()
    assert str(info.value) == (
        "wrk not found: install it with 'apt-get install wrk' (Debian/Ubuntu) "
        "or 'brew install wrk' (macOS)"
    )


@pytest.mark.skipif(shutil.which("wrk") is None, reason="wrk is not installed")
def test_run_reports_a_refused_connection() -> None:
    url = f"http://127.0.0.1:{free_port()}/"  # nothing listens there
    argv = wrk.command(wrk.find(), url, connections=1, seconds=1)
    with pytest.raises(wrk.WrkError, match="Connection refused"):
        wrk.run(argv, seconds=1)
