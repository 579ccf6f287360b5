"""What tracing and the metrics API cost, measured in process (no sockets, no server).

    python -m bench.obs_overhead [--rounds 3] [--requests 3000]

Tracing: the bench service's GET /json and GET /db (one query) driven as an ASGI app, its
lifespan running against the development Postgres, in a fresh interpreter per variant:
  off       KIT_OTEL unset (nothing of OpenTelemetry imported)
  10%       KIT_OTEL=1, parentbased_traceidratio at 0.1
  100%      KIT_OTEL=1, always_on
Spans go through the SDK's BatchSpanProcessor to an exporter that drops them: the SDK's cost in
the request path and its batching thread, without OTLP's encoding and network (which a
collector on localhost would add, on the exporter's thread).

``--server``: the same variants served by ``kit serve`` (one worker pinned to one core, wrk on
another), reporting req/s and the server's CPU time per request.

Metrics: kit's hand-written per-request series (one ``Registry.observe`` plus the in-flight
gauge) against the same series in prometheus-client (counter + histogram + gauge), per request.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import statistics
import subprocess
import sys
import tempfile
import time
import timeit
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from kit.benchmark.cli import add_runtime_option

VARIANTS: dict[str, dict[str, str]] = {
    "off": {},
    "10%": {
        "KIT_OTEL": "1",
        "OTEL_TRACES_SAMPLER": "parentbased_traceidratio",
        "OTEL_TRACES_SAMPLER_ARG": "0.1",
    },
    "100%": {"KIT_OTEL": "1", "OTEL_TRACES_SAMPLER": "always_on"},
}
ENDPOINTS = ("/json", "/db")


def _scope(path: str) -> dict[str, Any]:
    return {
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
    }


async def _drive(app: Any, path: str, requests: int, repeats: int) -> float:
    """Best CPU microseconds per request (this process, all threads) of ``repeats`` runs."""
    statuses: list[int] = []

    async def receive() -> dict[str, Any]:
        return {"type": "http.request", "body": b"", "more_body": False}

    async def send(message: dict[str, Any]) -> None:
        if message["type"] == "http.response.start":
            statuses.append(message["status"])

    state: dict[str, Any] = {}
    async with app.router.lifespan_context(app) as started:
        state.update(started or {})
        scope = {**_scope(path), "state": state}
        best = float("inf")
        for _ in range(repeats):
            began = time.process_time()
            for _ in range(requests):
                await app(dict(scope), receive, send)
            best = min(best, time.process_time() - began)
    if set(statuses) != {200}:
        raise SystemExit(f"{path}: statuses {sorted(set(statuses))}")
    return best / requests * 1e6


def __getattr__(name: str) -> Any:
    """``bench.obs_overhead:app``: the bench service, spans (if on) dropped after batching."""
    if name != "app":
        raise AttributeError(name)
    _install_dropping_provider()
    from services.bench.app import app

    return app


def _install_dropping_provider() -> None:
    if os.environ.get("KIT_OTEL"):
        from opentelemetry import trace
        from opentelemetry.sdk.trace import TracerProvider
        from opentelemetry.sdk.trace.export import (
            BatchSpanProcessor,
            SpanExporter,
            SpanExportResult,
        )

        class Drop(SpanExporter):
            def export(self, spans: Sequence[Any]) -> SpanExportResult:
                return SpanExportResult.SUCCESS

        provider = TracerProvider()  # the sampler from OTEL_TRACES_SAMPLER(_ARG)
        provider.add_span_processor(BatchSpanProcessor(Drop()))
        trace.set_tracer_provider(provider)


def child(path: str, requests: int) -> None:
    _install_dropping_provider()
    from services.bench.app import app

    print(f"{asyncio.run(_drive(app, path, requests, 5)):.2f}")


def tracing(rounds: int, requests: int) -> None:
    results: dict[tuple[str, str], list[float]] = {}
    with tempfile.TemporaryFile() as logs:
        for _ in range(rounds):
            for path in ENDPOINTS:
                for variant, extra in VARIANTS.items():
                    proc = subprocess.run(
                        [sys.executable, "-m", "bench.obs_overhead", "--child", path],
                        env={
                            **os.environ,
                            "KIT_LOG_FORMAT": "json",
                            "KIT_REQUESTS": str(requests),
                            **extra,
                        },
                        stdout=subprocess.PIPE,
                        stderr=logs,
                        text=True,
                        check=True,
                    )
                    results.setdefault((variant, path), []).append(float(proc.stdout))
    print("\nTracing, driven in process, best CPU us/request (all threads of the process)\n")
    print("| endpoint | tracing | us/request | added by tracing |")
    print("|---|---|---|---|")
    for path in ENDPOINTS:
        off = min(results[("off", path)])
        for variant in VARIANTS:
            us = min(results[(variant, path)])
            print(f"| GET {path} | {variant} | {us:.2f} | {us - off:+.2f} us |")


def served(args: argparse.Namespace) -> None:
    from bench.ops_overhead import loaded
    from kit.benchmark.server import BenchServer
    from kit.benchmark.study import pin_prefix

    cells: dict[tuple[str, str], list[tuple[float, float]]] = {}
    with tempfile.TemporaryDirectory() as tmp:
        for _ in range(args.rounds):
            for path in ENDPOINTS:
                for variant, extra in VARIANTS.items():
                    env = {"KIT_RUNTIME": args.runtime, "KIT_WORKERS": "1", **extra}
                    with BenchServer(
                        "bench.obs_overhead:app",
                        prefix=pin_prefix([args.server_cpu]),
                        env=env,
                        log=Path(tmp) / f"{variant.rstrip('%')}-{path[1:]}.log",
                        ready_path=path,
                    ) as server:
                        result, cpu = loaded(server, server.url + path, args)
                    us = cpu / max(1, result.requests) * 1e6
                    cells.setdefault((variant, path), []).append((result.rps, us))
                    print(
                        f"  {variant:<5} GET {path:<5} {result.rps:>8.0f} req/s"
                        f" {us:>7.1f} us CPU/req",
                        file=sys.stderr,
                    )
    print(
        f"\n{args.runtime}, 1 worker pinned to CPU {args.server_cpu}, wrk -c{args.connections} on"
        f" CPU {args.load_cpu}, {args.rounds} rounds x {args.duration} s, medians\n"
    )
    print("| endpoint | tracing | req/s | server CPU us/req | added CPU/req |")
    print("|---|---|---|---|---|")
    for path in ENDPOINTS:
        off = statistics.median(us for _, us in cells[("off", path)])
        for variant in VARIANTS:
            rps = statistics.median(r for r, _ in cells[(variant, path)])
            us = statistics.median(u for _, u in cells[(variant, path)])
            print(
                f"| GET {path} | {variant} | {rps:.0f} | {us:.1f} | {100 * (us / off - 1):+.1f}% |"
            )


def metrics(number: int) -> None:
    from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram

    from kit.ops.metrics import BUCKETS, Registry

    kit = Registry()

    def kit_request() -> None:
        kit.in_flight += 1
        kit.in_flight -= 1
        kit.observe("GET", "/items/{item_id}", 200, 0.0042)

    registry = CollectorRegistry()
    labels = ("method", "route", "status")
    total = Counter("http_requests", "Requests.", labels, registry=registry)
    duration = Histogram("http_duration", "Time.", labels, buckets=BUCKETS, registry=registry)
    in_flight = Gauge("http_in_flight", "In flight.", registry=registry)

    def prometheus_request() -> None:
        in_flight.inc()
        in_flight.dec()
        total.labels("GET", "/items/{item_id}", 200).inc()
        duration.labels("GET", "/items/{item_id}", 200).observe(0.0042)

    print("\nPer-request series, best of 7 x", number, "calls\n")
    print("| series | ns/request |")
    print("|---|---|")
    for name, fn in (
        ("kit (hand-written)", kit_request),
        ("prometheus-client", prometheus_request),
    ):
        best = min(timeit.repeat(fn, number=number, repeat=7)) / number * 1e9
        print(f"| {name} | {best:.0f} |")


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m bench.obs_overhead", description=__doc__)
    parser.add_argument("--rounds", type=int, default=3, help="variants alternate each round")
    parser.add_argument("--requests", type=int, default=3000, help="requests per repeat")
    parser.add_argument("--server", action="store_true", help="serve and load with wrk")
    add_runtime_option(parser)
    parser.add_argument("--duration", type=int, default=8, help="seconds measured per cell")
    parser.add_argument("--warmup", type=int, default=2)
    parser.add_argument("--connections", type=int, default=64)
    parser.add_argument("--server-cpu", type=int, default=0)
    parser.add_argument("--load-cpu", type=int, default=1)
    parser.add_argument("--child", choices=ENDPOINTS, help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    if args.child:
        child(args.child, int(os.environ.get("KIT_REQUESTS", args.requests)))
        return 0
    if args.server:
        served(args)
        return 0
    metrics(200_000)
    tracing(args.rounds, args.requests)
    return 0


if __name__ == "__main__":
    sys.exit(main())
