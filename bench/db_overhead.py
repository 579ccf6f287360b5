"""What kit costs on a database request: single-row ``GET /db`` through kit against a raw ASGI
app with the same asyncpg pool settings and the same query, in one run.

    python -m bench.db_overhead [--runtime granian] [--duration 8] [--rounds 3]

Variants, served one after another by ``kit serve`` pinned to one core, loaded by wrk on another:
  raw       a hand-written ASGI callable: pool.acquire(), fetchrow, msgspec encode
  kit       kit.App with a ``Connection`` dependency, the way a service is written, with kit's
            default operations middleware (request ids, access log to a file, metrics)
  kit-bare  the same App without the operations middleware: the handler layer and kit.db only
  kit-no-di kit-bare, but the handler takes the Request and borrows the connection itself
            (Database.acquire/release): what the Connection dependency itself costs
The database is ``DATABASE_URL`` or the embedded PostgreSQL; the world table comes from the
services/bench migrations.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import random
import statistics
import sys
import tempfile
from collections.abc import Awaitable, Callable, MutableMapping
from pathlib import Path
from typing import Any, NamedTuple

import asyncpg
import msgspec

from bench.ops_overhead import loaded, without_operations
from kit import App, Request
from kit.benchmark.cli import add_runtime_option
from kit.benchmark.server import BenchServer
from kit.benchmark.study import pin_prefix
from kit.db import Connection, Database, apply_migrations, resolve_database_url
from kit.settings import Settings
from services.bench.queries import READ_WORLD, WORLD_ROWS
from services.bench.schemas import World

MIGRATIONS = Path(__file__).resolve().parent.parent / "services" / "bench" / "migrations"
VARIANTS = {
    "raw": "bench.db_overhead:raw",
    "kit": "bench.db_overhead:kit",
    "kit-bare": "bench.db_overhead:kit_bare",
    "kit-no-di": "bench.db_overhead:kit_no_di",
}

Scope = MutableMapping[str, Any]
Receive = Callable[[], Awaitable[MutableMapping[str, Any]]]
Send = Callable[[MutableMapping[str, Any]], Awaitable[None]]


class RawApp:
    """``GET /db`` and nothing else, with the pool kit.db would open from the same settings."""

    def __init__(self) -> None:
        self.pool: asyncpg.Pool | None = None
        self.encode = msgspec.json.Encoder().encode

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] == "lifespan":
            await self.lifespan(receive, send)
            return
        assert self.pool is not None
        async with self.pool.acquire() as conn:
            row = await conn.fetchrow(READ_WORLD, random.randint(1, WORLD_ROWS))
        body = self.encode(World(row[0], row[1]))
        headers = [(b"content-type", b"application/json"), (b"content-length", b"%d" % len(body))]
        await send({"type": "http.response.start", "status": 200, "headers": headers})
        await send({"type": "http.response.body", "body": body})

    async def lifespan(self, receive: Receive, send: Send) -> None:
        await receive()
        settings = Settings.from_env()
        url = resolve_database_url(settings)
        self.pool = await asyncpg.create_pool(url, **Database().pool_options(settings))
        await send({"type": "lifespan.startup.complete"})
        await receive()
        await self.pool.close()
        await send({"type": "lifespan.shutdown.complete"})


def kit_app(bare: bool, dependency: bool = True) -> Any:
    app = App(database=Database())

    if dependency:

        @app.get("/db")
        async def single_query(conn: Connection) -> World:
            return World(*await conn.fetchrow(READ_WORLD, random.randint(1, WORLD_ROWS)))

    else:

        @app.get("/db")
        async def single_query_no_di(request: Request) -> World:
            database = request.app.database
            conn = await database.acquire()
            try:
                return World(*await conn.fetchrow(READ_WORLD, random.randint(1, WORLD_ROWS)))
            finally:
                await database.release(conn)

    return without_operations(app) if bare else app


def __getattr__(name: str) -> Any:
    """The served apps, built only in the server process that imports them."""
    if name == "raw":
        return RawApp()
    if name in ("kit", "kit_bare", "kit_no_di"):
        return kit_app(bare=name != "kit", dependency=name != "kit_no_di")
    raise AttributeError(name)


class Cell(NamedTuple):
    rps: float
    p50_ms: float
    p99_ms: float
    cpu_us: float


def measure(variant: str, args: argparse.Namespace, env: dict[str, str], tmp: Path) -> Cell:
    with BenchServer(
        VARIANTS[variant],
        prefix=pin_prefix([args.server_cpu]),
        env={**env, "KIT_RUNTIME": args.runtime, "KIT_WORKERS": "1"},
        log=tmp / f"{variant}.log",
        ready_path="/db",
    ) as server:
        result, cpu = loaded(server, server.url + "/db", args)
    if result.non_2xx or result.socket_errors:
        raise SystemExit(f"{variant}: {result.non_2xx + result.socket_errors} errors")
    return Cell(result.rps, result.p50_ms, result.p99_ms, cpu / result.requests * 1e6)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m bench.db_overhead", description=__doc__)
    add_runtime_option(parser)
    parser.add_argument("--duration", type=int, default=8, help="seconds measured per cell")
    parser.add_argument("--warmup", type=int, default=2)
    parser.add_argument("--rounds", type=int, default=3, help="variants alternate each round")
    parser.add_argument("--connections", type=int, default=64)
    parser.add_argument("--server-cpu", type=int, default=0)
    parser.add_argument("--load-cpu", type=int, default=1)
    parser.add_argument("--variants", default=",".join(VARIANTS), help="comma-separated")
    args = parser.parse_args(argv)
    chosen = [v.strip() for v in args.variants.split(",") if v.strip()]
    unknown = sorted(set(chosen) - set(VARIANTS))
    if unknown or "raw" not in chosen:
        parser.error(f"variants must include raw and be among {', '.join(VARIANTS)}")
    settings = Settings.from_env()
    url = resolve_database_url(settings)  # started once here, shared by every server
    asyncio.run(apply_migrations(url, MIGRATIONS))
    env = {**os.environ, "DATABASE_URL": url, "KIT_MIGRATE": "0", "KIT_LOG_FORMAT": "json"}
    cells: dict[str, list[Cell]] = {v: [] for v in chosen}
    with tempfile.TemporaryDirectory() as tmp:
        for _ in range(args.rounds):
            for variant in chosen:
                cell = measure(variant, args, env, Path(tmp))
                cells[variant].append(cell)
                print(
                    f"  {variant:<8} {cell.rps:>8.0f} req/s  p50 {cell.p50_ms:.2f} ms"
                    f"  p99 {cell.p99_ms:.2f} ms  {cell.cpu_us:.0f} us CPU/req",
                    file=sys.stderr,
                )
    med = {
        v: Cell(*(statistics.median(getattr(c, f) for c in cs) for f in Cell._fields))
        for v, cs in cells.items()
    }
    print(
        f"\nGET /db (one row by primary key), {args.runtime}, 1 worker pinned to CPU"
        f" {args.server_cpu}, wrk -c{args.connections} on CPU {args.load_cpu}, {args.rounds}"
        f" rounds x {args.duration} s per variant (alternating), medians; pool"
        f" {settings.db_pool_min}..{settings.db_pool_max}\n"
    )
    print("| variant | req/s | x raw | p50 ms | p99 ms | server CPU us/req |")
    print("|---|---|---|---|---|---|")
    for variant, cell in med.items():
        print(
            f"| {variant} | {cell.rps:.0f} | {cell.rps / med['raw'].rps:.2f} | {cell.p50_ms:.2f}"
            f" | {cell.p99_ms:.2f} | {cell.cpu_us:.0f} |"
        )
    return 0


if __name__ == "__main__":
    sys.exit(main())
