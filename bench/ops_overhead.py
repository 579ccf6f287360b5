"""What kit's operations cost: the same service with them off, at their defaults, and all on.

    python -m bench.ops_overhead [--runtime granian] [--duration 8] [--rounds 2]

Variants, served one after another by ``kit serve`` pinned to one core, loaded by wrk on another:
  off       kit's stack without the operations middleware and loop monitor (logging is set up)
  defaults  request ids, one JSON access-log line per request, metrics, loop-lag monitor
  all       defaults plus load shedding, a per-client rate limit and a request timeout,
            with limits high enough that no request is refused
Access logs go to a file, as a container's log collector would take them.

On a busy machine req/s swings by tens of percent between runs; the server's CPU time per
request swings less, and ``--inprocess`` (each variant driven as an ASGI app without sockets,
best CPU time of several repeats) isolates kit's own cost best.
"""

from __future__ import annotations

import argparse
import asyncio
import importlib
import os
import statistics
import subprocess
import sys
import tempfile
import time
from dataclasses import replace
from pathlib import Path
from typing import Any, NamedTuple

import psutil

from kit.benchmark import wrk
from kit.benchmark.cli import add_runtime_option
from kit.benchmark.server import BenchServer
from kit.benchmark.study import pin_prefix

APP = "services.bench.app:app"
VARIANTS: dict[str, tuple[str, dict[str, str]]] = {
    "off": ("bench.ops_overhead:off", {}),
    "defaults": (APP, {}),
    "all": (
        APP,
        {
            "KIT_MAX_CONCURRENCY": "10000",
            "KIT_RATE_LIMIT": "10000000",
            "KIT_RATE_BURST": "10000000",
            "KIT_REQUEST_TIMEOUT": "30",
        },
    ),
}
ENDPOINTS = ("/json", "/db")


def without_operations(app: Any) -> Any:
    """``app`` (a kit App not yet serving) without its operations middleware and lifespan
    (request ids, access log, metrics, loop monitor); the rest of kit's stack is unchanged and
    logging is still configured, so the two variants differ only by what operations do."""
    app.parts = [
        replace(part, middleware=(), lifespans=()) if part.name == "operations" else part
        for part in app.parts
    ]
    return app


def __getattr__(name: str) -> Any:
    """``bench.ops_overhead:off``: the bench service without kit's operations middleware."""
    if name != "off":
        raise AttributeError(name)
    from services.bench.app import app

    return without_operations(app)


class Cell(NamedTuple):
    rps: float
    cpu_us: float  # server CPU time (user + system, all its processes) per request
    errors: int = 0


def cpu_seconds(server: BenchServer) -> float:
    root = psutil.Process(server.pid)
    total = 0.0
    for proc in [root, *root.children(recursive=True)]:
        times = proc.cpu_times()
        total += times.user + times.system
    return total


def loaded(server: BenchServer, url: str, args: argparse.Namespace) -> tuple[wrk.WrkResult, float]:
    """Warm ``url`` up, then measure it: wrk's result and the server's CPU seconds meanwhile."""
    tool = wrk.find()

    def load(seconds: int) -> wrk.WrkResult:
        cmd = wrk.command(
            tool, url, connections=args.connections, seconds=seconds, cpus=[args.load_cpu]
        )
        return wrk.run(cmd, seconds=seconds)

    load(args.warmup)
    before = cpu_seconds(server)
    result = load(args.duration)
    return result, cpu_seconds(server) - before


def measure(variant: str, endpoint: str, args: argparse.Namespace, tmp: Path) -> Cell:
    target, extra = VARIANTS[variant]
    env = {"KIT_RUNTIME": args.runtime, "KIT_WORKERS": "1", "KIT_LOG_FORMAT": "json", **extra}
    with BenchServer(
        target,
        prefix=pin_prefix([args.server_cpu]),
        env=env,
        log=tmp / f"{variant}{endpoint.replace('/', '-')}.log",
        ready_path=endpoint,
    ) as server:
        result, cpu = loaded(server, server.url + endpoint, args)
        errors = result.non_2xx + result.socket_errors
        return Cell(result.rps, cpu / max(1, result.requests) * 1e6, errors)


async def _drive(app: Any, path: str, requests: int, repeats: int) -> float:
    """Best CPU microseconds per request of ``repeats`` runs of ``requests`` GETs."""
    scope = {
        "type": "http",
        "asgi": {"version": "3.0"},
        "http_version": "1.1",
        "method": "GET",
        "scheme": "http",
        "path": path,
        "raw_path": path.encode(),
        "query_string": b"",
        "root_path": "",
        "headers": [(b"host", b"bench"), (b"user-agent", b"wrk"), (b"accept", b"*/*")],
        "client": ("127.0.0.1", 50000),
        "server": ("127.0.0.1", 8000),
        "state": {},
    }

    async def receive() -> dict[str, Any]:
        return {"type": "http.request", "body": b"", "more_body": False}

    async def send(message: dict[str, Any]) -> None:
        pass

    best = float("inf")
    for _ in range(repeats):
        started = time.process_time()
        for _ in range(requests):
            await app(dict(scope), receive, send)
        best = min(best, time.process_time() - started)
    return best / requests * 1e6


