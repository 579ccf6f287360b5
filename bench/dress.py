"""Production settings side by side: what each part of the dress costs kit, FastAPI and Litestar.

    python -m bench.dress [--rounds 3] [--requests 2000] [--frameworks kit,fastapi,litestar]
    python -m bench.dress --server [--duration 5] [--rounds 2]
    python -m bench.dress --instructions [--requests 1000] [--frameworks kit]

One endpoint, ``GET /items/{item_id}?q=`` answering an ``Item``, in each framework bare and
with each part of what its users run in production, alone and all together:

  part      kit                              FastAPI                          Litestar
  metrics   operations (request id,          prometheus-fastapi-instrumentator PrometheusConfig
            metrics, loop monitor)           (+ /metrics)                     middleware
  access    kit's access log (JSON lines)    the server's access log (served  LoggingMiddleware
                                             only: it is the server's part)
  jwt       Security(JWTBearer) with scope   a PyJWT dependency on HTTPBearer a PyJWT guard
  tracing   KIT_OTEL=1, 1% sampling          FastAPIInstrumentor, 1% sampling OpenTelemetryPlugin,
                                                                              1% sampling

Every request carries the same bearer token (HS256, a ``scope`` claim), so the requests are the
same bytes in every variant. Spans go through the SDK's BatchSpanProcessor to an exporter that
drops them; log lines go to a file. In process (the default): each variant is driven as an ASGI
app without sockets in a fresh interpreter, best CPU time of five repeats, variants alternating
in every round, the median of the rounds reported. ``--server``: ``kit serve`` with one worker
pinned to one core, wrk on another, server CPU time per request. ``--instructions``: each
variant in process under valgrind's callgrind, counting only the measured requests
(instrumentation switched on after the warm-up and off before the shutdown); a count that
does not move with the machine's load, to compare two builds on a busy machine.
"""

import argparse
import asyncio
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Annotated, Any

PARTS = ("metrics", "access", "jwt", "tracing")
VARIANTS = ("bare", *PARTS, "dressed")
FRAMEWORKS = ("kit", "fastapi", "litestar")
SECRET = "bench-dress-secret-" + "x" * 45
PATH = "/items/7?q=tea"
READY = "/ready"  # unprotected, in every variant
RATIO = 0.01
FRAMEWORK_ENV = "BENCH_DRESS_FRAMEWORK"
VARIANT_ENV = "BENCH_DRESS_VARIANT"


def parts_of(variant: str) -> frozenset[str]:
    if variant == "bare":
        return frozenset()
    return frozenset(PARTS) if variant == "dressed" else frozenset(variant.split("+"))


def token() -> str:
    import jwt

    claims = {"sub": "bench", "scope": "read", "exp": int(time.time()) + 86_400}
    return jwt.encode(claims, SECRET, algorithm="HS256")


def tracer_provider() -> Any:
    """The SDK with 1% parent-based sampling and an exporter that drops what it batches."""
    from collections.abc import Sequence

    from opentelemetry.sdk.trace import TracerProvider
    from opentelemetry.sdk.trace.export import BatchSpanProcessor, SpanExporter, SpanExportResult
    from opentelemetry.sdk.trace.sampling import ParentBasedTraceIdRatio

    class Drop(SpanExporter):
        def export(self, spans: Sequence[Any]) -> SpanExportResult:
            return SpanExportResult.SUCCESS

    provider = TracerProvider(sampler=ParentBasedTraceIdRatio(RATIO))
    provider.add_span_processor(BatchSpanProcessor(Drop()))
    return provider


def kit_app(parts: frozenset[str]) -> Any:
    from kit import App, Settings
    from kit.security import Claims, JWTBearer, Security
    from services.bench.schemas import Item

    if "tracing" in parts:
        from opentelemetry import trace

        trace.set_tracer_provider(tracer_provider())
    settings = Settings.from_env().with_(
        auth_jwt_secret=SECRET,
        metrics="metrics" in parts,
        access_log="access" in parts,
        otel="tracing" in parts,
        docs=False,
    )
    app = App(title="dress", settings=settings)
    if "jwt" in parts:
        bearer = JWTBearer()

        @app.get("/items/{item_id}")
        async def guarded(
            item_id: int, _: Annotated[Claims, Security(bearer, scopes=["read"])], q: str = ""
        ) -> Item:
            return Item(item_id, q or f"item-{item_id}", item_id * 100)

    else:

        @app.get("/items/{item_id}")
        async def item(item_id: int, q: str = "") -> Item:
            return Item(item_id, q or f"item-{item_id}", item_id * 100)

    @app.get(READY)
    async def ready() -> dict[str, bool]:
        return {"ready": True}

    if not parts & {"metrics", "access"}:
        from bench.ops_overhead import without_operations

        return without_operations(app)
    return app


