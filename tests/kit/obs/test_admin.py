"""The admin surface on a real server: authentication, the task dump of a request stuck in
Postgres, log levels changed at run time, the pool's activity, and no secret in any answer."""

from __future__ import annotations

import asyncio
import concurrent.futures
import hashlib
import os
import secrets
import subprocess
import sys
import time
from typing import Any
from urllib.parse import urlsplit, urlunsplit

import asyncpg
import httpx
import pytest

from kit.security.tokens import mint_token
from tests.kit.obs.conftest import REPO

KEY = "admin-key-" + secrets.token_hex(8)
HASHED = "sha256:" + hashlib.sha256(KEY.encode()).hexdigest()
ROLE = "kit_admin_probe"
OTHER_KEY = "another-service-key-0123"  # plain keys: at least 16 characters


@pytest.fixture(scope="module")
def password_url(database_url: str) -> tuple[str, str]:
    """A DATABASE_URL with a password (a role created for the test) and that password."""
    password = "pw-" + secrets.token_hex(12)

    async def create() -> None:
        conn = await asyncpg.connect(database_url)
        try:
            exists = await conn.fetchval("SELECT true FROM pg_roles WHERE rolname = $1", ROLE)
            verb = "ALTER" if exists else "CREATE"
            await conn.execute(f"{verb} ROLE {ROLE} LOGIN PASSWORD '{password}'")
        finally:
            await conn.close()

    asyncio.run(create())
    parts = urlsplit(database_url)
    netloc = f"{ROLE}:{password}@{parts.hostname or ''}" + (f":{parts.port}" if parts.port else "")
    return urlunsplit(parts._replace(netloc=netloc)), password


def admin(serve: Any, runtime: str, password_url: tuple[str, str], **env: str) -> Any:
    return serve(
        runtime,
        KIT_ADMIN="1",
        KIT_API_KEYS=f"{OTHER_KEY},{HASHED} admin",  # only the second may use /admin
        OBS_DB="1",
        DATABASE_URL=password_url[0],
        KIT_MIGRATE="0",
        **env,
    )


def test_admin_endpoints(serve: Any, runtime: str, password_url: tuple[str, str]) -> None:
    server = admin(serve, runtime, password_url)
    answers: list[str] = []
    with httpx.Client(base_url=server.url, timeout=10, headers={"X-API-Key": KEY}) as client:

        def get(path: str) -> Any:
            response = client.get(path)
            assert response.status_code == 200, response.text
            answers.append(response.text)
            return response.json()

        info = get("/admin/info")
        assert info["service"] == {"name": "obs", "version": "1.2.3"}
        assert info["python"]["gil"] in ("on", "off")
        assert info["runtime"]["name"] == runtime
        assert info["runtime"]["version"]
        assert info["started_at"]
        assert info["settings"]["admin"] is True
        assert info["settings"]["api_keys"] == "<redacted>"
        assert info["settings"]["database_url"].startswith(f"postgresql://{ROLE}:<redacted>@")

        with concurrent.futures.ThreadPoolExecutor(1) as pool:
            stuck = pool.submit(
                httpx.get,
                server.url + "/db/sleep?seconds=3",
                headers={"X-Request-ID": "stuck-1"},
                timeout=10,
            )
            task = None
            for _ in range(100):
                tasks = get("/admin/tasks")["tasks"]
                found = [t for t in tasks if t["route"] == "/db/sleep"]
                if found:
                    task = found[0]
                    break
                time.sleep(0.05)
            assert task is not None, tasks
            assert task["request_id"] == "stuck-1"
            assert task["path"] == "/db/sleep"
            assert task["age_seconds"] >= 0
            assert any("db_sleep" in frame for frame in task["stack"]), task["stack"]
            (me,) = [t for t in tasks if t["current"]]
            assert me["route"] == "/admin/tasks"

            activity = get("/admin/pool")
            sleeping = [c for c in activity["connections"] if "pg_sleep" in (c["query"] or "")]
            assert sleeping, activity
            assert sleeping[0]["state"] == "active"
            assert sleeping[0]["query"] == "SELECT pg_sleep($1)"
            assert stuck.result().json() == {"slept": True}

        loggers = get("/admin/loggers")
        assert loggers["loggers"]["obs.app"]["effective"] == "info"
        client.get("/log")
        changed = client.put("/admin/loggers/obs.app", json={"level": "debug"})
        assert changed.status_code == 200, changed.text
        answers.append(changed.text)
        assert changed.json()["effective"] == "debug"
        client.get("/log")
        assert get("/admin/loggers")["loggers"]["obs.app"]["level"] == "debug"

        bad = client.put("/admin/loggers/obs.app", json={"level": "loud"})
        assert bad.status_code == 422
        assert bad.json()["detail"][0]["loc"] == ["body", "level"]
        malformed = client.put(
            "/admin/loggers/obs.app",
            content=b"{not json",
            headers={"content-type": "application/json"},
        )
        assert malformed.status_code == 422, malformed.text  # kit's answer, as FastAPI's
        assert malformed.json()["detail"][0]["type"] == "json_invalid"

    server.stop()
    debug = [line for line in server.lines() if line.get("msg") == "a debug line"]
    assert len(debug) == 1  # only after the change
    info_lines = [line for line in server.lines() if line.get("msg") == "an info line"]
    assert len(info_lines) == 2

    password = password_url[1]
    for answer in answers:
        assert password not in answer
        assert KEY not in answer