def inprocess_child(variant: str) -> None:
    """Runs in a fresh interpreter with the variant's environment; prints us/request."""
    target = VARIANTS[variant][0]
    module, _, attr = target.partition(":")
    app = getattr(importlib.import_module(module), attr)
    print(f"{asyncio.run(_drive(app, '/json', 5000, 9)):.2f}")


def inprocess(rounds: int, variants: list[str]) -> None:
    results: dict[str, list[float]] = {}
    with tempfile.TemporaryFile() as logs:
        for _ in range(rounds):
            for variant in variants:
                extra = VARIANTS[variant][1]
                proc = subprocess.run(
                    [sys.executable, "-m", "bench.ops_overhead", "--child", variant],
                    env={**os.environ, "KIT_LOG_FORMAT": "json", **extra},
                    stdout=subprocess.PIPE,
                    stderr=logs,  # the access lines, as a log file would take them
                    text=True,
                    check=True,
                )
                results.setdefault(variant, []).append(float(proc.stdout))
    best = {v: min(r) for v, r in results.items()}
    print("\nGET /json driven in process (no sockets, no server), best CPU us/request\n")
    print("| variant | us/request | added by kit's operations |")
    print("|---|---|---|")
    for variant, us in best.items():
        print(f"| {variant} | {us:.2f} | {us - best['off']:+.2f} us |")


def median_cell(cells: list[Cell]) -> Cell:
    return Cell(
        statistics.median(c.rps for c in cells),
        statistics.median(c.cpu_us for c in cells),
        sum(c.errors for c in cells),
    )


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m bench.ops_overhead", description=__doc__)
    add_runtime_option(parser)
    parser.add_argument("--duration", type=int, default=8, help="seconds measured per cell")
    parser.add_argument("--warmup", type=int, default=2)
    parser.add_argument("--rounds", type=int, default=2, help="variants alternate each round")
    parser.add_argument("--connections", type=int, default=64)
    parser.add_argument("--server-cpu", type=int, default=0)
    parser.add_argument("--load-cpu", type=int, default=1)
    parser.add_argument("--inprocess", action="store_true", help="no server: drive the ASGI app")
    parser.add_argument(
        "--variants",
        default=",".join(VARIANTS),
        help="comma-separated, from: " + ", ".join(VARIANTS),
    )
    parser.add_argument("--endpoints", default=",".join(ENDPOINTS), help="comma-separated paths")
    parser.add_argument("--child", choices=list(VARIANTS), help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    variants = [v for v in args.variants.split(",") if v]
    endpoints = [e for e in args.endpoints.split(",") if e]
    unknown = sorted(set(variants) - set(VARIANTS))
    if unknown or "off" not in variants:
        parser.error(f"--variants must include off and name only {', '.join(VARIANTS)}")
    if args.child:
        inprocess_child(args.child)
        return 0
    if args.inprocess:
        inprocess(args.rounds, variants)
        return 0
    cells: dict[tuple[str, str], list[Cell]] = {}
    load_before = os.getloadavg()
    with tempfile.TemporaryDirectory() as tmp:
        for _ in range(args.rounds):
            for endpoint in endpoints:
                for variant in variants:
                    cell = measure(variant, endpoint, args, Path(tmp))
                    cells.setdefault((variant, endpoint), []).append(cell)
                    print(
                        f"  {variant:<8} GET {endpoint:<5} {cell.rps:>8.0f} req/s"
                        f" {cell.cpu_us:>7.1f} us CPU/req {cell.errors} errors",
                        file=sys.stderr,
                    )
    print(
        f"\n{args.runtime}, 1 worker pinned to CPU {args.server_cpu}, wrk -c{args.connections} on"
        f" CPU {args.load_cpu}, {args.rounds} rounds x {args.duration} s per cell, medians;"
        " cost = 1 - off/variant of server CPU per request (what throughput on a saturated"
        " core loses), and of req/s; load average %.2f before, %.2f after\n"
        % (load_before[0], os.getloadavg()[0])
    )
    print("| endpoint | variant | req/s | server CPU us/req | cost (CPU) | cost (req/s) | errors |")
    print("|---|---|---|---|---|---|---|")
    for endpoint in endpoints:
        med = {v: median_cell(cells[(v, endpoint)]) for v in variants}
        for variant, cell in med.items():
            cpu_cost = 100 * (1 - med["off"].cpu_us / cell.cpu_us)
            rps_cost = 100 * (1 - cell.rps / med["off"].rps)
            print(
                f"| GET {endpoint} | {variant} | {cell.rps:.0f} | {cell.cpu_us:.1f} "
                f"| {cpu_cost:.1f}% | {rps_cost:.1f}% | {cell.errors} |"
            )
    return 0


if __name__ == "__main__":
    sys.exit(main())
