"""A real upstream process for the outbound client's tests, and a client opened on it."""

from __future__ import annotations

import contextlib
import re
import urllib.request
from collections.abc import AsyncIterator, Iterator
from pathlib import Path

import pytest

from kit import App
from kit.http import HttpClient, Upstream
from kit.testing import ServerProcess

REPO = Path(__file__).resolve().parents[3]
UPSTREAM = "tests.kit.outbound.upstream:app"


@pytest.fixture(scope="module")
def upstream(tmp_path_factory: pytest.TempPathFactory) -> Iterator[ServerProcess]:
    log = tmp_path_factory.mktemp("upstream")
    with ServerProcess(
        UPSTREAM,
        runtime="uvicorn",
        env={"KIT_ACCESS_LOG": "0", "KIT_GRACEFUL_TIMEOUT": "1"},
        cwd=REPO,
        log=log,
    ) as server:
        yield server


def received(url: str, route: str) -> int:
    """Calls the server at ``url`` answered on ``route``, by its own /metrics."""
    with urllib.request.urlopen(f"{url}/metrics", timeout=5) as response:
        text = response.read().decode()
    labels = r'\{[^}]*route="' + re.escape(route) + r'"[^}]*\}'
    line = rf"^kit_http_requests_total{labels} (\d+)$"
    return sum(int(m.group(1)) for m in re.finditer(line, text, re.MULTILINE))


@contextlib.asynccontextmanager
async def opened(*upstreams: Upstream) -> AsyncIterator[tuple[HttpClient, App]]:
    """A client for ``upstreams`` inside a kit App's lifespan (so its metrics are on)."""
    app = App(title="caller")
    client = HttpClient(*upstreams)
    async with client.lifespan(app):
        yield client, app
