"""kit.testing.ServerProcess: a real `kit serve` process, ready or failing with its log, and
never anything of it left running."""

from __future__ import annotations

import json
import signal
import time
import urllib.request
from pathlib import Path

import pytest

from kit.testing import ServerProcess, free_port

psutil = pytest.importorskip("psutil")

REPO = Path(__file__).resolve().parents[2]
APP = "tests.runtimes.app:app"  # no database needed; /pid names the worker that answers


def running(pid: int) -> bool:
    try:
        return bool(psutil.Process(pid).status() != psutil.STATUS_ZOMBIE)
    except psutil.NoSuchProcess:
        return False


def wait_gone(pid: int) -> bool:
    """Whether ``pid`` ends soon (a killed orphan is reaped by init, not by the test)."""
    for _ in range(100):
        if not running(pid):
            return True
        time.sleep(0.05)
    return False


def get(url: str) -> bytes:
    with urllib.request.urlopen(url, timeout=10) as response:
        return bytes(response.read())


def test_serves_until_a_signal_stops_it_gracefully(tmp_path: Path) -> None:
    server = ServerProcess(APP, runtime="uvicorn", cwd=REPO, log=tmp_path, ready_path="/plaintext")
    with server:
        assert server.log == tmp_path / f"serve-{server.port}.log"
        assert server.url == f"http://127.0.0.1:{server.port}"
        assert get(server.url + "/plaintext") == b"Hello, World!"
        assert server.stop(signal.SIGINT) == 0  # drained and exited by itself
    assert not running(server.pid)
    assert f"kit: serving {APP} on uvicorn" in server.output()


def test_stop_kills_the_whole_group_when_the_signal_is_not_enough(tmp_path: Path) -> None:
    with ServerProcess(
        APP, "--workers", "2", runtime="uvicorn", cwd=REPO, log=tmp_path / "two.log"
    ) as server:
        worker = json.loads(get(server.url + "/pid"))["pid"]
        assert worker != server.pid
        # a stopped main process ignores the wait: its worker must go with the SIGKILL
        assert server.stop(signal.SIGSTOP, timeout=0.2) == -signal.SIGKILL
        assert wait_gone(worker)


def test_a_server_that_exits_fails_at_once_with_its_log(tmp_path: Path) -> None:
    server = ServerProcess("no_such_module:app", cwd=REPO, log=tmp_path)
    with pytest.raises(RuntimeError, match="exited with") as error:
        server.start()
    assert "no_such_module" in str(error.value)
    assert server.proc.returncode not in (None, 0)


def test_not_ready_in_time_is_an_error_and_stops_the_server(tmp_path: Path) -> None:
    server = ServerProcess(
        APP, runtime="uvicorn", cwd=REPO, log=tmp_path, ready_path="/no/such/path", timeout=1
    )
    with pytest.raises(RuntimeError, match="was not ready in time"):
        server.start()
    assert server.proc.returncode is not None
    assert not running(server.pid)


def test_unstarted_and_restarted_servers_are_refused(tmp_path: Path) -> None:
    server = ServerProcess(APP, runtime="uvicorn", cwd=REPO, log=tmp_path, name="conformance")
    with pytest.raises(RuntimeError, match="conformance was not started"):
        server.proc  # noqa: B018
    assert server.stop() is None
    try:
        server.spawn()
        with pytest.raises(RuntimeError, match="conformance was already started"):
            server.spawn()
    finally:
        server.stop()
    assert server.proc.returncode is not None


def test_runtime_wins_over_env_and_env_over_the_inherited_environment(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("KIT_LOG_LEVEL", "debug")
    env = {"KIT_RUNTIME": "hypercorn", "KIT_LOG_LEVEL": "warning"}
    server = ServerProcess(APP, runtime="granian", env=env, log=tmp_path / "x.log")
    assert server.environ["KIT_RUNTIME"] == "granian"
    assert server.environ["KIT_LOG_LEVEL"] == "warning"
    assert server.command[-2:] == ["--port", str(server.port)]
    assert 0 < free_port() < 65536