def fastapi_app(parts: frozenset[str]) -> Any:
    import jwt
    from fastapi import Depends, FastAPI, HTTPException
    from fastapi.security import HTTPAuthorizationCredentials, HTTPBearer

    from bench.apps.models import Item

    app = FastAPI(title="dress", openapi_url=None)
    bearer = HTTPBearer()

    def claims(credentials: Annotated[HTTPAuthorizationCredentials, Depends(bearer)]) -> Any:
        try:
            decoded = jwt.decode(credentials.credentials, SECRET, algorithms=["HS256"])
        except jwt.PyJWTError:
            raise HTTPException(401, "Invalid token") from None
        if "read" not in str(decoded.get("scope", "")).split():
            raise HTTPException(403, "Not enough permissions")
        return decoded

    dependencies = [Depends(claims)] if "jwt" in parts else []

    @app.get("/items/{item_id}", response_model=Item, dependencies=dependencies)
    async def item(item_id: int, q: str = "") -> Item:
        return Item(id=item_id, name=q or f"item-{item_id}", price_cents=item_id * 100)

    @app.get(READY)
    async def ready() -> dict[str, bool]:
        return {"ready": True}

    if "metrics" in parts:
        from prometheus_fastapi_instrumentator import Instrumentator

        Instrumentator().instrument(app).expose(app)
    if "tracing" in parts:
        from opentelemetry.instrumentation.fastapi import FastAPIInstrumentor

        FastAPIInstrumentor.instrument_app(app, tracer_provider=tracer_provider())
    return app


def litestar_app(parts: frozenset[str]) -> Any:
    import jwt
    from litestar import Litestar, get
    from litestar.connection import ASGIConnection
    from litestar.exceptions import NotAuthorizedException, PermissionDeniedException
    from litestar.handlers.base import BaseRouteHandler
    from litestar.params import FromPath, FromQuery

    from services.bench.schemas import Item

    def jwt_guard(connection: ASGIConnection[Any, Any, Any, Any], _: BaseRouteHandler) -> None:
        scheme, _sep, credentials = connection.headers.get("authorization", "").partition(" ")
        if scheme.lower() != "bearer":
            raise NotAuthorizedException()
        try:
            decoded = jwt.decode(credentials, SECRET, algorithms=["HS256"])
        except jwt.PyJWTError:
            raise NotAuthorizedException() from None
        if "read" not in str(decoded.get("scope", "")).split():
            raise PermissionDeniedException()

    @get("/items/{item_id:int}", guards=[jwt_guard] if "jwt" in parts else None)
    async def item(item_id: FromPath[int], q: FromQuery[str] = "") -> Item:
        return Item(item_id, q or f"item-{item_id}", item_id * 100)

    @get(READY)
    async def ready() -> dict[str, bool]:
        return {"ready": True}

    handlers: list[Any] = [item, ready]
    middleware: list[Any] = []
    plugins: list[Any] = []
    if "metrics" in parts:
        from litestar.plugins.prometheus import PrometheusConfig, PrometheusController

        config = PrometheusConfig()
        middleware.append(config.middleware)
        handlers.append(PrometheusController)
    if "access" in parts:
        from litestar.middleware.logging import LoggingMiddlewareConfig

        middleware.append(LoggingMiddlewareConfig().middleware)
    if "tracing" in parts:
        from litestar.plugins.opentelemetry import OpenTelemetryConfig, OpenTelemetryPlugin

        plugins.append(OpenTelemetryPlugin(OpenTelemetryConfig(tracer_provider=tracer_provider())))
    return Litestar(
        route_handlers=handlers, middleware=middleware, plugins=plugins, openapi_config=None
    )


BUILDERS = {"kit": kit_app, "fastapi": fastapi_app, "litestar": litestar_app}


