"""Handler cost without sockets: drive ASGI apps directly and count requests per second.

    python -m bench.inprocess [--requests N] [--repeat R] [--cpu C]

Compares a kit handler, the same endpoint hand-written on Starlette + msgspec, and FastAPI +
Pydantic, on ``GET /json`` (a small object) and ``POST /validate`` (a validated 4-field body).
The apps are defined here, with the /validate schemas of the bench service and its peers
(services/bench/schemas.py, bench/apps/models.py); the server-level comparison is
``kit bench``.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import statistics
import sys
import time
from collections.abc import Callable
from typing import Any

import fastapi
import msgspec
import pydantic
import starlette
from fastapi import FastAPI
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

from bench.apps.models import Person as PersonModel
from bench.ops_overhead import without_operations
from kit import App, Settings
from services.bench.schemas import Message, Person

Scope = dict[str, Any]
ASGIApp = Callable[..., Any]

HELLO = {"message": "Hello, World!"}
PERSON = b'{"name":"Ada Lovelace","age":36,"email":"ada@example.com","tags":["math","poetry"]}'


def kit_app(operations: bool = False) -> ASGIApp:
    """The kit handler layer; ``operations`` adds kit's default request-ID + metrics middleware."""
    settings = Settings.from_env({}, access_log=False, metrics=operations, docs=False)
    app = App(title="inprocess", settings=settings)

    @app.get("/json")
    async def hello() -> Message:
        return Message("Hello, World!")

    @app.post("/validate")
    async def validate(person: Person) -> Person:
        return person

    return app if operations else without_operations(app)


def starlette_app() -> ASGIApp:
    """What a careful engineer writes by hand: Starlette routes, msgspec in and out."""
    encode = msgspec.json.Encoder().encode
    decode = msgspec.json.Decoder(Person).decode
    hello_body = encode(Message("Hello, World!"))

    async def hello(request: Request) -> Response:
        return Response(hello_body, media_type="application/json")

    async def validate(request: Request) -> Response:
        if request.headers.get("content-type", "").partition(";")[0] != "application/json":
            return Response(
                b'{"detail":"Unsupported Media Type"}', 415, media_type="application/json"
            )
        try:
            person = decode(await request.body())
        except msgspec.ValidationError as exc:
            detail = [{"type": "value_error", "loc": ["body"], "msg": str(exc), "input": None}]
            return Response(encode({"detail": detail}), 422, media_type="application/json")
        except msgspec.DecodeError:
            detail = [{"type": "json_invalid", "loc": ["body"], "msg": "JSON decode error"}]
            return Response(encode({"detail": detail}), 422, media_type="application/json")
        return Response(encode(person), media_type="application/json")

    return Starlette(routes=[Route("/json", hello), Route("/validate", validate, methods=["POST"])])


def fastapi_app() -> ASGIApp:
    app = FastAPI(openapi_url=None, docs_url=None, redoc_url=None)

    @app.get("/json")
    async def hello() -> dict[str, str]:
        return HELLO

    @app.post("/validate")
    async def validate(person: PersonModel) -> PersonModel:
        return person

    return app


APPS: dict[str, Callable[[], ASGIApp]] = {
    "kit": kit_app,
    "kit+ops": lambda: kit_app(operations=True),
    "starlette+msgspec": starlette_app,
    "fastapi+pydantic": fastapi_app,
}
CASES: dict[str, tuple[str, str, bytes | None]] = {
    "GET /json": ("GET", "/json", None),
    "POST /validate": ("POST", "/validate", PERSON),
}


