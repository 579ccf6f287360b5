"""The schemes as a client meets them: 401 with the right challenge, 403 for a missing scope,
authentication before the body, API keys, Basic, and the startup and settings errors."""

from __future__ import annotations

import asyncio
import base64
from typing import Annotated, Any

import msgspec
import pytest
from starlette.testclient import TestClient

from kit import App, Depends, Router, Settings
from kit.security import (
    APIKeyCookie,
    APIKeyHeader,
    APIKeyQuery,
    APIKeys,
    Claims,
    HTTPBasic,
    HTTPBasicCredentials,
    HTTPBearer,
    JWTBearer,
    Security,
    SecurityStartupError,
    hash_key,
)
from kit.settings import SettingsError
from kit.testing import bearer, mint_token
from tests.kit.security.keys import SECRET

KEY = "k" * 24
OTHER_KEY = "o" * 24
BASE = {"metrics": False, "access_log": False}
SETTINGS = Settings.from_env({}, auth_jwt_secret=SECRET, api_keys=(KEY,), **BASE)

jwt_auth = JWTBearer()
header_key, query_key, cookie_key = APIKeyHeader(), APIKeyQuery("api_key"), APIKeyCookie("key")
basic = HTTPBasic(realm="kit")
raw_bearer = HTTPBearer()
Writer = Annotated[Claims, Security(jwt_auth, scopes=["items:write"])]


class Item(msgspec.Struct):
    name: str
    size: int


def items_app(settings: Settings = SETTINGS, max_body_size: int | None = None) -> App:
    app = App(settings=settings, max_body_size=max_body_size)

    @app.post("/items", status_code=201)
    async def create_item(item: Item, claims: Writer) -> dict[str, Any]:
        return {"name": item.name, "by": claims.subject}

    @app.get("/by-header")
    async def by_header(key: Annotated[str, Security(header_key)]) -> str:
        return key

    @app.get("/by-query")
    async def by_query(key: Annotated[str, Security(query_key)]) -> str:
        return key

    @app.get("/by-cookie")
    async def by_cookie(key: Annotated[str, Security(cookie_key)]) -> str:
        return key

    @app.get("/basic")
    async def by_basic(credentials: Annotated[HTTPBasicCredentials, Security(basic)]) -> str:
        return f"{credentials.username}/{credentials.password}"

    @app.get("/raw")
    async def raw(token: Annotated[str, Security(raw_bearer)]) -> str:
        return token

    return app


@pytest.fixture(scope="module")
def client() -> Any:
    with TestClient(items_app()) as client:
        yield client


def write_token(*scopes: str) -> dict[str, str]:
    return bearer(mint_token(SETTINGS, scopes=scopes or ["items:write"]))


def test_no_credentials_is_401_with_a_bearer_challenge(client: TestClient) -> None:
    response = client.post("/items", json={"name": "a", "size": 1})
    assert response.status_code == 401
    assert response.headers["www-authenticate"] == "Bearer"
    assert response.json() == {"detail": "Not authenticated"}


@pytest.mark.parametrize(
    "authorization", ["Bearer", "Bearer ", "Bearer a b", "Basic abc", "Token x", "bearer"]
)
def test_malformed_authorization_is_401(client: TestClient, authorization: str) -> None:
    response = client.post("/items", json={"name": "a"}, headers={"authorization": authorization})
    assert response.status_code == 401
    assert response.headers["www-authenticate"].startswith("Bearer")


def test_401_comes_before_422(client: TestClient) -> None:
    response = client.post("/items", json={"name": 5})
    assert response.status_code == 401
    assert client.post("/items", json={"name": 5}, headers=write_token()).status_code == 422


def test_403_for_a_missing_scope_comes_before_422_too(client: TestClient) -> None:
    response = client.post("/items", json={"size": "x"}, headers=write_token("items:read"))
    assert response.status_code == 403
    assert 'error="insufficient_scope"' in response.headers["www-authenticate"]


def test_scheme_is_case_insensitive_and_the_token_accepted(client: TestClient) -> None:
    token = mint_token(SETTINGS, scopes=["items:write"], subject="ann")
    response = client.post(
        "/items", json={"name": "a", "size": 1}, headers={"authorization": f"bearer {token}"}
    )
    assert response.status_code == 201
    assert response.json() == {"name": "a", "by": "ann"}


class Received:
    def __init__(self, chunks: list[bytes]) -> None:
        self.chunks = chunks
        self.reads = 0

    async def __call__(self) -> dict[str, Any]:
        self.reads += 1
        chunk = self.chunks.pop(0) if self.chunks else b""
        return {"type": "http.request", "body": chunk, "more_body": bool(self.chunks)}


