from __future__ import annotations

import subprocess
import sys

import pytest

from bench.inprocess import APPS, CASES, Driver, kit_app
from tests.bench.conftest import ROOT


def test_every_app_answers_the_same_and_is_counted() -> None:
    # A separate process: kit+ops configures logging, which must not leak into this one.
    proc = subprocess.run(
        [sys.executable, "-m", "bench.inprocess", "--requests", "50", "--repeat", "1"],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert proc.returncode == 0, proc.stderr
    rows = [line for line in proc.stdout.splitlines() if line.startswith("| ")]
    assert rows[0] == "| case | " + " | ".join(APPS) + " | kit/starlette | kit/fastapi |"
    assert [row.split(" | ")[0] for row in rows[2:]] == [f"| {case}" for case in CASES]
    assert all(row.endswith("x |") for row in rows[2:])


@pytest.mark.parametrize("argv", [["--requests", "0"], ["--repeat", "-1"]])
def test_rejects_empty_rounds(argv: list[str]) -> None:
    proc = subprocess.run(
        [sys.executable, "-m", "bench.inprocess", *argv], cwd=ROOT, capture_output=True, text=True
    )
    assert proc.returncode == 2
    assert "--requests and --repeat must be >= 1" in proc.stderr


@pytest.mark.anyio
async def test_a_rejected_body_stops_the_count() -> None:
    driver = Driver(kit_app())
    await driver.start()
    try:
        status, body = await driver.request("POST", "/validate", b'{"name": ""}')
        assert status == 422
        assert b'"loc":["body"' in body
        with pytest.raises(RuntimeError, match="POST /validate answered 422"):
            await driver.rate("POST", "/validate", b"{}", 3)
    finally:
        await driver.stop()