class Driver:
    """Calls one ASGI app as a server would, minus the sockets, and checks every answer is 200."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app
        self.state: dict[str, Any] = {}
        self._lifespan: asyncio.Task[None] | None = None
        self._to_app: asyncio.Queue[dict[str, Any]] = asyncio.Queue()
        self._from_app: asyncio.Queue[dict[str, Any]] = asyncio.Queue()

    async def start(self) -> None:
        scope = {"type": "lifespan", "asgi": {"version": "3.0"}, "state": self.state}
        self._lifespan = asyncio.ensure_future(
            self.app(scope, self._to_app.get, self._from_app.put)
        )
        await self._to_app.put({"type": "lifespan.startup"})
        message = await self._from_app.get()
        if message["type"] != "lifespan.startup.complete":
            raise RuntimeError(f"lifespan startup failed: {message}")

    async def stop(self) -> None:
        await self._to_app.put({"type": "lifespan.shutdown"})
        await self._from_app.get()
        if self._lifespan is not None:
            await self._lifespan

    # bench.calls counts every call a request makes, the driver's too: kept lean, with no
    # query string or headers (exchange has them)
    async def request(self, method: str, path: str, body: bytes | None) -> tuple[int, bytes]:
        headers = [(b"host", b"bench")]
        if body is not None:
            headers += [
                (b"content-type", b"application/json"),
                (b"content-length", b"%d" % len(body)),
            ]
        scope: Scope = {
            "type": "http",
            "asgi": {"version": "3.0"},
            "http_version": "1.1",
            "method": method,
            "scheme": "http",
            "path": path,
            "raw_path": path.encode(),
            "root_path": "",
            "query_string": b"",
            "headers": headers,
            "client": ("127.0.0.1", 50000),
            "server": ("127.0.0.1", 8000),
            "state": dict(self.state),
        }
        sent = False
        status = 0
        chunks: list[bytes] = []

        async def receive() -> dict[str, Any]:
            nonlocal sent
            if sent:
                return {"type": "http.disconnect"}
            sent = True
            return {"type": "http.request", "body": body or b"", "more_body": False}

        async def send(message: dict[str, Any]) -> None:
            nonlocal status
            if message["type"] == "http.response.start":
                status = message["status"]
            elif message["type"] == "http.response.body":
                chunks.append(message.get("body", b""))

        await self.app(scope, receive, send)
        return status, b"".join(chunks)

    async def exchange(
        self,
        method: str,
        target: str,
        body: bytes | None,
        headers: tuple[tuple[bytes, bytes], ...] = (),
    ) -> tuple[int, list[tuple[bytes, bytes]], bytes]:
        """One request to ``target`` (a path, with its query string if any): the status, the
        response headers and the body."""
        path, _, query = target.partition("?")
        sent_headers = [(b"host", b"bench"), *headers]
        if body is not None:
            sent_headers += [
                (b"content-type", b"application/json"),
                (b"content-length", b"%d" % len(body)),
            ]
        scope: Scope = {
            "type": "http",
            "asgi": {"version": "3.0"},
            "http_version": "1.1",
            "method": method,
            "scheme": "http",
            "path": path,
            "raw_path": path.encode(),
            "root_path": "",
            "query_string": query.encode(),
            "headers": sent_headers,
            "client": ("127.0.0.1", 50000),
            "server": ("127.0.0.1", 8000),
            "state": dict(self.state),
        }
        sent = False
        status = 0
        response_headers: list[tuple[bytes, bytes]] = []
        chunks: list[bytes] = []

        async def receive() -> dict[str, Any]:
            nonlocal sent
            if sent:
                return {"type": "http.disconnect"}
            sent = True
            return {"type": "http.request", "body": body or b"", "more_body": False}

        async def send(message: dict[str, Any]) -> None:
            nonlocal status
            if message["type"] == "http.response.start":
                status = message["status"]
                response_headers.extend(message.get("headers", ()))
            elif message["type"] == "http.response.body":
                chunks.append(message.get("body", b""))

        await self.app(scope, receive, send)
        return status, response_headers, b"".join(chunks)

    async def rate(self, method: str, path: str, body: bytes | None, n: int) -> float:
        request = self.request
        start = time.perf_counter()
        for i in range(n):
            if not i & 63:
                await asyncio.sleep(
                    0
                )  # let the loop run its timers, as a server does between reads
            status, _ = await request(method, path, body)
            if status != 200:
                raise RuntimeError(f"{method} {path} answered {status}")
        return n / (time.perf_counter() - start)


async def measure(requests: int, repeat: int) -> dict[tuple[str, str], float]:
    """Median requests/s of ``repeat`` rounds per app and case, apps interleaved per round."""
    drivers = {name: Driver(factory()) for name, factory in APPS.items()}
    for driver in drivers.values():
        await driver.start()
    try:
        for case, (method, path, body) in CASES.items():
            answers = {n: await d.request(method, path, body) for n, d in drivers.items()}
            for name, (status, payload) in answers.items():
                if status != 200 or msgspec.json.decode(payload) != msgspec.json.decode(
                    answers["starlette+msgspec"][1]
                ):
                    raise RuntimeError(f"{name} {case} answered {status} {payload[:120]!r}")
        samples: dict[tuple[str, str], list[float]] = {}
        for _ in range(repeat + 1):  # the first round warms up and is dropped
            for case, (method, path, body) in CASES.items():
                for name, driver in drivers.items():
                    rate = await driver.rate(method, path, body, requests)
                    samples.setdefault((name, case), []).append(rate)
        return {key: statistics.median(values[1:]) for key, values in samples.items()}
    finally:
        for driver in drivers.values():
            await driver.stop()


def report(rates: dict[tuple[str, str], float], requests: int, repeat: int, cpu: str) -> str:
    lines = [
        f"In-process ASGI benchmark: Python {sys.version.split()[0]}, starlette "
        f"{starlette.__version__}, msgspec {msgspec.__version__}, fastapi {fastapi.__version__}, "
        f"pydantic {pydantic.VERSION}; {cpu}; median of {repeat} rounds of {requests} requests "
        "per app and case (apps interleaved, one warm-up round dropped); no sockets, no server.",
        "",
        "| case | " + " | ".join(APPS) + " | kit/starlette | kit/fastapi |",
        "| :-- |" + " --: |" * (len(APPS) + 2),
    ]
    for case in CASES:
        row = [f"{rates[(name, case)]:,.0f}" for name in APPS]
        kit = rates[("kit", case)]
        row.append(f"{kit / rates[('starlette+msgspec', case)]:.2f}x")
        row.append(f"{kit / rates[('fastapi+pydantic', case)]:.2f}x")
        lines.append(f"| {case} | " + " | ".join(row) + " |")
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m bench.inprocess", description=__doc__)
    parser.add_argument("--requests", type=int, default=20_000, help="requests per round")
    parser.add_argument("--repeat", type=int, default=5, help="measured rounds")
    parser.add_argument("--cpu", type=int, help="pin this process to one CPU")
    args = parser.parse_args(argv)
    if args.requests < 1 or args.repeat < 1:
        parser.error("--requests and --repeat must be >= 1")
    cpu = "unpinned"
    if args.cpu is not None:
        os.sched_setaffinity(0, {args.cpu})
        cpu = f"pinned to CPU {args.cpu}"
    rates = asyncio.run(measure(args.requests, args.repeat))
    print(report(rates, args.requests, args.repeat, cpu))
    return 0


if __name__ == "__main__":
    sys.exit(main())