def call(app: App, headers: list[tuple[bytes, bytes]], receive: Received) -> tuple[int, bytes]:
    """One request straight through the ASGI app, to see whether the body was read."""
    sent: list[dict[str, Any]] = []

    async def send(message: dict[str, Any]) -> None:
        sent.append(message)

    async def run() -> None:
        scope = {"type": "lifespan", "state": {}}
        lifespan_messages = [{"type": "lifespan.startup"}]
        started = asyncio.Event()

        async def lifespan_receive() -> dict[str, Any]:
            if lifespan_messages:
                return lifespan_messages.pop()
            await asyncio.Event().wait()
            return {}

        async def lifespan_send(message: dict[str, Any]) -> None:
            if message["type"] == "lifespan.startup.complete":
                started.set()

        task = asyncio.create_task(app(scope, lifespan_receive, lifespan_send))
        await started.wait()
        http = {
            "type": "http",
            "asgi": {"version": "3.0"},
            "http_version": "1.1",
            "method": "POST",
            "scheme": "http",
            "path": "/items",
            "raw_path": b"/items",
            "query_string": b"",
            "root_path": "",
            "headers": headers,
            "client": ("127.0.0.1", 1),
            "server": ("testserver", 80),
            "state": {},
        }
        await app(http, receive, send)
        task.cancel()

    asyncio.run(run())
    return sent[0]["status"], sent[1]["body"]


@pytest.mark.parametrize("declared", [True, False])
def test_the_body_is_never_read_without_credentials(declared: bool) -> None:
    app = items_app(max_body_size=1000)
    big = [b"x" * 800, b"x" * 800, b"x" * 800]
    headers = [(b"host", b"testserver"), (b"content-type", b"application/json")]
    if declared:
        headers.append((b"content-length", b"2400"))
    receive = Received(big)
    status, body = call(app, headers, receive)
    assert (status, receive.reads) == (401, 0), body
    token = write_token()["Authorization"].encode()
    receive = Received([b"x" * 800, b"x" * 800, b"x" * 800])
    status, _ = call(app, [*headers, (b"authorization", token)], receive)
    assert status == 413  # with credentials, the limit applies as before
    assert receive.reads == (0 if declared else 2)


def test_api_key_in_header_query_and_cookie(client: TestClient) -> None:
    assert client.get("/by-header", headers={"x-api-key": KEY}).json() == KEY
    assert client.get("/by-query", params={"api_key": KEY}).json() == KEY
    client.cookies.set("key", KEY)
    assert client.get("/by-cookie").json() == KEY
    client.cookies.clear()
    for path, challenge in [
        ("/by-header", 'APIKey header="X-API-Key"'),
        ("/by-query", 'APIKey query="api_key"'),
        ("/by-cookie", 'APIKey cookie="key"'),
    ]:
        missing = client.get(path)
        assert missing.status_code == 401
        assert missing.headers["www-authenticate"] == challenge
    wrong = client.get("/by-header", headers={"x-api-key": OTHER_KEY})
    assert (wrong.status_code, wrong.json()) == (401, {"detail": "Invalid API key"})
    # a key sent where the scheme does not look is no key
    assert client.get("/by-header", params={"x-api-key": KEY}).status_code == 401
    huge = client.get("/by-header", headers={"x-api-key": KEY + "x" * 5000})
    assert huge.status_code == 401


def test_hashed_api_keys_match_and_plain_ones_never_reach_the_environment() -> None:
    keys = APIKeys([hash_key(KEY), OTHER_KEY])
    assert keys.match(KEY)
    assert keys.match(OTHER_KEY)
    assert not keys.match(KEY[:-1])
    assert not keys.match("")
    assert not keys.match(hash_key(KEY))
    settings = Settings.from_env({"KIT_API_KEYS": f" {hash_key(KEY)} , {OTHER_KEY}"})
    assert settings.api_keys == (hash_key(KEY), OTHER_KEY)
    assert KEY not in repr(settings)
    assert OTHER_KEY not in repr(settings)
    with TestClient(items_app(settings.with_(auth_jwt_secret=SECRET, **BASE))) as client:
        assert client.get("/by-header", headers={"x-api-key": KEY}).status_code == 200
        assert client.get("/by-header", headers={"x-api-key": "n" * 24}).status_code == 401


def test_basic_credentials(client: TestClient) -> None:
    assert client.get("/basic", auth=("ann", "pw:with:colons")).json() == "ann/pw:with:colons"
    for value in ["Basic !!!", "Basic " + "YW5u", "Basic"]:  # not base64, no colon, empty
        response = client.get("/basic", headers={"authorization": value})
        assert response.status_code == 401
        assert response.headers["www-authenticate"] == 'Basic realm="kit", charset="UTF-8"'


