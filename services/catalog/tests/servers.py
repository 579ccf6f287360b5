"""A real `kit serve` process for tests: bound to a free loopback port, always stopped."""

from __future__ import annotations

import contextlib
import os
from collections.abc import Iterator
from pathlib import Path

import pytest

from kit.testing import ServerProcess
from runtimes.registry import NAMES, installed

RUNTIMES = NAMES


def selected_runtimes() -> list[str]:
    """The runtimes to test; KIT_TEST_RUNTIMES (comma-separated) narrows them, e.g. to one
    tox cell's server."""
    selected = [name for name in os.environ.get("KIT_TEST_RUNTIMES", "").split(",") if name]
    return [name for name in RUNTIMES if not selected or name in selected]


def runtime_params() -> list[object]:
    """One param per selected runtime, skipped when its server is not installed."""
    return [
        pytest.param(name, marks=pytest.mark.skipif(not installed(name), reason=f"no {name}"))
        for name in selected_runtimes()
    ]


def any_runtime() -> str:
    """One selected runtime that is installed (the test is skipped if there is none)."""
    for name in selected_runtimes():
        if installed(name):
            return name
    pytest.skip("no selected runtime is installed")


@contextlib.contextmanager
def serving(
    app: str, runtime: str, *, cwd: Path, log: Path, env: dict[str, str], timeout: float = 60
) -> Iterator[str]:
    """``kit serve APP`` on ``runtime``; yields its URL once /readyz answers 200."""
    server = ServerProcess(
        app,
        runtime=runtime,
        env=env,
        cwd=cwd,
        log=log,
        ready_path="/readyz",
        timeout=timeout,
        stop_timeout=15,
        name=runtime,
    )
    with server:
        yield server.url
