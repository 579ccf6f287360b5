"""What the OpenAPI document says about security: schemes, per-operation requirements with
scopes, and 401/403 in every protected operation."""

from __future__ import annotations

from typing import Annotated, Any

from openapi_spec_validator import validate

from kit import App, Depends, Router, Settings
from kit.openapi import build_document
from kit.security import (
    APIKeyHeader,
    Claims,
    HTTPBasic,
    JWTBearer,
    OAuth2ClientCredentials,
    OAuth2PasswordBearer,
    Security,
)

jwt_auth = JWTBearer(description="a JWT from the issuer")
api_key = APIKeyHeader(scheme_name="ApiKey")
basic = HTTPBasic()
password = OAuth2PasswordBearer("/token", scopes={"read": "read things", "write": "write"})
machines = OAuth2ClientCredentials("https://issuer.test/token", scopes={"sync": "sync"})


async def current_user(claims: Annotated[Claims, Security(jwt_auth, scopes=["read"])]) -> str:
    return claims.subject or ""


def secured_app() -> App:
    app = App(settings=Settings.from_env({}))
    router = Router(prefix="/admin", dependencies=[Security(jwt_auth, scopes=["admin"])])

    @app.get("/public")
    async def public() -> str:
        return "ok"

    @app.post("/things")
    async def write(
        body: dict[str, int],
        claims: Annotated[Claims, Security(jwt_auth, scopes=["write", "read"])],
        user: Annotated[str, Depends(current_user)],
    ) -> str:
        return user

    @app.get("/keyed")
    async def keyed(key: Annotated[str, Security(api_key)]) -> str:
        return key

    @app.get("/basic")
    async def by_basic(credentials: Annotated[Any, Security(basic)]) -> str:
        return "ok"

    @app.get("/oauth")
    async def oauth(
        claims: Annotated[Claims, Security(password, scopes=["read"])],
        machine: Annotated[Claims, Security(machines, scopes=["sync"])],
    ) -> str:
        return "ok"

    @router.get("/stats")
    async def stats() -> str:
        return "ok"

    app.include_router(router)
    return app


def test_schemes_requirements_and_answers() -> None:
    document = build_document(secured_app())
    validate(document)
    schemes = document["components"]["securitySchemes"]
    assert schemes == {
        "JWTBearer": {
            "type": "http",
            "scheme": "bearer",
            "bearerFormat": "JWT",
            "description": "a JWT from the issuer",
        },
        "ApiKey": {"type": "apiKey", "name": "X-API-Key", "in": "header"},
        "HTTPBasic": {"type": "http", "scheme": "basic"},
        "OAuth2PasswordBearer": {
            "type": "oauth2",
            "flows": {
                "password": {
                    "tokenUrl": "/token",
                    "scopes": {"read": "read things", "write": "write"},
                }
            },
        },
        "OAuth2ClientCredentials": {
            "type": "oauth2",
            "flows": {
                "clientCredentials": {
                    "tokenUrl": "https://issuer.test/token",
                    "scopes": {"sync": "sync"},
                }
            },
        },
    }
    paths = document["paths"]
    public = paths["/public"]["get"]
    assert "security" not in public
    assert "401" not in public["responses"]
    write = paths["/things"]["post"]
    # the handler's requirement and its dependency's, met together: the union of the scopes
    assert write["security"] == [{"JWTBearer": ["read", "write"]}]
    assert paths["/keyed"]["get"]["security"] == [{"ApiKey": []}]
    assert paths["/basic"]["get"]["security"] == [{"HTTPBasic": []}]
    assert paths["/oauth"]["get"]["security"] == [
        {"OAuth2PasswordBearer": ["read"], "OAuth2ClientCredentials": ["sync"]}
    ]
    assert paths["/admin/stats"]["get"]["security"] == [{"JWTBearer": ["admin"]}]
    for path, item in paths.items():
        for operation in item.values():
            if "security" in operation:
                responses = operation["responses"]
                assert "401" in responses, path
                # 403 is a missing scope: only where a requirement names scopes
                scoped = any(scopes for need in operation["security"] for scopes in need.values())
                assert ("403" in responses) is scoped, path
                schema = responses["401"]["content"]["application/json"]["schema"]
                assert schema == {"$ref": "#/components/schemas/HTTPError"}
    # the credentials are not documented as ordinary header parameters
    assert "parameters" not in write or all(p["in"] != "header" for p in write["parameters"])
