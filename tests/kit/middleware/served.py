"""The app the middleware tests serve on real server processes: a kit route with a JSON body,
one with a form, a plain Starlette route that reads its raw body, and a GET."""

from __future__ import annotations

from typing import Annotated

import msgspec
from starlette.requests import Request
from starlette.responses import JSONResponse
from starlette.routing import Route

from kit import App, Form


class Note(msgspec.Struct):
    text: str


app = App(title="served")


@app.get("/thing")
async def thing() -> dict[str, int]:
    return {"n": 1}


@app.post("/notes")
async def create_note(note: Note) -> dict[str, int]:
    return {"length": len(note.text)}


@app.post("/form")
async def submit_form(text: Annotated[str, Form()]) -> dict[str, int]:
    return {"length": len(text)}


async def raw_upload(request: Request) -> JSONResponse:
    return JSONResponse({"bytes": len(await request.body())})


app.router.routes.append(Route("/raw", raw_upload, methods=["POST"]))