def __getattr__(name: str) -> Any:
    """``bench.dress:app``: the variant named by BENCH_DRESS_FRAMEWORK and BENCH_DRESS_VARIANT."""
    if name != "app":
        raise AttributeError(name)
    framework = os.environ.get(FRAMEWORK_ENV, "kit")
    return BUILDERS[framework](parts_of(os.environ.get(VARIANT_ENV, "bare")))


def applies(framework: str, variant: str, served: bool) -> bool:
    """FastAPI's access log is its server's: only served runs have it."""
    return not (framework == "fastapi" and variant == "access" and not served)


async def drive(app: Any, requests: int, repeats: int) -> float:
    from bench.inprocess import Driver

    driver = Driver(app)
    await driver.start()
    headers = ((b"authorization", f"Bearer {token()}".encode()),)
    try:
        for _ in range(50):  # warm: caches, the token cache, lazily built parts
            status, _, body = await driver.exchange("GET", PATH, None, headers)
            if status != 200:
                raise SystemExit(f"{PATH} answered {status}: {body[:200]!r}")
        best = float("inf")
        for _ in range(repeats):
            began = time.process_time()
            for _ in range(requests):
                await driver.exchange("GET", PATH, None, headers)
            best = min(best, time.process_time() - began)
    finally:
        await driver.stop()
    return best / requests * 1e6


def child(framework: str, variant: str, requests: int) -> None:
    app = BUILDERS[framework](parts_of(variant))
    print(f"{asyncio.run(drive(app, requests, 5)):.2f}")


async def counted(app: Any, requests: int) -> None:
    """Warm up, then say "ready" and wait for a line on stdin (callgrind's instrumentation is
    switched on meanwhile), send ``requests``, say "done" and wait again before stopping."""
    import random

    from bench.inprocess import Driver

    driver = Driver(app)
    await driver.start()
    headers = ((b"authorization", f"Bearer {token()}".encode()),)
    try:
        for _ in range(200):
            status, _, body = await driver.exchange("GET", PATH, None, headers)
            if status != 200:
                raise SystemExit(f"{PATH} answered {status}: {body[:200]!r}")
        random.seed(0)  # the same requests sampled by tracing's ratio in every run
        print("ready", flush=True)
        sys.stdin.readline()
        for _ in range(requests):
            await driver.exchange("GET", PATH, None, headers)
        print("done", flush=True)
        sys.stdin.readline()
    finally:
        await driver.stop()


def instructions(args: argparse.Namespace) -> dict[tuple[str, str], float]:
    """Instructions per request of each variant, under callgrind (one run each: the count
    is the same every time)."""
    results: dict[tuple[str, str], float] = {}
    with tempfile.TemporaryDirectory() as tmp:
        for framework in args.framework_names:
            for variant in args.variant_names:
                if not applies(framework, variant, served=False):
                    continue
                out = Path(tmp) / f"{framework}-{variant}.callgrind"
                argv = ["valgrind", "--tool=callgrind", "--instr-atstart=no"]
                argv += [f"--callgrind-out-file={out}", sys.executable, "-m", "bench.dress"]
                argv += ["--count", framework, variant, "--requests", str(args.requests)]
                env = {**os.environ, "KIT_LOG_FORMAT": "json", "KIT_OTEL": "0"}
                env["PYTHONHASHSEED"] = "0"
                with (Path(tmp) / "stderr").open("w") as logs:
                    proc = subprocess.Popen(
                        argv,
                        env=env,
                        stdin=subprocess.PIPE,
                        stdout=subprocess.PIPE,
                        stderr=logs,
                        text=True,
                    )
                    assert proc.stdin is not None
                    assert proc.stdout is not None
                    for expected, switch in (("ready", "on"), ("done", "off")):
                        line = proc.stdout.readline().strip()
                        if line != expected:
                            proc.kill()
                            raise SystemExit(f"{framework} {variant}: {line or 'no answer'}")
                        control = ["callgrind_control", "-i", switch, str(proc.pid)]
                        subprocess.run(control, check=True, capture_output=True, timeout=60)
                        proc.stdin.write("\n")
                        proc.stdin.flush()
                    proc.wait(timeout=300)
                totals = [
                    line.split()[1]
                    for line in out.read_text().splitlines()
                    if line.startswith(("summary:", "totals:"))
                ]
                results[(framework, variant)] = per = int(totals[-1]) / args.requests
                print(f"  {framework:<9} {variant:<8} {per:10.0f} instructions", file=sys.stderr)
    return results


