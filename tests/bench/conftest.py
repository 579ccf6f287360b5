from __future__ import annotations

import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
FIXTURES = Path(__file__).with_name("fixtures")


def kit_bench(
    *args: str, env: dict[str, str], timeout: float = 90
) -> subprocess.CompletedProcess[str]:
    """`kit bench ARGS` as a user runs it: a real process from the repository root."""
    return subprocess.run(
        [sys.executable, "-m", "kit.cli", "bench", *args],
        cwd=ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=timeout,
    )


@pytest.fixture
def bench_env(request: pytest.FixtureRequest) -> dict[str, str]:
    """The environment for a real run, on the suite's Postgres when the kit plugin provides one."""
    if shutil.which("wrk") is None:
        pytest.skip("wrk is not installed (apt-get install wrk / brew install wrk)")
    env = dict(os.environ)
    try:
        env["DATABASE_URL"] = request.getfixturevalue("database_url")
    except pytest.FixtureLookupError:
        pass  # without the plugin the runner starts the embedded Postgres itself
    return env


@pytest.fixture
def anyio_backend() -> str:
    return "asyncio"
