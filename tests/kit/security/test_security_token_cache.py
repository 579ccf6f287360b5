"""The verified-token cache behind ``JWTBearer``: a header seen verified is answered from it,
but never past the token's ``exp`` nor for a scope the token lacks, and a subclass that reads
or checks credentials its own way is never bypassed."""

from __future__ import annotations

import datetime
import time
from typing import Annotated, Any

import jwt
import pytest
from starlette.testclient import TestClient

from kit import App, Settings
from kit.security import Claims, JWTBearer, JWTVerifier, Security
from kit.testing import bearer, mint_token
from tests.kit.security.keys import SECRET

SETTINGS = Settings.from_env({}, auth_jwt_secret=SECRET, metrics=False, access_log=False)
reader = JWTBearer()


class Audited(JWTBearer):
    """A subclass that checks something more than the token: its own code must run."""

    seen: list[str] = []

    async def authenticate(self, request: Any) -> Claims:
        claims: Claims = await super().authenticate(request)
        self.seen.append(str(claims.subject))
        return claims


audited = Audited()


def cache_app() -> App:
    app = App(settings=SETTINGS)

    @app.get("/read")
    async def read(claims: Annotated[Claims, Security(reader, scopes=["read"])]) -> str:
        return str(claims.subject)

    @app.get("/write")
    async def write(claims: Annotated[Claims, Security(reader, scopes=["write"])]) -> str:
        return str(claims.subject)

    @app.get("/audited")
    async def audited_route(claims: Annotated[Claims, Security(audited)]) -> str:
        return str(claims.subject)

    return app


@pytest.fixture
def client() -> Any:
    with TestClient(cache_app()) as client:
        yield client


def test_a_cached_token_is_refused_once_it_expires(
    client: TestClient, monkeypatch: pytest.MonkeyPatch
) -> None:
    token = mint_token(SETTINGS, scopes=["read"], expires_in=60)
    assert client.get("/read", headers=bearer(token)).json() == "test-user"
    assert client.get("/read", headers=bearer(token)).status_code == 200  # from the cache
    later = time.time() + 120  # past exp, and past exp's leeway: for kit and for PyJWT
    monkeypatch.setattr(time, "time", lambda: later)

    class Later(datetime.datetime):
        @classmethod
        def now(cls, tz: datetime.tzinfo | None = None) -> Any:
            return datetime.datetime.fromtimestamp(later, tz)

    monkeypatch.setattr(jwt.api_jwt, "datetime", Later)
    answer = client.get("/read", headers=bearer(token))
    assert answer.status_code == 401
    assert answer.json() == {"detail": "token has expired"}


def test_a_cached_token_lacking_the_scope_is_still_403(client: TestClient) -> None:
    headers = bearer(mint_token(SETTINGS, scopes=["read"]))
    assert client.get("/read", headers=headers).status_code == 200
    for _ in range(2):  # cached by then: the scope is checked on the cached claims too
        answer = client.get("/write", headers=headers)
        assert answer.status_code == 403
        assert "insufficient_scope" in answer.headers["www-authenticate"]


def test_the_same_token_sent_differently_is_checked_as_sent(client: TestClient) -> None:
    token = mint_token(SETTINGS, scopes=["read"])
    assert client.get("/read", headers=bearer(token)).status_code == 200
    # the cache is keyed by the header's bytes: other spellings are parsed, not matched
    assert client.get("/read", headers={"authorization": f"bearer   {token} "}).status_code == 200
    spaced = client.get("/read", headers={"authorization": f"Bearer {token} x"})
    assert spaced.status_code == 401
    assert client.get("/read", headers={"authorization": f"Basic {token}"}).status_code == 401


def test_a_forged_signature_is_refused_after_the_real_token_was_cached(
    client: TestClient,
) -> None:
    token = mint_token(SETTINGS, scopes=["read"])
    assert client.get("/read", headers=bearer(token)).status_code == 200
    head, payload, signature = token.split(".")
    forged = f"{head}.{payload}.{signature[:-4]}AAAA"
    answer = client.get("/read", headers=bearer(forged))
    assert answer.status_code == 401
    assert answer.json() == {"detail": "token signature does not verify"}


def test_a_subclass_that_authenticates_its_own_way_runs_every_time(client: TestClient) -> None:
    Audited.seen.clear()
    headers = bearer(mint_token(SETTINGS, subject="ada"))
    for _ in range(3):
        assert client.get("/audited", headers=headers).json() == "ada"
    assert Audited.seen == ["ada"] * 3


small = JWTVerifier(secret=SECRET, cache_size=4)
bounded = JWTBearer(verifier=small)


def test_the_cache_stays_within_its_size() -> None:
    app = App(settings=SETTINGS)

    @app.get("/bounded")
    async def bounded_route(claims: Annotated[Claims, Security(bounded)]) -> str:
        return str(claims.subject)

    with TestClient(app) as client:
        for n in range(10):
            headers = bearer(mint_token(SETTINGS, subject=f"user-{n}"))
            assert client.get("/bounded", headers=headers).json() == f"user-{n}"
            assert client.get("/bounded", headers=headers).json() == f"user-{n}"
    assert len(small.cache) == 4


class CookieJWT(JWTBearer):
    """Reads the JWT from a cookie (a browser session), not from Authorization."""

    def token(self, request: Any) -> str:
        return str(request.cookies.get("session", ""))


cookie = CookieJWT()
padded = JWTBearer(verifier=JWTVerifier(secret=SECRET, cache_size=8))


def test_a_token_read_elsewhere_is_never_cached_under_the_authorization_header() -> None:
    app = App(settings=SETTINGS)

    @app.get("/me")
    async def me(claims: Annotated[Claims, Security(cookie)]) -> str:
        return str(claims.subject)

    # a proxy or client library that sends the same Authorization value on every request
    shared = {"authorization": "Basic cHJveHk6cHJveHk="}
    with TestClient(app) as client:
        alice = mint_token(SETTINGS, subject="alice")
        assert client.get("/me", headers={**shared, "cookie": f"session={alice}"}).json() == "alice"
        client.cookies.clear()
        garbage = client.get("/me", headers={**shared, "cookie": "session=garbage"})
        assert garbage.status_code == 401
        client.cookies.clear()
        bob = mint_token(SETTINGS, subject="bob")
        assert client.get("/me", headers={**shared, "cookie": f"session={bob}"}).json() == "bob"


def test_other_spellings_of_one_token_share_one_small_entry() -> None:
    app = App(settings=SETTINGS)

    @app.get("/p")
    async def p(claims: Annotated[Claims, Security(padded)]) -> str:
        return str(claims.subject)

    token = mint_token(SETTINGS, subject="eve")
    with TestClient(app) as client:
        for n in range(8):
            value = ("Bearer", "bearer", "BEARER")[n % 3] + " " * (1 + 20_000 * n) + token
            assert client.get("/p", headers={"authorization": value}).status_code == 200
        assert client.get("/p", headers={"authorization": f"Bearer {token}"}).status_code == 200
    # the padded spellings under the token, the exact one under its header: two entries
    assert padded.verifier is not None
    assert sorted(padded.verifier.cache, key=len) == [token, f"Bearer {token}".encode()]
