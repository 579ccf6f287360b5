"""A user's own small service for ``kit bench --app``: no database, one GET, one POST."""

from __future__ import annotations

import msgspec

from kit import App

app = App(title="tiny", version="1.0")


class Note(msgspec.Struct):
    text: str


@app.get("/hello")
async def hello() -> dict[str, str]:
    return {"hello": "world"}


@app.post("/notes")
async def add_note(note: Note) -> Note:
    return note
