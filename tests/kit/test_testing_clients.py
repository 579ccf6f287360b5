"""kit.testing's clients and plugin: AsyncClient runs the app's lifespan around async tests, and
the pytest plugin changes nothing in a session that does not use kit's fixtures."""

from __future__ import annotations

import os
import subprocess
import sys
import textwrap
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Any

import pytest

from kit import App, Request
from kit.testing import AsyncClient, LifespanFailed


def greeting_app(events: list[str], fail: bool = False) -> App:
    @asynccontextmanager
    async def lifespan(app: Any) -> AsyncIterator[dict[str, str]]:
        events.append("startup")
        if fail:
            raise RuntimeError("the database is not there")
        yield {"greeting": "hello"}
        events.append("shutdown")

    app = App(title="greeting", lifespan=lifespan)

    @app.get("/hello")
    async def hello(request: Request) -> dict[str, str]:
        return {"greeting": request.state.greeting}

    return app


@pytest.mark.anyio
async def test_async_client_runs_the_lifespan_around_requests() -> None:
    events: list[str] = []
    async with AsyncClient(greeting_app(events)) as client:
        assert events == ["startup"]
        response = await client.get("/hello")
        assert response.json() == {"greeting": "hello"}  # lifespan state reaches the request
        assert (await client.get("/readyz")).status_code == 200
        assert (await client.post("/hello")).status_code == 405
    assert events == ["startup", "shutdown"]


@pytest.mark.anyio
async def test_a_failed_startup_raises_with_the_apps_reason() -> None:
    events: list[str] = []
    with pytest.raises(LifespanFailed, match="the database is not there"):
        async with AsyncClient(greeting_app(events, fail=True)):
            pytest.fail("entered although the lifespan failed")
    assert events == ["startup"]


@pytest.mark.anyio
async def test_without_lifespan_nothing_starts() -> None:
    events: list[str] = []
    async with AsyncClient(greeting_app(events), lifespan=False) as client:
        assert (await client.get("/healthz")).status_code == 200
    assert events == []


SESSION_APP = """
    import os

    import pytest

    from kit import App
    from kit.security import JWTBearer, Security
    from kit.testing import bearer, mint_token

    service = App(title="guarded")  # built at import, before any fixture ran


    @service.get("/me", dependencies=[Security(JWTBearer(), scopes=["me:read"])])
    async def me() -> dict[str, bool]:
        return {"ok": True}


    @pytest.fixture
    def app() -> App:
        return service
"""


def pytest_session(tmp_path: Path, ini: str, tests: dict[str, str]) -> str:
    """Run pytest in a directory of its own (its own configuration, outside the repository)."""
    (tmp_path / "pytest.ini").write_text(f"[pytest]\naddopts = -p no:cacheprovider\n{ini}")
    for name, source in tests.items():
        (tmp_path / name).write_text(textwrap.dedent(source))
    env = {k: v for k, v in os.environ.items() if not k.startswith("KIT_AUTH_")}
    env.pop("PYTHONPATH", None)
    result = subprocess.run(
        [sys.executable, "-m", "pytest", "-q", "-p", "no:randomly"],
        cwd=tmp_path,
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
    )
    return f"exit {result.returncode}\n{result.stdout}{result.stderr}"


PLAIN = """
    import os


    def test_environment_untouched() -> None:
        assert "KIT_AUTH_JWT_SECRET" not in os.environ
"""
WITH_CLIENT = (
    SESSION_APP
    + """

    def test_tokens_minted_for_the_app_are_accepted(client) -> None:
        assert client.get("/me").status_code == 401
        token = bearer(mint_token(service, scopes=["me:read"]))
        assert client.get("/me", headers=token).status_code == 200
        assert os.environ["KIT_AUTH_JWT_SECRET"]


    @pytest.mark.anyio
    async def test_and_with_the_async_client(async_client) -> None:
        token = bearer(mint_token(service, scopes=["me:read"]))
        assert (await async_client.get("/me", headers=token)).status_code == 200


    @pytest.fixture
    def anyio_backend() -> str:
        return "asyncio"
"""
)


def test_a_session_without_kits_fixtures_is_left_alone(tmp_path: Path) -> None:
    # test_a... runs first: nothing may be set before a test asks for kit's client
    output = pytest_session(
        tmp_path, "", {"test_a_plain.py": PLAIN, "test_b_client.py": WITH_CLIENT}
    )
    assert output.startswith("exit 0\n"), output
    assert "3 passed" in output


def test_the_session_secret_can_be_set_at_start_up(tmp_path: Path) -> None:
    early = """
        import os

        SECRET = os.environ.get("KIT_AUTH_JWT_SECRET")  # read at import, as an app would


        def test_set_before_import() -> None:
            assert SECRET
    """
    output = pytest_session(tmp_path, "kit_session_jwt_secret = true\n", {"test_early.py": early})
    assert output.startswith("exit 0\n"), output
