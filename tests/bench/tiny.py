"""A user's own small service for ``kit bench --app``: no database, one GET, one POST, a route
that only POST reaches (202), and one that needs ``Authorization: Bearer $TINY_TOKEN``."""

from __future__ import annotations

import os

import msgspec

from kit import App, HTTPException, Request

app = App(title="tiny", version="1.0")


class Note(msgspec.Struct):
    text: str


@app.get("/hello")
async def hello() -> dict[str, str]:
    return {"hello": "world"}


@app.post("/notes")
async def add_note(note: Note) -> Note:
    return note


@app.post("/events", status_code=202)
async def accept_event(note: Note) -> dict[str, bool]:
    return {"accepted": True}


@app.get("/private")
async def private(request: Request) -> dict[str, str]:
    token = os.environ.get("TINY_TOKEN")
    if not token or request.headers.get("authorization") != f"Bearer {token}":
        raise HTTPException(401, "a bearer token is needed")
    return {"private": "yes"}
