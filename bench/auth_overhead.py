"""What authentication costs: a protected GET against the same GET unprotected.

    python -m bench.auth_overhead [--inprocess] [--runtime granian] [--duration 5] [--rounds 2]

Routes of ``bench.auth_overhead:app`` (all answer ``{"ok": true}``):
  /open           no authentication
  /key            an API key header, checked against a sha256 hash in constant time
  /hs256          a bearer JWT (HS256) with a scope, verification cached per token (the default)
  /hs256-nocache  the same, verified on every request
  /rs256          a bearer JWT (RS256), cached
  /rs256-nocache  the same, verified on every request

``--inprocess`` drives the ASGI app without sockets (best CPU time of several repeats); the
default serves it with ``kit serve`` pinned to one core and loads it with wrk on another, the
same token on every request (what a client reusing its token does).
"""

from __future__ import annotations

import argparse
import asyncio
import os
import sys
import tempfile
import time
from pathlib import Path
from typing import Annotated, Any

from kit import App, Settings
from kit.benchmark.cli import add_runtime_option
from kit.security import APIKeyHeader, Claims, JWTBearer, JWTVerifier, Security, hash_key
from kit.testing import mint_token

SECRET = "bench-only-secret-" + "x" * 46
API_KEY = "bench-api-key-0123456789"
KEY_FILE = "BENCH_AUTH_RSA_KEY"  # a PEM private key shared by the runner and the server
PATHS = ("/open", "/key", "/hs256", "/hs256-nocache", "/rs256", "/rs256-nocache")


def _rsa_pem() -> tuple[Any, str]:
    from cryptography.hazmat.primitives import serialization
    from cryptography.hazmat.primitives.asymmetric import rsa

    path = os.environ.get(KEY_FILE)
    if path:
        key = serialization.load_pem_private_key(Path(path).read_bytes(), password=None)
    else:
        key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    public = key.public_key().public_bytes(
        serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo
    )
    return key, public.decode()


PRIVATE_KEY, PUBLIC_PEM = _rsa_pem()
SETTINGS = Settings.from_env().with_(
    auth_jwt_secret=SECRET, api_keys=(hash_key(API_KEY),), access_log=False
)
hs256 = JWTBearer()
hs256_nocache = JWTBearer(verifier=JWTVerifier(secret=SECRET, cache_size=0))
rs256 = JWTBearer(verifier=JWTVerifier(public_key=PUBLIC_PEM))
rs256_nocache = JWTBearer(verifier=JWTVerifier(public_key=PUBLIC_PEM, cache_size=0))
api_key = APIKeyHeader()

app = App(title="auth overhead", settings=SETTINGS)
OK = {"ok": True}


@app.get("/open")
async def open_() -> dict[str, bool]:
    return OK


@app.get("/key")
async def key(_: Annotated[str, Security(api_key)]) -> dict[str, bool]:
    return OK


@app.get("/hs256")
async def hs(_: Annotated[Claims, Security(hs256, scopes=["read"])]) -> dict[str, bool]:
    return OK


@app.get("/hs256-nocache")
async def hs_nc(_: Annotated[Claims, Security(hs256_nocache, scopes=["read"])]) -> dict[str, bool]:
    return OK


@app.get("/rs256")
async def rs(_: Annotated[Claims, Security(rs256, scopes=["read"])]) -> dict[str, bool]:
    return OK


@app.get("/rs256-nocache")
async def rs_nc(_: Annotated[Claims, Security(rs256_nocache, scopes=["read"])]) -> dict[str, bool]:
    return OK


def headers_for(path: str) -> list[tuple[bytes, bytes]]:
    if path == "/key":
        return [(b"x-api-key", API_KEY.encode())]
    if path.startswith("/hs256"):
        token = mint_token(SETTINGS, scopes=["read"], expires_in=3600)
    elif path.startswith("/rs256"):
        token = mint_token(SETTINGS, scopes=["read"], expires_in=3600, private_key=PRIVATE_KEY)
    else:
        return []
    return [(b"authorization", f"Bearer {token}".encode())]


async def drive(path: str, requests: int, repeats: int) -> float:
    """Best CPU microseconds per request of ``repeats`` runs of ``requests`` GETs."""
    base = [(b"host", b"bench"), (b"user-agent", b"wrk"), (b"accept", b"*/*")]
    scope = {
        "type": "http", "asgi": {"version": "3.0"}, "http_version": "1.1", "method": "GET",
        "scheme": "http", "path": path, "raw_path": path.encode(), "query_string": b"",
        "root_path": "", "headers": [*base, *headers_for(path)],
        "client": ("127.0.0.1", 50000), "server": ("127.0.0.1", 8000), "state": {},
    }  # fmt: skip
    statuses: list[int] = []

    async def receive() -> dict[str, Any]:
        return {"type": "http.request", "body": b"", "more_body": False}

    async def send(message: dict[str, Any]) -> None:
        if message["type"] == "http.response.start":
            statuses.append(message["status"])

    best = float("inf")
    async with app.router.lifespan_context(app):
        for _ in range(repeats):
            started = time.process_time()
            for _ in range(requests):
                await app(dict(scope), receive, send)
            best = min(best, time.process_time() - started)
    assert set(statuses) == {200}, set(statuses)
    return best / requests * 1e6