def test_raw_bearer_gives_the_token(client: TestClient) -> None:
    assert client.get("/raw", headers={"authorization": "Bearer abc.def"}).json() == "abc.def"


calls: list[str] = []


class Counting(HTTPBearer):
    async def authenticate(self, request: Any) -> str:
        calls.append("auth")
        token: str = await super().authenticate(request)
        return token


counting = Counting()


def test_router_dependencies_protect_every_route_once() -> None:
    router = Router(prefix="/admin", dependencies=[Security(counting)])

    @router.get("/stats")
    async def stats(token: Annotated[str, Security(counting)]) -> str:
        return token

    app = App(settings=SETTINGS)
    app.include_router(router)
    with TestClient(app) as client:
        assert client.get("/admin/stats").status_code == 401
        calls.clear()
        assert client.get("/admin/stats", headers={"authorization": "Bearer t"}).json() == "t"
        assert calls == ["auth"]


def test_routes_needing_keys_the_app_lacks_fail_at_startup(
    capsys: pytest.CaptureFixture[str],
) -> None:
    with (
        pytest.raises(SecurityStartupError) as failure,
        TestClient(items_app(Settings.from_env({}, api_keys=(KEY,), **BASE))),
    ):
        pass
    assert str(failure.value) == (
        "POST /items needs a bearer JWT: set KIT_AUTH_JWT_SECRET, KIT_AUTH_JWT_PUBLIC_KEY "
        "or KIT_AUTH_JWKS_URL"
    )
    with (
        pytest.raises(SecurityStartupError, match="GET /by-header needs an API key"),
        TestClient(items_app(Settings.from_env({}, auth_jwt_secret=SECRET, **BASE))),
    ):
        pass
    with (
        pytest.raises(SecurityStartupError, match="at least 32 bytes"),
        TestClient(items_app(SETTINGS.with_(auth_jwt_secret="short"))),
    ):
        pass
    with (
        pytest.raises(SecurityStartupError, match="RS256 needs KIT_AUTH_JWT_PUBLIC_KEY"),
        TestClient(items_app(SETTINGS.with_(auth_jwt_algorithms=("HS256", "RS256")))),
    ):
        pass
    assert "kit: POST /items needs a bearer JWT" in capsys.readouterr().err


@pytest.mark.parametrize(
    ("name", "value", "message"),
    [
        ("KIT_AUTH_JWT_ALGORITHMS", "none", "'none' is not allowed"),
        ("KIT_AUTH_JWT_ALGORITHMS", "HS256,foo", "'foo' is not allowed"),
        ("KIT_AUTH_JWKS_URL", "ftp://x/jwks", "is not an http:// or https:// URL"),
        ("KIT_API_KEYS", "sha256:abc", "64 hex digits"),
        ("KIT_API_KEYS", "short", "at least 16 characters"),
        ("KIT_AUTH_JWT_LEEWAY", "-1", "must be >= 0"),
    ],
)
def test_bad_settings_are_one_line(name: str, value: str, message: str) -> None:
    with pytest.raises(SettingsError, match=message) as failure:
        Settings.from_env({name: value})
    assert "\n" not in str(failure.value)
    if name == "KIT_API_KEYS":
        assert value not in str(failure.value)  # never echo a key


def test_algorithms_setting_is_normalised() -> None:
    settings = Settings.from_env({"KIT_AUTH_JWT_ALGORITHMS": "hs256, rs256"})
    assert settings.auth_jwt_algorithms == ("HS256", "RS256")


def test_security_marker_refuses_what_cannot_work() -> None:
    with pytest.raises(TypeError, match="carries no scopes"):
        Security(basic, scopes=["x"])
    with pytest.raises(TypeError, match="list of strings"):
        Security(jwt_auth, scopes="items:write")
    with pytest.raises(TypeError, match="needs a security scheme"):
        Security(lambda: None)  # type: ignore[arg-type]


def test_claims_are_read_only_because_the_cache_shares_them() -> None:
    claims = Claims({"sub": "ann", "scp": ["a", "b"]})
    assert claims.scopes == {"a", "b"}
    with pytest.raises(TypeError, match="read-only"):
        claims["sub"] = "bob"
    with pytest.raises(TypeError, match="read-only"):
        claims.update(sub="bob")
    assert dict(claims) == {"sub": "ann", "scp": ["a", "b"]}


async def current_user(claims: Writer) -> str:
    return claims.subject or ""


