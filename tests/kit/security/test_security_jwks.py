"""JWKS on a real local HTTP server: fetched at startup, key rotation, the endpoint down at
startup, and a flood of unknown ``kid``s that must not flood the endpoint."""

from __future__ import annotations

import asyncio
import http.server
import json
import threading
import time
from collections.abc import Iterator
from typing import Annotated, Any

import jwt
import pytest
from starlette.testclient import TestClient

from kit import App, Settings
from kit.security import JWKS, Claims, JWKSUnavailable, JWTBearer, JWTVerifier, Security
from kit.security.jwt import InvalidToken
from kit.testing import bearer, free_port
from tests.kit.security.keys import jwk, rsa_key


class JWKSServer:
    """``GET /jwks`` answers the current ``keys``; ``requests`` counts what it served."""

    def __init__(self) -> None:
        self.keys: list[dict[str, Any]] = []
        self.requests = 0
        owner = self

        class Handler(http.server.BaseHTTPRequestHandler):
            def do_GET(self) -> None:
                owner.requests += 1
                body = json.dumps({"keys": owner.keys}).encode()
                self.send_response(200)
                self.send_header("content-type", "application/json")
                self.send_header("content-length", str(len(body)))
                self.end_headers()
                self.wfile.write(body)

            def log_message(self, *args: Any) -> None:
                pass

        self.server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}/jwks"
        self.thread = threading.Thread(target=self.server.serve_forever, args=(0.05,), daemon=True)

    def __enter__(self) -> JWKSServer:
        self.thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.server.shutdown()
        self.server.server_close()


@pytest.fixture
def jwks_server() -> Iterator[JWKSServer]:
    with JWKSServer() as server:
        server.keys = [jwk("main", "k1")]
        yield server


def token(key: str, kid: str, **claims: Any) -> str:
    payload = {"sub": "ann", "exp": int(time.time()) + 300, "scope": "read", **claims}
    return jwt.encode(payload, rsa_key(key), algorithm="RS256", headers={"kid": kid})


auth = JWTBearer()


def jwks_app(url: str, timeout: float = 10.0) -> App:
    settings = Settings.from_env(
        {}, auth_jwks_url=url, auth_jwks_timeout=timeout, metrics=False, access_log=False
    )
    app = App(settings=settings)

    @app.get("/me")
    async def me(claims: Annotated[Claims, Security(auth, scopes=["read"])]) -> dict[str, Any]:
        return {"sub": claims.subject}

    return app


def test_rotation_new_kid_is_accepted_after_one_refresh(jwks_server: JWKSServer) -> None:
    with TestClient(jwks_app(jwks_server.url)) as client:
        assert jwks_server.requests == 1  # fetched at startup
        assert client.get("/me", headers=bearer(token("main", "k1"))).status_code == 200
        assert jwks_server.requests == 1  # known kid: no fetch

        jwks_server.keys = [jwk("main", "k1"), jwk("other", "k2")]  # the issuer rotates
        response = client.get("/me", headers=bearer(token("other", "k2")))
        assert response.status_code == 200, response.text
        assert jwks_server.requests == 2  # exactly one refresh
        assert client.get("/me", headers=bearer(token("other", "k2", sub="x"))).status_code == 200
        assert jwks_server.requests == 2


def test_a_kid_signed_by_the_wrong_key_is_refused(jwks_server: JWKSServer) -> None:
    with TestClient(jwks_app(jwks_server.url)) as client:
        response = client.get("/me", headers=bearer(token("other", "k1")))
        assert response.status_code == 401
        assert "signature" in response.json()["detail"]


def test_jwks_down_at_startup_is_a_clear_error_after_retrying(
    capsys: pytest.CaptureFixture[str],
) -> None:
    url = f"http://127.0.0.1:{free_port()}/jwks"  # nothing listens there
    started = time.monotonic()
    with pytest.raises(JWKSUnavailable) as failure, TestClient(jwks_app(url, timeout=0.5)):
        pass
    assert time.monotonic() - started >= 0.5  # it retried for the whole budget
    message = str(failure.value)
    assert message.startswith(f"cannot read the JWKS at {url}: ")
    assert "KIT_AUTH_JWKS_TIMEOUT" in message
    assert "\n" not in message
    assert f"kit: {message}" in capsys.readouterr().err


def test_a_flood_of_unknown_kids_costs_the_endpoint_one_request(jwks_server: JWKSServer) -> None:
    jwks = JWKS(jwks_server.url, min_interval=30)
    verifier = JWTVerifier(jwks=jwks)

    async def flood() -> list[BaseException | Claims]:
        await jwks.start(5)
        forged = [token("other", f"unknown-{n}") for n in range(200)]
        return await asyncio.gather(*(verifier.verify(t) for t in forged), return_exceptions=True)

    try:
        results = asyncio.run(flood())
    finally:
        jwks.close()
    assert all(isinstance(result, InvalidToken) for result in results)
    assert {str(result) for result in results} == {"token key id is unknown"}
    assert jwks_server.requests == 2  # startup, then one refresh for the whole flood
    assert jwks.fetches == 2


def test_refresh_is_rate_limited_but_allowed_again_later(jwks_server: JWKSServer) -> None:
    jwks = JWKS(jwks_server.url, min_interval=0.3)
    verifier = JWTVerifier(jwks=jwks)

    async def scenario() -> None:
        await jwks.start(5)
        for _ in range(5):
            with pytest.raises(InvalidToken):
                await verifier.verify(token("other", "k2"))
        assert jwks_server.requests == 2
        jwks_server.keys = [jwk("main", "k1"), jwk("other", "k2")]
        with pytest.raises(InvalidToken):  # still inside the interval: not fetched
            await verifier.verify(token("other", "k2", sub="b"))
        await asyncio.sleep(0.35)
        claims = await verifier.verify(token("other", "k2", sub="c"))
        assert claims.subject == "c"
        assert jwks_server.requests == 3

    try:
        asyncio.run(scenario())
    finally:
        jwks.close()


def test_jwks_keys_that_declare_another_alg_are_not_used_for_it(jwks_server: JWKSServer) -> None:
    jwks_server.keys = [{**jwk("main", "k1"), "alg": "RS512"}]
    jwks = JWKS(jwks_server.url)
    verifier = JWTVerifier(jwks=jwks, algorithms=["RS256", "RS512"])

    async def scenario() -> None:
        await jwks.start(5)
        with pytest.raises(InvalidToken, match="does not match its key"):
            await verifier.verify(token("main", "k1"))

    try:
        asyncio.run(scenario())
    finally:
        jwks.close()
