"""Forged tokens, each refused with 401 and nothing written: the table from the issue, against
an RS256 configuration with audience and issuer, and against an HS256 one."""

from __future__ import annotations

import time
from collections.abc import Callable, Iterator
from typing import Annotated, Any

import jwt
import msgspec
import pytest
from starlette.testclient import TestClient

from kit import App, Settings
from kit.security import Claims, JWTBearer, Security
from kit.testing import bearer, mint_token
from tests.kit.security.keys import SECRET, handmade, public_pem, rsa_key

AUDIENCE, ISSUER = "notes-api", "https://issuer.test"


class Note(msgspec.Struct):
    text: str


auth = JWTBearer()


def notes_app(settings: Settings, writes: list[str]) -> App:
    app = App(settings=settings)

    @app.post("/notes", status_code=201)
    async def create_note(
        note: Note, claims: Annotated[Claims, Security(auth, scopes=["notes:write"])]
    ) -> dict[str, Any]:
        writes.append(note.text)
        return {"by": claims.subject}

    return app


RS256 = Settings.from_env(
    {},
    auth_jwt_public_key=public_pem(),
    auth_audience=AUDIENCE,
    auth_issuer=ISSUER,
    metrics=False,
    access_log=False,
)
HS256 = Settings.from_env({}, auth_jwt_secret=SECRET, metrics=False, access_log=False)


def claims(**changes: Any) -> dict[str, Any]:
    now = int(time.time())
    base = {
        "sub": "ann",
        "scope": "notes:write",
        "aud": AUDIENCE,
        "iss": ISSUER,
        "iat": now,
        "exp": now + 300,
    }
    base.update(changes)
    return {key: value for key, value in base.items() if value is not None}


def rs256(payload: dict[str, Any], key: str = "main") -> str:
    return jwt.encode(payload, rsa_key(key), algorithm="RS256")


@pytest.fixture(scope="module")
def rs_client() -> Iterator[tuple[TestClient, list[str]]]:
    writes: list[str] = []
    with TestClient(notes_app(RS256, writes)) as client:
        yield client, writes


def truncated() -> str:
    return rs256(claims())[:-12]


FORGED: dict[str, Callable[[], str]] = {
    "alg none": lambda: handmade({"alg": "none", "typ": "JWT"}, claims(), None),
    "alg none, upper case": lambda: handmade({"alg": "NONE"}, claims(), None),
    "HS256 signed with the RS256 public key": lambda: handmade(
        {"alg": "HS256", "typ": "JWT"}, claims(), public_pem().encode()
    ),
    "wrong signature": lambda: rs256(claims(), key="other"),
    "signature swapped from another token": lambda: (
        rs256(claims()).rsplit(".", 1)[0] + "." + rs256(claims(sub="bob")).rsplit(".", 1)[1]
    ),
    "expired": lambda: rs256(claims(exp=int(time.time()) - 3600)),
    "not yet valid": lambda: rs256(claims(nbf=int(time.time()) + 3600)),
    "issued in the future": lambda: rs256(claims(iat=int(time.time()) + 3600)),
    "wrong aud": lambda: rs256(claims(aud="someone-else")),
    "no aud": lambda: rs256(claims(aud=None)),
    "wrong iss": lambda: rs256(claims(iss="https://evil.test")),
    "missing exp": lambda: rs256(claims(exp=None)),
    "truncated": truncated,
    "10 KB token": lambda: rs256(claims(padding="x" * 10_000)),
    "garbage": lambda: "not-a-token",
    "empty segments": lambda: "..",
}


@pytest.mark.parametrize("name", list(FORGED))
def test_forged_token_is_refused_and_nothing_is_written(
    name: str, rs_client: tuple[TestClient, list[str]]
) -> None:
    client, writes = rs_client
    response = client.post("/notes", json={"text": name}, headers=bearer(FORGED[name]()))
    assert response.status_code == 401, response.text
    detail = response.json()["detail"]
    assert set(response.json()) == {"detail"}
    # RFC 6750 3: the scheme, one space, the parameters (no comma after "Bearer")
    assert response.headers["www-authenticate"] in (
        f'Bearer error="invalid_token", error_description="{detail}"',
        "Bearer",
    )
    assert name not in writes


def test_token_in_the_query_string_is_not_read(rs_client: tuple[TestClient, list[str]]) -> None:
    client, writes = rs_client
    token = rs256(claims())
    for parameter in ("access_token", "token", "authorization"):
        response = client.post(f"/notes?{parameter}={token}", json={"text": "query"})
        assert response.status_code == 401
        assert response.headers["www-authenticate"] == "Bearer"
    assert writes == [] or "query" not in writes


def test_the_valid_token_is_accepted_so_the_table_can_fail(
    rs_client: tuple[TestClient, list[str]],
) -> None:
    client, writes = rs_client
    response = client.post("/notes", json={"text": "valid"}, headers=bearer(rs256(claims())))
    assert response.status_code == 201, response.text
    assert response.json() == {"by": "ann"}
    assert writes[-1] == "valid"


def test_valid_token_without_the_scope_is_403(rs_client: tuple[TestClient, list[str]]) -> None:
    client, writes = rs_client
    token = rs256(claims(scope="notes:read"))
    response = client.post("/notes", json={"text": "scope"}, headers=bearer(token))
    assert response.status_code == 403
    assert response.headers["www-authenticate"] == (
        'Bearer error="insufficient_scope", error_description="missing scope: notes:write", '
        'scope="notes:write"'
    )
    assert "scope" not in writes


def test_scp_list_claim_grants_scopes(rs_client: tuple[TestClient, list[str]]) -> None:
    client, _ = rs_client
    token = rs256(claims(scope=None, scp=["notes:write"]))
    assert client.post("/notes", json={"text": "scp"}, headers=bearer(token)).status_code == 201


HS_FORGED: dict[str, Callable[[], str]] = {
    "another secret": lambda: mint_token(HS256, scopes=["notes:write"], secret="t" * 64),
    "HS512 with the right secret (not allowed)": lambda: mint_token(
        HS256, scopes=["notes:write"], algorithm="HS512"
    ),
    "RS256 (no public key configured)": lambda: rs256(claims(aud=None, iss=None)),
    "missing exp": lambda: mint_token(HS256, scopes=["notes:write"], expires_in=None),
    "expired": lambda: mint_token(HS256, scopes=["notes:write"], expires_in=-3600),
    "alg none": lambda: handmade({"alg": "none"}, claims(aud=None, iss=None), None),
}


def test_hs256_configuration_refuses_forgeries_and_accepts_its_own() -> None:
    writes: list[str] = []
    with TestClient(notes_app(HS256, writes)) as client:
        for name, forge in HS_FORGED.items():
            response = client.post("/notes", json={"text": name}, headers=bearer(forge()))
            assert response.status_code == 401, (name, response.text)
        assert writes == []
        token = mint_token(HS256, scopes=["notes:write"])
        response = client.post("/notes", json={"text": "ok"}, headers=bearer(token))
        assert response.status_code == 201, response.text
        assert writes == ["ok"]