def test_security_deep_in_a_dependency_still_runs_before_the_body() -> None:
    app = App(settings=SETTINGS)

    @app.post("/profile")
    async def update_profile(item: Item, user: Annotated[str, Depends(current_user)]) -> str:
        return f"{user}:{item.name}"

    route = next(r for r in app.routes if getattr(r, "path", "") == "/profile")
    assert len(route.plan.guards) == 1  # type: ignore[attr-defined]
    with TestClient(app) as client:
        assert client.post("/profile", json={"name": 1}).status_code == 401
        token = bearer(mint_token(SETTINGS, scopes=["items:write"], subject="ann"))
        assert client.post("/profile", json={"name": 1}, headers=token).status_code == 422
        ok = client.post("/profile", json={"name": "a", "size": 1}, headers=token)
        assert ok.json() == "ann:a"


def test_basic_with_bytes_that_are_not_base64_text_is_a_401(client: TestClient) -> None:
    for value in [
        b"Basic \xc3\xa9\xc3\xa9",  # non-ASCII: b64decode raises ValueError, not binascii.Error
        b"Basic \xff\xfe",
        b"Basic " + base64.b64encode(b"\xff\xfe:pw"),  # base64 of bytes that are not UTF-8
        b"Basic YW5u=====",
    ]:
        response = client.get("/basic", headers=[(b"authorization", value)])
        assert response.status_code == 401, (value, response.text)
        assert response.json() == {"detail": "Invalid basic credentials"}


realm_auth = JWTBearer(realm="notes")


def test_bearer_challenges_have_the_rfc_6750_form() -> None:
    app = App(settings=SETTINGS)

    @app.get("/plain")
    async def plain(claims: Annotated[Claims, Security(jwt_auth, scopes=["items:write"])]) -> str:
        return "ok"

    @app.get("/realm")
    async def realm(claims: Annotated[Claims, Security(realm_auth, scopes=["items:write"])]) -> str:
        return "ok"

    reader = bearer(mint_token(secret=SECRET, scopes=["items:read"]))
    with TestClient(app) as test:
        for path, prefix in [("/plain", "Bearer "), ("/realm", 'Bearer realm="notes", ')]:
            assert test.get(path).headers["www-authenticate"] == prefix.strip(", ")
            bad = test.get(path, headers={"authorization": "Bearer not-a-jwt"})
            assert bad.headers["www-authenticate"] == (
                prefix + 'error="invalid_token", error_description="token is malformed"'
            )
            forbidden = test.get(path, headers=reader)
            assert forbidden.status_code == 403
            assert forbidden.headers["www-authenticate"] == (
                prefix + 'error="insufficient_scope", '
                'error_description="missing scope: items:write", scope="items:write"'
            )


scoped_key = APIKeyHeader()


def scoped_keys_app(keys: str) -> App:
    app = App(settings=Settings.from_env({"KIT_API_KEYS": keys}, **BASE))

    @app.post("/catalog", status_code=201)
    async def write(key: Annotated[str, Security(scoped_key, scopes=["catalog:write"])]) -> str:
        return "written"

    @app.get("/catalog")
    async def read(key: Annotated[str, Security(scoped_key)]) -> str:
        return key

    return app


def test_api_keys_carry_their_own_scopes() -> None:
    writer = "w" * 24
    entries = f"{KEY}, {hash_key(writer)} catalog:write admin, {OTHER_KEY} catalog:read"
    settings = Settings.from_env({"KIT_API_KEYS": entries})
    assert settings.api_keys == (
        KEY,
        f"{hash_key(writer)} catalog:write admin",
        f"{OTHER_KEY} catalog:read",
    )
    keys = APIKeys(settings.api_keys)
    assert keys.scopes_of(KEY) == frozenset()
    assert keys.scopes_of(writer) == {"catalog:write", "admin"}
    assert keys.scopes_of(OTHER_KEY) == {"catalog:read"}
    assert keys.scopes_of("catalog:write") is None
    with TestClient(scoped_keys_app(entries)) as test:
        for key in (KEY, OTHER_KEY):  # a plain key, and one with another scope: known, refused
            denied = test.post("/catalog", headers={"x-api-key": key})
            assert (denied.status_code, denied.json()) == (
                403,
                {"detail": "missing scope: catalog:write"},
            )
            assert test.get("/catalog", headers={"x-api-key": key}).json() == key
        assert test.post("/catalog", headers={"x-api-key": writer}).status_code == 201
        unknown = test.post("/catalog", headers={"x-api-key": "u" * 24})
        assert unknown.status_code == 401


def test_a_scoped_entry_is_checked_like_a_plain_one() -> None:
    for raw, message in [
        ("short admin", "at least 16 characters"),
        ("sha256:abc admin", "64 hex digits"),
    ]:
        with pytest.raises(SettingsError, match=message):
            Settings.from_env({"KIT_API_KEYS": raw})
