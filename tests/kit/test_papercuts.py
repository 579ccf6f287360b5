"""Small facts the docs and deploy files state, checked against what the code does."""

from __future__ import annotations

import asyncio
import re
from pathlib import Path
from typing import Any

import pytest

from kit.middleware.timeout import TimeoutMiddleware
from kit.settings import Settings, SettingsError

ROOT = Path(__file__).resolve().parents[2]


def test_the_readme_states_the_api_key_minimum_settings_enforce() -> None:
    with pytest.raises(SettingsError, match="at least 16 characters"):
        Settings.from_env({"KIT_API_KEYS": "x" * 15})
    assert Settings.from_env({"KIT_API_KEYS": "x" * 16}).api_keys == ("x" * 16,)
    # (README.md, or the docs pages it is being split into)
    pages = [ROOT / "README.md", *ROOT.joinpath("docs").glob("**/*.md")]
    assert any("key needs at least 16 characters" in page.read_text() for page in pages)


def test_nginx_conf_names_the_status_a_request_timeout_answers() -> None:
    sent: list[dict[str, Any]] = []

    async def slow(scope: Any, receive: Any, send: Any) -> None:
        await asyncio.sleep(30)

    async def send(message: dict[str, Any]) -> None:
        sent.append(message)

    async def receive() -> dict[str, Any]:
        return {"type": "http.request", "body": b""}

    scope = {"type": "http", "method": "GET", "path": "/slow", "headers": []}
    asyncio.run(TimeoutMiddleware(slow, seconds=0.05)(scope, receive, send))
    status = sent[0]["status"]
    conf = ROOT.joinpath("deploy", "nginx", "kit.conf").read_text()
    said = re.search(r"kit answers a slow request itself \(JSON (\d{3})\)", conf)
    assert said is not None
    assert int(said[1]) == status == 504
