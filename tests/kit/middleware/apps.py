"""What the middleware tests share: a small Starlette app and an httpx client on it."""

from __future__ import annotations

import asyncio
from typing import Any

import httpx
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route

from kit.middleware import request_id


async def whoami(request: Request) -> JSONResponse:
    return JSONResponse({"request_id": request_id()})


async def nap(request: Request) -> JSONResponse:
    await asyncio.sleep(float(request.query_params.get("s", "0.2")))
    return JSONResponse({"ok": True})


async def own_timeout(request: Request) -> Response:
    raise TimeoutError("the handler's own")


async def late(request: Request) -> Response:
    return StreamingAfterStart()  # type: ignore[return-value]


class StreamingAfterStart:
    """Starts the response, then stalls past the deadline."""

    async def __call__(self, scope: Any, receive: Any, send: Any) -> None:
        await send({"type": "http.response.start", "status": 200, "headers": []})
        await send({"type": "http.response.body", "body": b"partial", "more_body": True})
        await asyncio.sleep(5)


def starlette(*middleware: Any) -> Starlette:
    app = Starlette(
        routes=[
            Route("/whoami", whoami),
            Route("/nap", nap),
            Route("/own-timeout", own_timeout),
            Route("/late", late),
            Route("/healthz", whoami),
        ]
    )
    asgi: Any = app
    for cls, kwargs in reversed(middleware):
        asgi = cls(asgi, **kwargs)
    return asgi


def client(app: Any, host: str = "10.0.0.1") -> httpx.AsyncClient:
    transport = httpx.ASGITransport(app=app, client=(host, 1234))
    return httpx.AsyncClient(transport=transport, base_url="http://test")
