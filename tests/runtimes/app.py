"""The conformance app: one endpoint per behaviour every runtime must serve identically."""

from __future__ import annotations

import asyncio
import contextlib
import os
import threading
from collections.abc import AsyncIterator
from pathlib import Path

import msgspec
from starlette.requests import Request
from starlette.websockets import WebSocket, WebSocketDisconnect

from kit import App, PlainTextResponse, Response, StreamingResponse

LARGE_SIZE = 5 * 1024 * 1024
STREAM_CHUNKS = [f"chunk {i}\n".encode() for i in range(20)]


def mark(event: str, key: object = "") -> None:
    """Leave a marker file per event, so tests see what happened in any worker."""
    directory = os.environ.get("KIT_TEST_MARKERS")
    if directory:
        name = f"{event}-{os.getpid()}-{threading.get_ident()}-{key}"
        Path(directory, name).write_text(event)


@contextlib.asynccontextmanager
async def lifespan(app: App) -> AsyncIterator[None]:
    mark("startup")
    yield
    mark("shutdown")


app = App(title="conformance", lifespan=lifespan, max_body_size=64 * 1024)


class Item(msgspec.Struct):
    name: str
    qty: int


@app.get("/plaintext")
async def plaintext() -> PlainTextResponse:
    return PlainTextResponse("Hello, World!")


@app.get("/json")
async def json() -> dict[str, str]:
    return {"message": "Hello, World!"}


@app.get("/status/{code}")
async def status(code: int) -> Response:
    return Response(status_code=code, headers={"x-kit-test": "yes"})


@app.post("/items", status_code=201)
async def create_item(item: Item) -> Item:
    return item


@app.get("/slow")
async def slow(seconds: float = 0.5, tag: str = "") -> PlainTextResponse:
    # The marker says "accepted and mid-flight": the shutdown test signals only after every
    # request of its load has left one, whichever worker took it.
    mark("slow", tag)
    await asyncio.sleep(seconds)
    return PlainTextResponse(f"slept {seconds}")


@app.get("/stream")
async def stream() -> StreamingResponse:
    async def chunks() -> AsyncIterator[bytes]:
        for chunk in STREAM_CHUNKS:
            yield chunk
            await asyncio.sleep(0)

    return StreamingResponse(chunks(), media_type="text/plain")


@app.get("/large")
async def large() -> Response:
    return Response(b"x" * LARGE_SIZE, media_type="application/octet-stream")


@app.get("/café/{name}")
async def unicode_path(name: str) -> dict[str, str]:
    return {"name": name}


@app.get("/pid")
async def pid() -> dict[str, int]:
    return {"pid": os.getpid(), "thread": threading.get_ident()}


@app.get("/client")
async def client(request: Request) -> dict[str, str]:
    return {"host": request.client.host if request.client else "", "scheme": request.url.scheme}


@app.websocket_route("/ws")
async def echo(websocket: WebSocket) -> None:
    await websocket.accept()
    try:
        while True:
            await websocket.send_text(await websocket.receive_text())
    except WebSocketDisconnect:
        pass
