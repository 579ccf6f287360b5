"""gunicorn only: a worker killed under load is replaced while the others keep answering."""

from __future__ import annotations

import os
import signal
import threading
import time
from importlib.util import find_spec
from pathlib import Path

import httpx
import pytest

from tests.runtimes.conftest import start_server

pytestmark = pytest.mark.skipif(find_spec("gunicorn") is None, reason="gunicorn is not installed")


def worker_pids(master: int) -> set[int]:
    children = Path(f"/proc/{master}/task/{master}/children").read_text().split()
    return {int(pid) for pid in children}


def test_a_killed_worker_is_respawned_while_the_others_answer(tmp_path: Path) -> None:
    server = start_server("gunicorn", tmp_path, workers=2)
    try:
        before = worker_pids(server.pid)
        assert len(before) == 2
        statuses: list[int | str] = []
        stop = threading.Event()

        def load() -> None:
            with httpx.Client(base_url=server.url, timeout=5) as client:
                while not stop.is_set():
                    try:
                        statuses.append(client.get("/pid").status_code)
                    except httpx.TransportError as exc:  # only the killed worker's connection
                        statuses.append(type(exc).__name__)

        loaders = [threading.Thread(target=load) for _ in range(4)]
        for thread in loaders:
            thread.start()
        deadline = time.monotonic() + 10
        while len(statuses) < 8 and time.monotonic() < deadline:  # the load is running
            time.sleep(0.05)
        victim = min(before)
        os.kill(victim, signal.SIGKILL)
        killed_at = len(statuses)
        deadline = time.monotonic() + 20
        while time.monotonic() < deadline:
            after = worker_pids(server.pid)
            if len(after) == 2 and victim not in after:
                break
            time.sleep(0.1)
        served = len(statuses)
        while len(statuses) < served + 8 and time.monotonic() < deadline + 10:
            time.sleep(0.05)
        stop.set()
        for thread in loaders:
            thread.join()
        assert victim not in after, after
        assert len(after) == 2, after
        served_after = statuses[killed_at:]
        assert served_after.count(200) > 0
        # The kill may cut the requests in flight on that worker (one per connection at most).
        assert len([s for s in served_after if s != 200]) <= len(loaders), served_after
        pids = {httpx.get(server.url + "/pid", timeout=5).json()["pid"] for _ in range(20)}
        assert pids <= after
    finally:
        server.kill()