def inprocess(args: argparse.Namespace) -> dict[tuple[str, str], float]:
    samples: dict[tuple[str, str], list[float]] = {}
    with tempfile.TemporaryFile() as logs:
        for _ in range(args.rounds):
            for framework in args.framework_names:
                for variant in args.variant_names:
                    if not applies(framework, variant, served=False):
                        continue
                    argv = [sys.executable, "-m", "bench.dress", "--child", framework, variant]
                    env = {**os.environ, "KIT_LOG_FORMAT": "json", "KIT_OTEL": "0"}
                    env["BENCH_DRESS_REQUESTS"] = str(args.requests)
                    proc = subprocess.run(
                        argv, env=env, stdout=subprocess.PIPE, stderr=logs, text=True, check=True
                    )
                    us = float(proc.stdout.strip().splitlines()[-1])
                    samples.setdefault((framework, variant), []).append(us)
                    print(f"  {framework:<9} {variant:<8} {us:8.2f} us", file=sys.stderr)
    return {key: statistics.median(values) for key, values in samples.items()}


def served(args: argparse.Namespace) -> dict[tuple[str, str], float]:
    from bench.ops_overhead import cpu_seconds
    from kit.benchmark import wrk
    from kit.benchmark.server import BenchServer
    from kit.benchmark.study import pin_prefix

    tool = wrk.find()
    header = ["-H", f"Authorization: Bearer {token()}"]
    prefix = pin_prefix([args.server_cpu])
    samples: dict[tuple[str, str], list[float]] = {}
    with tempfile.TemporaryDirectory() as tmp:
        for _ in range(args.rounds):
            for framework in args.framework_names:
                for variant in args.variant_names:
                    env = {
                        "KIT_RUNTIME": args.runtime,
                        "KIT_WORKERS": "1",
                        "KIT_LOG_FORMAT": "json",
                        "KIT_OTEL": "0",
                        FRAMEWORK_ENV: framework,
                        VARIANT_ENV: variant,
                    }
                    server = BenchServer(
                        "bench.dress:app",
                        prefix=prefix,
                        env=env,
                        log=Path(tmp) / f"{framework}-{variant}.log",
                        ready_path=READY,
                    )
                    if framework == "fastapi":  # granian itself: its access log is the part
                        argv = [*prefix, sys.executable, "-m", "granian", "--interface", "asgi"]
                        argv += ["--host", "127.0.0.1", "--port", str(server.port)]
                        argv += ["--workers", "1", "--loop", "uvloop"]
                        if "access" in parts_of(variant):
                            argv.append("--access-log")
                        server.command = [*argv, "bench.dress:app"]
                        server.announcement = None  # granian's CLI: ready when READY answers
                    url = f"{server.url}{PATH}"

                    def load(seconds: int, url: str = url) -> wrk.WrkResult:
                        cmd = wrk.command(
                            tool,
                            url,
                            connections=args.connections,
                            seconds=seconds,
                            cpus=[args.load_cpu],
                        )
                        return wrk.run([*cmd[:-1], *header, cmd[-1]], seconds=seconds)

                    with server:
                        load(args.warmup)
                        before = cpu_seconds(server)
                        result = load(args.duration)
                        cpu = cpu_seconds(server) - before
                    if result.non_2xx:
                        raise SystemExit(f"{framework} {variant}: {result.non_2xx} non-2xx answers")
                    us = cpu / max(1, result.requests) * 1e6
                    samples.setdefault((framework, variant), []).append(us)
                    print(
                        f"  {framework:<9} {variant:<8} {result.rps:>8.0f} req/s {us:7.1f} us/req",
                        file=sys.stderr,
                    )
    return {key: statistics.median(values) for key, values in samples.items()}


