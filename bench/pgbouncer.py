"""Direct to Postgres vs through PgBouncer in transaction mode, for kit and FastAPI, in one run.

    python -m bench.pgbouncer [--runtime granian] [--duration 5] [--endpoints /db,/fortunes]

Each cell: ``kit serve`` (1 worker) pinned to one core, wrk on the other, the same pool size
(KIT_DB_POOL_MAX, default 10) and PgBouncer's ``default_pool_size`` equal to it. Through the
pooler the apps run with ``KIT_DB_PGBOUNCER=1`` (asyncpg's statement cache off: unnamed
statements); the middle column is that setting on the direct URL (the cache's share of the
cost). Postgres and PgBouncer are not pinned: they share the cores with the rest.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import sys
import tempfile
from pathlib import Path
from typing import NamedTuple
from urllib.parse import urlsplit

from bench.ops_overhead import loaded
from kit.benchmark.cli import add_runtime_option
from kit.benchmark.server import BenchServer
from kit.benchmark.study import pin_prefix
from kit.db import apply_migrations, resolve_database_url
from kit.settings import Settings
from kit.testing.pgbouncer import PgBouncer

MIGRATIONS = Path(__file__).resolve().parent.parent / "services" / "bench" / "migrations"
APPS = {"kit": "services.bench.app:app", "fastapi": "bench.apps.fastapi:app"}
ENDPOINTS = ("/db", "/queries?queries=20", "/fortunes")


class Cell(NamedTuple):
    rps: float
    p99_ms: float
    cpu_us: float
    errors: int


def measure(
    app: str, endpoint: str, env: dict[str, str], args: argparse.Namespace, tmp: Path
) -> Cell:
    with BenchServer(
        APPS[app],
        prefix=pin_prefix([args.server_cpu]),
        env={**env, "KIT_RUNTIME": args.runtime, "KIT_WORKERS": "1"},
        log=tmp,
        ready_path=endpoint,
    ) as server:
        result, cpu = loaded(server, server.url + endpoint, args)
    errors = result.non_2xx + result.socket_errors
    return Cell(result.rps, result.p99_ms, cpu / result.requests * 1e6, errors)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m bench.pgbouncer", description=__doc__)
    add_runtime_option(parser)
    parser.add_argument("--duration", type=int, default=5, help="seconds measured per cell")
    parser.add_argument("--warmup", type=int, default=2)
    parser.add_argument("--connections", type=int, default=64)
    parser.add_argument("--server-cpu", type=int, default=0)
    parser.add_argument("--load-cpu", type=int, default=1)
    parser.add_argument("--endpoints", default=",".join(ENDPOINTS), help="comma-separated")
    args = parser.parse_args(argv)
    settings = Settings.from_env()
    url = resolve_database_url(settings)
    asyncio.run(apply_migrations(url, MIGRATIONS))
    base = {
        **os.environ,
        "KIT_MIGRATE": "0",
        "KIT_ACCESS_LOG": "0",
        "KIT_LOG_LEVEL": "warning",
        # a saturated pool queues rather than answering 503: this measures throughput
        "KIT_DB_ACQUIRE_TIMEOUT": "30",
    }
    cells: dict[tuple[str, str, str], Cell] = {}
    with tempfile.TemporaryDirectory() as tmp:
        bouncer = PgBouncer(url, Path(tmp) / "pgbouncer", pool_size=settings.db_pool_max)
        bouncer.start()
        try:
            pooled = bouncer.url(urlsplit(url).path.lstrip("/"))
            modes = {
                "direct": {**base, "DATABASE_URL": url},
                # what the statement cache alone is worth, without the extra hop
                "no-cache": {**base, "DATABASE_URL": url, "KIT_DB_PGBOUNCER": "1"},
                "pgbouncer": {**base, "DATABASE_URL": pooled, "KIT_DB_PGBOUNCER": "1"},
            }
            for endpoint in [e.strip() for e in args.endpoints.split(",") if e.strip()]:
                for app in APPS:
                    for mode, env in modes.items():  # side by side: same minute, same noise
                        cell = measure(app, endpoint, env, args, Path(tmp))
                        cells[app, endpoint, mode] = cell
                        print(
                            f"  {app:<8} {endpoint:<20} {mode:<9} {cell.rps:>7.0f} req/s"
                            f"  p99 {cell.p99_ms:6.2f} ms  {cell.cpu_us:5.0f} us CPU/req"
                            f"  {cell.errors} errors",
                            file=sys.stderr,
                        )
        finally:
            bouncer.stop()
    print(
        f"\n{args.runtime}, 1 worker pinned to CPU {args.server_cpu}, wrk -c{args.connections}"
        f" on CPU {args.load_cpu}, {args.duration} s per cell after {args.warmup} s warm-up;"
        f" pool max {settings.db_pool_max}, PgBouncer default_pool_size {settings.db_pool_max}\n"
    )
    print(
        "| app | endpoint | req/s direct | direct, cache off | PgBouncer | PgBouncer/direct "
        "| server CPU us/req direct | direct, cache off | PgBouncer | errors |"
    )
    print("|---|---|---|---|---|---|---|---|---|---|")
    for (app, endpoint, mode), cell in cells.items():
        if mode != "direct":
            continue
        off, pooled_cell = cells[app, endpoint, "no-cache"], cells[app, endpoint, "pgbouncer"]
        print(
            f"| {app} | `{endpoint}` | {cell.rps:.0f} | {off.rps:.0f} | {pooled_cell.rps:.0f} "
            f"| {pooled_cell.rps / cell.rps:.2f} | {cell.cpu_us:.0f} | {off.cpu_us:.0f} "
            f"| {pooled_cell.cpu_us:.0f} | {cell.errors + off.errors + pooled_cell.errors} |"
        )
    return 0


if __name__ == "__main__":
    sys.exit(main())
