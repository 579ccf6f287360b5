"""JWKS on a real local HTTP server: fetched at startup, key rotation, the endpoint down at
startup, and a flood of unknown ``kid``s that must not flood the endpoint."""

from __future__ import annotations

import asyncio
import http.server
import json
import select
import socket
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


class TricklingJWKS:
    """Answers ``GET`` with a status line, then one byte of a header every ``interval``
    seconds (at most ``limit`` bytes), each read well within any per-read timeout: only an
    overall deadline ends it. ``connections`` counts the requests and
    ``closed_after`` holds, for each, how long until the client hung up."""

    def __init__(self, interval: float = 3.0, limit: int = 40) -> None:
        self.interval, self.limit = interval, limit
        self.connections = 0
        self.closed_after: list[float] = []
        self.stop = threading.Event()
        self.sock = socket.create_server(("127.0.0.1", 0))
        self.sock.settimeout(0.1)
        self.url = f"http://127.0.0.1:{self.sock.getsockname()[1]}/jwks"
        self.thread = threading.Thread(target=self._accept, daemon=True)

    def _accept(self) -> None:
        while not self.stop.is_set():
            try:
                conn, _ = self.sock.accept()
            except TimeoutError:
                continue
            self.connections += 1
            threading.Thread(target=self._trickle, args=(conn,), daemon=True).start()

    def _trickle(self, conn: socket.socket) -> None:
        started = time.monotonic()
        with conn:
            conn.settimeout(self.interval)
            try:
                conn.recv(65536)
                conn.sendall(b"HTTP/1.1 200 OK\r\ncontent-type: application/json\r\nx-slow: ")
                for _ in range(self.limit):
                    if self.stop.wait(self.interval):
                        return
                    conn.sendall(b"z")
                    readable, _, _ = select.select([conn], [], [], 0)
                    if readable and conn.recv(1, socket.MSG_PEEK) == b"":
                        break  # the client hung up
            except OSError:
                pass
            finally:
                self.closed_after.append(time.monotonic() - started)

    def __enter__(self) -> TricklingJWKS:
        self.thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.stop.set()
        self.thread.join(5)
        self.sock.close()


def test_a_trickling_endpoint_never_holds_a_request(jwks_server: JWKSServer) -> None:
    """Keys read once; then the endpoint trickles one byte a second, each within any per-read
    timeout. Unknown kids get their 401 after at most ``refresh_wait``, known kids keep
    verifying with the last good keys, one refresh is in flight for all of them, and it is cut
    at its overall deadline."""
    with TricklingJWKS(interval=1.0, limit=60) as trickling:
        jwks = JWKS(jwks_server.url, fetch_timeout=2.0, refresh_wait=0.5, min_interval=30)
        verifier = JWTVerifier(jwks=jwks)

        async def scenario() -> list[BaseException | Claims]:
            await jwks.start(5)
            jwks.url = trickling.url  # the issuer's endpoint goes slow
            forged = [token("other", f"unknown-{n}") for n in range(20)]
            results = await asyncio.wait_for(
                asyncio.gather(*(verifier.verify(t) for t in forged), return_exceptions=True),
                20,  # before: each waited for the whole trickle (60 bytes, 1 s apart)
            )
            known = await asyncio.wait_for(verifier.verify(token("main", "k1")), 20)
            results.append(known)
            for _ in range(200):  # wait for the refresh to end (its deadline is 2 s)
                if jwks._inflight is not None and jwks._inflight.done():
                    break
                await asyncio.sleep(0.05)
            return results

        try:
            results = asyncio.run(scenario())
        finally:
            jwks.close()
        *refused, known = results
        assert {str(result) for result in refused} == {"token key id is unknown"}
        assert isinstance(known, Claims)
        assert known.subject == "ann"
        assert trickling.connections == 1  # one refresh for the whole burst
        assert jwks.last_error is not None
        assert "TimeoutError" in jwks.last_error
        assert jwks_server.requests == 1
        for _ in range(100):  # the server notices the hang-up at its next byte
            if trickling.closed_after:
                break
            time.sleep(0.1)
        assert trickling.closed_after
        assert trickling.closed_after[0] < 30


def test_an_unknown_kid_is_refused_at_once_while_refreshes_are_rate_limited(
    jwks_server: JWKSServer,
) -> None:
    jwks = JWKS(jwks_server.url, min_interval=30, refresh_wait=30)
    verifier = JWTVerifier(jwks=jwks)

    async def scenario() -> None:
        await jwks.start(5)
        with pytest.raises(InvalidToken):
            await verifier.verify(token("other", "k2"))  # the one refresh allowed
        jwks_server.keys = []  # from now on any wait would be visible as a refresh
        for n in range(50):
            with pytest.raises(InvalidToken, match="unknown"):
                await asyncio.wait_for(verifier.verify(token("other", f"k{n + 3}")), 5)

    try:
        asyncio.run(scenario())
    finally:
        jwks.close()
    assert jwks_server.requests == 2


def test_a_failed_refresh_keeps_the_last_good_keys(jwks_server: JWKSServer) -> None:
    jwks = JWKS(jwks_server.url, min_interval=0, max_age=0)
    verifier = JWTVerifier(jwks=jwks)

    async def scenario() -> None:
        await jwks.start(5)
        jwks_server.keys = [{"kty": "nonsense"}]  # the next read has no usable key
        with pytest.raises(InvalidToken):
            await verifier.verify(token("other", "k2"))
        assert jwks.last_error is not None
        assert "no usable signing key" in jwks.last_error
        assert (await verifier.verify(token("main", "k1"))).subject == "ann"

    try:
        asyncio.run(scenario())
    finally:
        jwks.close()
    assert jwks_server.requests >= 2
