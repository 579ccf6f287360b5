"""A service with one protected operation, for the docs' "Authorize" test (no database)."""

from __future__ import annotations

from typing import Annotated

from kit import App
from kit.security import Claims, JWTBearer, Security

app = App(title="secured")
bearer = JWTBearer(description="a JWT with the scope `profile`")


@app.get("/me")
async def me(claims: Annotated[Claims, Security(bearer, scopes=["profile"])]) -> dict[str, str]:
    """Who the token says you are."""
    return {"sub": claims.subject or ""}


@app.get("/public")
async def public() -> dict[str, str]:
    return {"hello": "world"}
