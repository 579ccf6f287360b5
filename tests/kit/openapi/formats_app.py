"""A service whose inputs are kit's ready string types, for the fuzzer (no database)."""

from __future__ import annotations

import msgspec

from kit import App, EmailStr, HttpUrl, Slug, UUIDStr


class Signup(msgspec.Struct):
    email: EmailStr
    homepage: HttpUrl
    handle: Slug
    invite: UUIDStr


app = App(title="formats")


@app.post("/signups", status_code=201)
async def create_signup(signup: Signup) -> Signup:
    return signup


@app.get("/pages/{slug}")
async def read_page(slug: Slug, email: EmailStr, url: HttpUrl, ref: UUIDStr) -> dict[str, str]:
    return {"slug": slug, "email": email, "url": url, "ref": ref}
