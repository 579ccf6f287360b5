"""Every app the suite defines, asked the same requests with each typed route in each shape
its plan can take (kit._plan): the answers must be those of the general shape, byte for byte.
And the comparison can fail: a deliberately broken shape is caught."""

from __future__ import annotations

import importlib
import os
import subprocess
import sys
from collections.abc import AsyncIterator, Callable, Iterator
from typing import Annotated, Any

import pytest
from starlette.testclient import TestClient

from kit import App, Depends, Settings
from kit import _plan as plan_module
from tests.kit.differential import Request, differences, requests_for

# module:attr of an App, or of a function building one from no arguments
APPS = [
    "services.bench.app:app",
    "services.catalog.app:app",
    "services.orders.app:app",
    "tests.kit.ops.app:app",
    "tests.kit.obs.app:app",
    "tests.kit.openapi.app:app",
    "tests.kit.openapi.formats_app:app",
    "tests.kit.openapi.secured_app:app",
    "tests.kit.outbound.upstream:app",
    "tests.runtimes.app:app",
    "tests.bench.tiny:app",
    "tests.kit.test_dispatch:build",
    "tests.kit.test_params:make_app",
    "tests.kit.test_errors:kit_app",
    "tests.kit.test_dependency_overrides:build",
    "tests.kit.openapi.test_openapi_pages:make_app",
    "tests.kit.security.test_security_schemes:items_app",
    "tests.kit.test_di:make_app",
    "tests.kit.test_di_resources:make_app",
]


def load(spec: str) -> App:
    module, attr = spec.split(":")
    found: Any = getattr(importlib.import_module(module), attr)
    if isinstance(found, App):
        return found
    if attr == "make_app" and module.endswith(("test_di", "test_di_resources")):
        recorder = importlib.import_module(module)
        return found(recorder.Recorder() if hasattr(recorder, "Recorder") else [])  # type: ignore[no-any-return]
    return found()  # type: ignore[no-any-return]


@pytest.fixture(params=APPS)
def app(request: pytest.FixtureRequest) -> App:
    return load(request.param)


@pytest.fixture
def client(app: App, request: pytest.FixtureRequest) -> Iterator[TestClient]:
    database = getattr(app, "database", None)
    previous = None
    if database is not None:  # kit.testing's fresh database, migrated for this app
        previous, database.url = database.url, request.getfixturevalue("fresh_database_url")
    try:
        with TestClient(app, raise_server_exceptions=True) as client:
            yield client
    finally:
        if database is not None:
            database.url = previous


def test_every_shape_answers_as_the_general_one(app: App, client: TestClient) -> None:
    requests = requests_for(app)
    assert requests, "an app without typed routes tells nothing"
    assert differences(app, client, requests) == []


events: list[str] = []


async def first() -> AsyncIterator[str]:
    events.append("open:first")
    yield "first"
    events.append("close:first")


async def second() -> AsyncIterator[str]:
    events.append("open:second")
    yield "second"
    events.append("close:second")


def two_generators() -> App:
    app = App(settings=Settings.from_env({}, metrics=False, access_log=False))

    @app.get("/two")
    async def two(
        a: Annotated[str, Depends(first)], b: Annotated[str, Depends(second)]
    ) -> list[str]:
        return [a, b]

    return app


def test_a_broken_shape_is_caught(monkeypatch: pytest.MonkeyPatch) -> None:
    app = two_generators()
    client = TestClient(app)
    requests = [Request("GET", "/two")]
    assert differences(app, client, requests, events) == []
    steps: Callable[..., Any] = plan_module._steps

    def reversed_steps(plan: Any) -> Any:  # a shape that opens the dependencies backwards
        found = steps(plan)
        return None if found is None else (found[0], found[1][::-1])

    monkeypatch.setattr(plan_module, "_steps", reversed_steps)
    found = differences(app, client, requests, events)
    assert len(found) == 1
    assert "open:second" in found[0]


def test_the_environment_switch_compiles_every_route_in_the_general_shape() -> None:
    script = (
        "from services.bench.app import app\n"
        "print(sorted({r.handler.plan.shape for r in app.routes if hasattr(r, 'handler')}))"
    )
    shapes = {}
    for value in ("0", "1"):
        env = {**os.environ, "KIT_GENERAL_PLAN": value}
        done = subprocess.run(
            [sys.executable, "-c", script], env=env, capture_output=True, text=True, timeout=60
        )
        assert done.returncode == 0, done.stderr
        shapes[value] = done.stdout.strip()
    assert shapes["1"] == "['solver']"
    assert shapes["0"] != shapes["1"]