def report(
    results: dict[tuple[str, str], float],
    frameworks: list[str],
    variants: list[str],
    number: str = "{:.1f}",
) -> str:
    combinations = [v for v in variants if "+" in v]
    lines = [
        "| framework | bare | " + " | ".join(f"+{p}" for p in PARTS) + " | dressed | dress |",
        "|---|---:|" + "---:|" * len(PARTS) + "---:|---:|",
    ]
    for framework in frameworks:
        bare = results[(framework, "bare")]
        row = [number.format(bare)]
        for part in PARTS:
            us = results.get((framework, part))
            row.append("n/a" if us is None else number.replace("{:", "{:+").format(us - bare))
        dressed = results[(framework, "dressed")]
        row += [number.format(dressed), f"{100 * (dressed / bare - 1):+.0f}%"]
        lines.append(f"| {framework} | " + " | ".join(row) + " |")
    for variant in combinations:  # parts together, to see what they cost each other
        for framework in frameworks:
            if (framework, variant) in results:
                added = results[(framework, variant)] - results[(framework, "bare")]
                lines.append(f"\n{framework} +{variant}: {number.format(added)} over bare")
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m bench.dress", description=__doc__)
    parser.add_argument("--rounds", type=int, default=3, help="variants alternate each round")
    parser.add_argument("--requests", type=int, default=2000, help="requests per repeat")
    parser.add_argument("--frameworks", default=",".join(FRAMEWORKS), help="comma-separated")
    parser.add_argument("--variants", default=",".join(VARIANTS), help="comma-separated")
    parser.add_argument("--server", action="store_true", help="serve and load with wrk")
    parser.add_argument("--runtime", default="granian", choices=["granian"])
    parser.add_argument("--duration", type=int, default=5, help="seconds measured per cell")
    parser.add_argument("--warmup", type=int, default=2)
    parser.add_argument("--connections", type=int, default=64)
    parser.add_argument("--server-cpu", type=int, default=0)
    parser.add_argument("--load-cpu", type=int, default=1)
    parser.add_argument(
        "--instructions", action="store_true", help="count instructions under callgrind"
    )
    parser.add_argument(
        "--child", nargs=2, metavar=("FRAMEWORK", "VARIANT"), help=argparse.SUPPRESS
    )
    parser.add_argument(
        "--count", nargs=2, metavar=("FRAMEWORK", "VARIANT"), help=argparse.SUPPRESS
    )
    args = parser.parse_args(argv)
    if args.child:
        framework, variant = args.child
        child(framework, variant, int(os.environ.get("BENCH_DRESS_REQUESTS", args.requests)))
        return 0
    if args.count:
        framework, variant = args.count
        app = BUILDERS[framework](parts_of(variant))
        try:  # the loop kit serve runs on
            import uvloop

            uvloop.run(counted(app, args.requests))
        except ImportError:
            asyncio.run(counted(app, args.requests))
        return 0
    args.framework_names = [f for f in args.frameworks.split(",") if f]
    if not args.framework_names or set(args.framework_names) - set(FRAMEWORKS):
        parser.error(f"--frameworks among {', '.join(FRAMEWORKS)}")
    args.variant_names = [v for v in args.variants.split(",") if v]
    known = set(VARIANTS) | {v for v in args.variant_names if set(v.split("+")) <= set(PARTS)}
    if {"bare", "dressed"} - set(args.variant_names) or set(args.variant_names) - known:
        parser.error(
            f"--variants among {', '.join(VARIANTS)} (or parts joined by +),"
            " bare and dressed included"
        )
    load = os.getloadavg()
    if args.instructions:
        results = instructions(args)
        print(
            f"\nGET {PATH} with a bearer JWT; in process under callgrind, {args.requests}"
            " requests per variant after 200 warm-up requests; instructions per request\n"
        )
        print(report(results, args.framework_names, args.variant_names, "{:.0f}"))
        return 0
    results = served(args) if args.server else inprocess(args)
    where = (
        f"served by {args.runtime} (FastAPI: granian's own CLI), 1 worker on CPU"
        f" {args.server_cpu}, wrk -c{args.connections}"
        f" on CPU {args.load_cpu}, {args.duration} s per cell; server CPU us per request"
        if args.server
        else f"in process, best of 5 x {args.requests} requests per variant; CPU us per request"
    )
    print(
        f"\nGET {PATH} with a bearer JWT; {where}; median of {args.rounds} rounds, variants"
        f" alternating; load average {load[0]:.1f} before, {os.getloadavg()[0]:.1f} after\n"
    )
    print(report(results, args.framework_names, args.variant_names))
    return 0


if __name__ == "__main__":
    sys.exit(main())