def inprocess(requests: int, repeats: int) -> None:
    results = {path: asyncio.run(drive(path, requests, repeats)) for path in PATHS}
    print("\nGET driven in process (no sockets, no server), best CPU us/request\n")
    print("| route | us/request | added by authentication |")
    print("|---|---|---|")
    for path, us in results.items():
        print(f"| {path} | {us:.2f} | {us - results['/open']:+.2f} us |")


def over_sockets(args: argparse.Namespace) -> None:
    from bench.ops_overhead import cpu_seconds
    from kit.benchmark import wrk
    from kit.benchmark.server import BenchServer
    from kit.benchmark.study import pin_prefix

    tool = wrk.find()
    cells: dict[str, list[tuple[float, float, int]]] = {}
    with tempfile.TemporaryDirectory() as tmp:
        from cryptography.hazmat.primitives import serialization

        key_path = Path(tmp) / "key.pem"
        key_path.write_bytes(
            PRIVATE_KEY.private_bytes(
                serialization.Encoding.PEM,
                serialization.PrivateFormat.PKCS8,
                serialization.NoEncryption(),
            )
        )
        env = {"KIT_RUNTIME": args.runtime, "KIT_ACCESS_LOG": "0", KEY_FILE: str(key_path)}
        with BenchServer(
            "bench.auth_overhead:app",
            prefix=pin_prefix([args.server_cpu]),
            env=env,
            log=Path(tmp) / "server.log",
            ready_path="/open",
        ) as server:
            for _ in range(args.rounds):
                for path in PATHS:
                    headers = [f"{k.decode()}: {v.decode()}" for k, v in headers_for(path)]
                    extra = [arg for header in headers for arg in ("-H", header)]

                    def load(seconds: int, path: str = path, extra: list[str] = extra) -> Any:
                        cmd = wrk.command(
                            tool, server.url + path,
                            connections=args.connections, seconds=seconds, cpus=[args.load_cpu],
                        )  # fmt: skip
                        cmd = [*cmd[:-1], *extra, cmd[-1]]
                        return wrk.run(cmd, seconds=seconds)

                    load(1)
                    before = cpu_seconds(server)
                    result = load(args.duration)
                    cpu = (cpu_seconds(server) - before) / max(1, result.requests) * 1e6
                    errors = result.non_2xx + result.socket_errors
                    cells.setdefault(path, []).append((result.rps, cpu, errors))
                    print(f"  {path:<15} {result.rps:>8.0f} req/s {cpu:>6.1f} us CPU/req "
                          f"{errors} errors", file=sys.stderr)  # fmt: skip
    print(
        f"\n{args.runtime}, 1 worker pinned to CPU {args.server_cpu}, wrk -c{args.connections}"
        f" on CPU {args.load_cpu}, best of {args.rounds} rounds x {args.duration} s\n"
    )
    print("| route | req/s | server CPU us/req | vs /open (CPU) | errors |")
    print("|---|---|---|---|---|")
    best = {path: (max(c[0] for c in cs), min(c[1] for c in cs), sum(c[2] for c in cs))
            for path, cs in cells.items()}  # fmt: skip
    for path, (rps, cpu, errors) in best.items():
        ratio = cpu / best["/open"][1]
        print(f"| {path} | {rps:.0f} | {cpu:.1f} | {ratio:.2f}x | {errors} |")


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m bench.auth_overhead", description=__doc__)
    parser.add_argument("--inprocess", action="store_true", help="no server: drive the ASGI app")
    parser.add_argument("--requests", type=int, default=5000)
    parser.add_argument("--repeats", type=int, default=7)
    add_runtime_option(parser)
    parser.add_argument("--duration", type=int, default=5)
    parser.add_argument("--rounds", type=int, default=2)
    parser.add_argument("--connections", type=int, default=64)
    parser.add_argument("--server-cpu", type=int, default=0)
    parser.add_argument("--load-cpu", type=int, default=1)
    args = parser.parse_args(argv)
    if args.inprocess:
        inprocess(args.requests, args.repeats)
    else:
        over_sockets(args)
    return 0


if __name__ == "__main__":
    sys.exit(main())