def test_admin_needs_a_key(serve: Any, password_url: tuple[str, str]) -> None:
    server = admin(serve, "uvicorn", password_url)
    for headers in ({}, {"X-API-Key": "wrong"}, {"Authorization": f"Bearer {KEY}"}):
        for path in ("/admin/info", "/admin/tasks", "/admin/loggers", "/admin/pool"):
            response = httpx.get(server.url + path, headers=headers)
            assert response.status_code == 401, (path, headers)
            assert isinstance(response.json()["detail"], str)
    response = httpx.put(server.url + "/admin/loggers/obs.app", json={"level": "debug"})
    assert response.status_code == 401
    # the key is checked before the body is read: a bad body without a key is still a 401
    garbage = httpx.put(
        server.url + "/admin/loggers/obs.app",
        content=b"{not json",
        headers={"content-type": "application/json"},
    )
    assert garbage.status_code == 401
    # a valid key without the admin scope: known, not allowed
    plain = httpx.get(server.url + "/admin/info", headers={"X-API-Key": OTHER_KEY})
    assert plain.status_code == 403
    assert plain.json() == {"detail": "missing scope: admin"}
    allowed = httpx.get(server.url + "/admin/info", headers={"X-API-Key": KEY})
    assert allowed.status_code == 200


def test_admin_with_bearer_tokens(serve: Any, password_url: tuple[str, str]) -> None:
    secret = "jwt-secret-" + secrets.token_hex(16)
    server = serve(
        "uvicorn",
        KIT_ADMIN="1",
        KIT_AUTH_JWT_SECRET=secret,
        OBS_DB="1",
        DATABASE_URL=password_url[0],
        KIT_MIGRATE="0",
    )

    def get(token: str | None) -> httpx.Response:
        headers = {"Authorization": f"Bearer {token}"} if token else {}
        return httpx.get(server.url + "/admin/info", headers=headers)

    assert get(mint_token(secret=secret, scopes=["admin"])).status_code == 200
    assert get(mint_token(secret=secret, scopes=["admin", "orders:write"])).status_code == 200
    denied = get(mint_token(secret=secret, scopes=["orders:write"]))
    assert denied.status_code == 403
    assert "admin" in denied.json()["detail"]
    assert get(mint_token(secret="another-secret-" + "x" * 32, scopes=["admin"])).status_code == 401
    assert get(None).status_code == 401
    answer = get(mint_token(secret=secret, scopes=["admin"])).text
    assert secret not in answer
    assert password_url[1] not in answer


def test_admin_without_authentication_refuses_to_start() -> None:
    env = {k: v for k, v in os.environ.items() if not k.startswith(("KIT_API_KEYS", "KIT_AUTH"))}
    done = subprocess.run(
        [sys.executable, "-m", "kit.cli", "serve", "tests.kit.obs.app:app"],
        cwd=REPO,
        env={**env, "KIT_ADMIN": "1"},
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert done.returncode == 2
    assert done.stderr.strip().splitlines() == [ADMIN_NEEDS_AUTH]


ADMIN_NEEDS_AUTH = (
    "kit serve: KIT_ADMIN=1 needs authentication: give a key in KIT_API_KEYS the scope admin "
    '("KEY admin"), or set KIT_AUTH_JWT_SECRET, KIT_AUTH_JWT_PUBLIC_KEY or KIT_AUTH_JWKS_URL '
    "for bearer tokens with scope admin"
)


def test_admin_with_keys_but_none_with_the_admin_scope_refuses_to_start() -> None:
    env = {k: v for k, v in os.environ.items() if not k.startswith(("KIT_API_KEYS", "KIT_AUTH"))}
    done = subprocess.run(
        [sys.executable, "-m", "kit.cli", "serve", "tests.kit.obs.app:app"],
        cwd=REPO,
        env={**env, "KIT_ADMIN": "1", "KIT_API_KEYS": f"{OTHER_KEY},{HASHED} catalog:write"},
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert done.returncode == 2
    assert done.stderr.strip().splitlines() == [ADMIN_NEEDS_AUTH]


def test_admin_is_off_by_default(serve: Any) -> None:
    server = serve("uvicorn", KIT_API_KEYS=KEY)
    assert httpx.get(server.url + "/admin/info", headers={"X-API-Key": KEY}).status_code == 404
