"""The auth layer under arbitrary input: whatever a client puts in a token's header and claims
(signed, unsigned or badly signed), in Authorization, in cookies or in an API key, every scheme
kit has answers 2xx/401/403, never a 5xx, and nothing is logged at error level.

Bounded and derandomised: a few hundred examples per test, well under a minute in CI.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
import logging
from collections.abc import Iterator
from typing import Annotated, Any

import pytest
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.asymmetric import padding
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from starlette.testclient import TestClient

from kit import App, Settings
from kit.security import (
    APIKeyCookie,
    APIKeyHeader,
    APIKeyQuery,
    HTTPBasic,
    HTTPBearer,
    JWTBearer,
    JWTVerifier,
    OAuth2PasswordBearer,
    Security,
)
from tests.kit.security.keys import SECRET, b64url, jwk, public_pem, rsa_key
from tests.kit.security.test_security_jwks import JWKSServer

KEY = "fuzz-admin-key-0123456789"
BOUNDED = settings(
    max_examples=150,
    deadline=None,
    database=None,
    derandomize=True,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.function_scoped_fixture],
)

settings_jwt = JWTBearer()
pem_jwt = JWTBearer(verifier=JWTVerifier(public_key=public_pem("main")), realm="pem")
oauth2 = OAuth2PasswordBearer(token_url="/token", scopes={"items:read": "read"})
raw_bearer = HTTPBearer()
basic = HTTPBasic(realm="fuzz")
header_key, query_key, cookie_key = APIKeyHeader(), APIKeyQuery("api_key"), APIKeyCookie("key")

ROUTES = {
    "/jwt": Security(settings_jwt),
    "/jwt-scoped": Security(settings_jwt, scopes=["items:write"]),
    "/pem": Security(pem_jwt, scopes=["items:write"]),
    "/oauth2": Security(oauth2, scopes=["items:read"]),
    "/raw": Security(raw_bearer),
    "/basic": Security(basic),
    "/header-key": Security(header_key),
    "/header-key-scoped": Security(header_key, scopes=["items:write"]),
    "/query-key": Security(query_key),
    "/cookie-key": Security(cookie_key),
}
JWT_PATHS = ["/jwt", "/jwt-scoped", "/pem", "/oauth2", "/raw", "/admin/info"]
KEY_PATHS = ["/header-key", "/header-key-scoped", "/admin/info"]


def guarded(security: Security) -> Any:
    async def handler(credentials: Any) -> str:
        return "ok"

    handler.__annotations__ = {"credentials": Annotated[Any, security], "return": str}
    return handler


def fuzz_app(jwks_url: str) -> App:
    app = App(
        settings=Settings.from_env(
            {},
            auth_jwt_secret=SECRET,
            auth_jwks_url=jwks_url,
            auth_jwt_algorithms=("HS256", "RS256"),
            api_keys=(f"{KEY} admin items:write",),
            admin=True,
            metrics=False,
            access_log=False,
        )
    )

    for path, security in ROUTES.items():
        app.add_api_route(path, guarded(security), methods=["GET"])
    return app


class ErrorLines(logging.Handler):
    def __init__(self) -> None:
        super().__init__(logging.ERROR)
        self.lines: list[str] = []

    def emit(self, record: logging.LogRecord) -> None:
        self.lines.append(f"{record.name}: {record.getMessage()}")


@pytest.fixture(scope="module")
def fuzzed() -> Iterator[tuple[TestClient, ErrorLines]]:
    errors = ErrorLines()
    root = logging.getLogger()
    root.addHandler(errors)
    try:
        with JWKSServer() as server:
            server.keys = [jwk("main", "k1")]
            with TestClient(fuzz_app(server.url), raise_server_exceptions=False) as client:
                yield client, errors
    finally:
        root.removeHandler(errors)


def answered(client: TestClient, errors: ErrorLines, path: str, **request: Any) -> int:
    errors.lines.clear()
    response = client.get(path, **request)
    assert response.status_code < 500, (path, request, response.status_code, response.text)
    assert not errors.lines, errors.lines
    return response.status_code


@pytest.mark.parametrize(
    "header",
    [
        {"alg": "HS256", "crit": ["exp"]},
        {"alg": "HS256", "crit": "b64"},
        {"alg": "RS256", "kid": 7},
        {"alg": "RS256", "kid": ["k1"]},
        {"alg": "HS256", "kid": None},
        {"alg": ["HS256"]},
    ],
)
def test_headers_pyjwt_refuses_are_a_401(
    fuzzed: tuple[TestClient, ErrorLines], header: dict[str, Any]
) -> None:
    client, errors = fuzzed
    signing_input = f"{segment(header)}.{segment({'exp': 2**33, 'scope': 'admin'})}".encode()
    signature = b64url(hmac.new(SECRET.encode(), signing_input, hashlib.sha256).digest())
    sent = {"authorization": f"Bearer {signing_input.decode()}.{signature}"}
    for path in JWT_PATHS:
        if path != "/raw":  # the raw bearer scheme hands any token over unverified
            assert answered(client, errors, path, headers=sent) == 401, (path, header)


JSON = st.recursive(
    st.none()
    | st.booleans()
    | st.integers(-(2**70), 2**70)
    | st.floats(allow_nan=False, allow_infinity=False)
    | st.text(max_size=12),
    lambda inner: (
        st.lists(inner, max_size=3) | st.dictionaries(st.text(max_size=6), inner, max_size=3)
    ),
    max_leaves=8,
)
HEADER_NAMES = st.sampled_from(["alg", "kid", "crit", "typ", "cty", "jku", "x5u", "b64", "zip"])
CLAIM_NAMES = st.sampled_from(["exp", "nbf", "iat", "aud", "iss", "sub", "scope", "scp", "jti"])


@st.composite
def token_headers(draw: st.DrawFn) -> Any:
    header = draw(st.dictionaries(HEADER_NAMES | st.text(max_size=4), JSON, max_size=5))
    if draw(st.booleans()):
        header["alg"] = draw(st.sampled_from(["HS256", "RS256", "none", "ES256", "HS512", "RS512"]))
    if draw(st.booleans()):
        header["kid"] = draw(st.sampled_from(["k1", "unknown", "", "x" * 300]) | JSON)
    if draw(st.booleans()):
        return draw(JSON)  # not even an object
    return header


@st.composite
def token_claims(draw: st.DrawFn) -> Any:
    claims = draw(st.dictionaries(CLAIM_NAMES | st.text(max_size=4), JSON, max_size=6))
    if draw(st.booleans()):
        claims["exp"] = draw(st.integers(0, 2**40) | JSON)
    if draw(st.booleans()):
        claims["scope"] = draw(st.sampled_from(["items:write items:read admin", ""]) | JSON)
    if draw(st.booleans()):
        return draw(JSON)
    return claims


def segment(value: Any) -> str:
    return b64url(json.dumps(value).encode())


@st.composite
def tokens(draw: st.DrawFn) -> str:
    header = draw(token_headers() | st.binary(max_size=40).map(b64url).map(lambda s: {"raw": s}))
    head = header["raw"] if isinstance(header, dict) and set(header) == {"raw"} else segment(header)
    body = segment(draw(token_claims()))
    signing_input = f"{head}.{body}".encode()
    how = draw(st.sampled_from(["hs", "rs", "none", "garbage"]))
    if how == "hs":
        signature = b64url(hmac.new(SECRET.encode(), signing_input, hashlib.sha256).digest())
    elif how == "rs":
        signed = rsa_key("main").sign(signing_input, padding.PKCS1v15(), hashes.SHA256())
        signature = b64url(signed)
    elif how == "none":
        signature = ""
    else:
        signature = draw(st.text(max_size=20))
    return f"{head}.{body}.{signature}"


@BOUNDED
@given(token=tokens())
def test_any_token_header_and_claims_get_a_4xx(
    fuzzed: tuple[TestClient, ErrorLines], token: str
) -> None:
    client, errors = fuzzed
    for path in JWT_PATHS:
        sent = [(b"authorization", f"Bearer {token}".encode())]  # UTF-8 in a header: allowed
        status = answered(client, errors, path, headers=sent)
        assert status in (200, 401, 403), (path, token, status)


@BOUNDED
@given(
    value=st.binary(max_size=200), scheme=st.sampled_from([b"Bearer ", b"Basic ", b"", b"bearer  "])
)
def test_any_bytes_in_authorization_get_a_4xx(
    fuzzed: tuple[TestClient, ErrorLines], value: bytes, scheme: bytes
) -> None:
    client, errors = fuzzed
    for path in [*JWT_PATHS, "/basic"]:
        answered(client, errors, path, headers=[(b"authorization", scheme + value)])


@BOUNDED
@given(value=st.binary(max_size=200), name=st.sampled_from([b"x-api-key", b"cookie"]))
def test_any_bytes_in_api_keys_and_cookies_get_a_4xx(
    fuzzed: tuple[TestClient, ErrorLines], value: bytes, name: bytes
) -> None:
    client, errors = fuzzed
    if name == b"cookie":
        value = b"key=" + value if value[:1] != b";" else value
    for path in [*KEY_PATHS, "/cookie-key"]:
        answered(client, errors, path, headers=[(name, value)])


@BOUNDED
@given(value=st.text(max_size=200))
def test_any_text_in_a_query_key_gets_a_4xx(
    fuzzed: tuple[TestClient, ErrorLines], value: str
) -> None:
    client, errors = fuzzed
    answered(client, errors, "/query-key", params={"api_key": value})


def test_the_fuzzed_app_accepts_good_credentials(fuzzed: tuple[TestClient, ErrorLines]) -> None:
    """So the fuzz cannot pass by refusing everything."""
    client, errors = fuzzed
    good = base64.b64encode(b"ann:pw").decode()
    assert answered(client, errors, "/basic", headers={"authorization": f"Basic {good}"}) == 200
    assert answered(client, errors, "/header-key-scoped", headers={"x-api-key": KEY}) == 200
    assert answered(client, errors, "/admin/info", headers={"x-api-key": KEY}) == 200
    assert answered(client, errors, "/query-key", params={"api_key": KEY}) == 200
    assert answered(client, errors, "/cookie-key", headers={"cookie": f"key={KEY}"}) == 200
    header = {"alg": "RS256", "kid": "k1"}
    claims = {"exp": 2**33, "scope": "items:write items:read admin"}
    signing_input = f"{segment(header)}.{segment(claims)}".encode()
    signed = rsa_key("main").sign(signing_input, padding.PKCS1v15(), hashes.SHA256())
    token = f"{signing_input.decode()}.{b64url(signed)}"
    for path in JWT_PATHS:
        assert answered(client, errors, path, headers={"authorization": f"Bearer {token}"}) == 200
