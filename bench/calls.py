"""Python function calls per request: a count that does not move between runs.

    python -m bench.calls [--requests 800] [--endpoints json,plaintext,validate,db,fortunes]
                          [--apps raw,kit,kit+ops,blacksheep]
    python -m bench.calls --endpoints json,item,search,whoami,account,item_404,order

CPU time per request moves by 10 to 20% from run to run on a shared machine, more than a small
change to the request path saves. The number of Python calls a request makes (as cProfile
counts them: every call of a Python or built-in function, and every resumption of a suspended
coroutine) is the same in every run, so it shows what a change removed even when the clock
cannot. It is a proxy, not a cost: calls differ in price, and C code inside a call is not
counted. Served figures come from ``kit bench``, ``bench.ops_overhead`` and
``bench.db_overhead``.

Apps: ``raw`` (bench/apps/raw.py), ``kit`` (services/bench without its operations part: request
ids, metrics, access log) and ``kit+ops`` (services/bench as served, access log on), and when
asked (``--apps``) ``blacksheep`` (bench/apps/blacksheep.py, the fastest peer), each driven in
process (bench.inprocess's driver) in a process of its own, so that one app's logging set-up
does not reach the next. The database endpoints need ``DATABASE_URL`` or the
embedded PostgreSQL.
"""

from __future__ import annotations

import argparse
import asyncio
import cProfile
import importlib
import json
import os
import pstats
import subprocess
import sys
from typing import Any

APPS = ("raw", "kit", "kit+ops", "blacksheep")
DEFAULT_APPS = APPS[:3]
BODY = b'{"name":"Ada Lovelace","email":"ADA@example.com","age":36,"tags":["math","poetry"]}'
Headers = tuple[tuple[bytes, bytes], ...]
# endpoint -> (method, target, body, headers); the REST shapes as bench.shapes sends them
ENDPOINTS: dict[str, tuple[str, str, bytes | None, Headers]] = {
    "json": ("GET", "/json", None, ()),
    "plaintext": ("GET", "/plaintext", None, ()),
    "validate": ("POST", "/validate", BODY, ()),
    "db": ("GET", "/db", None, ()),
    "fortunes": ("GET", "/fortunes", None, ()),
}
DATABASE = ("db", "fortunes")
DEFAULT_ENDPOINTS = list(ENDPOINTS)


def _rest_shapes() -> None:
    from bench.shapes import SHAPES

    for name, method, target, body, headers, _ in SHAPES:
        ENDPOINTS.setdefault(name, (method, target, body, headers))


_rest_shapes()
CLIENTS = 8


def load_app(name: str) -> Any:
    if name in ("raw", "blacksheep"):
        return importlib.import_module(f"bench.apps.{name}").app
    app = importlib.import_module("services.bench.app").app
    if name == "kit":
        from bench.ops_overhead import without_operations

        return without_operations(app)
    return app


async def requests_in_turn(
    driver: Any, method: str, target: str, body: bytes | None, headers: Headers, n: int
) -> None:
    if "?" in target or headers:  # (exchange: a few calls more, the same in every app)
        for _ in range(n):
            await driver.exchange(method, target, body, headers)
    else:
        for _ in range(n):
            await driver.request(method, target, body)


async def count(name: str, endpoints: list[str], requests: int) -> dict[str, float]:
    """Calls per request for each endpoint of app ``name``, in this process."""
    from bench.inprocess import Driver

    driver = Driver(load_app(name))
    await driver.start()
    calls: dict[str, float] = {}
    try:
        for endpoint in endpoints:
            method, target, body, headers = ENDPOINTS[endpoint]
            await requests_in_turn(driver, method, target, body, headers, 50)  # warm: caches, pool
            profile = cProfile.Profile()
            profile.enable()
            # CLIENTS at a time, as a server has several requests in flight
            await asyncio.gather(
                *(
                    requests_in_turn(driver, method, target, body, headers, requests // CLIENTS)
                    for _ in range(CLIENTS)
                )
            )
            profile.disable()
            served = requests // CLIENTS * CLIENTS
            calls[endpoint] = pstats.Stats(profile).total_calls / served  # type: ignore[attr-defined]
    finally:
        await driver.stop()
    return calls


def child(name: str, endpoints: list[str], requests: int) -> int:
    os.environ["KIT_MIGRATE"] = "0"  # the parent applied them
    try:  # the loop kit serve runs on; its internals are C, so they are not counted
        import uvloop

        calls = uvloop.run(count(name, endpoints, requests))
    except ImportError:
        calls = asyncio.run(count(name, endpoints, requests))
    print(json.dumps(calls))
    return 0


def measure(
    name: str, endpoints: list[str], requests: int, env: dict[str, str]
) -> dict[str, float]:
    argv = [sys.executable, "-m", "bench.calls", "--child", name]
    argv += ["--endpoints", ",".join(endpoints), "--requests", str(requests)]
    proc = subprocess.run(argv, env=env, capture_output=True, text=True, timeout=300)
    if proc.returncode != 0:
        raise SystemExit(f"{name}: {proc.stderr.strip().splitlines()[-1:]}")
    result: dict[str, float] = json.loads(proc.stdout.strip().splitlines()[-1])
    return result


def report(counts: dict[str, dict[str, float]], endpoints: list[str]) -> str:
    apps = list(counts)
    # the differences whose two apps were counted: (heading, app, minus app)
    differences = [
        (heading, a, b)
        for heading, a, b in (("kit - raw", "kit", "raw"), ("ops", "kit+ops", "kit"))
        if a in counts and b in counts
    ]
    lines = [
        "| endpoint | " + " | ".join(apps + [heading for heading, _, _ in differences]) + " |",
        "| :-- |" + " --: |" * (len(apps) + len(differences)),
    ]
    for endpoint in endpoints:
        row = [f"{counts[name][endpoint]:.1f}" for name in apps]
        row += [f"{counts[a][endpoint] - counts[b][endpoint]:+.1f}" for _, a, b in differences]
        lines.append(f"| {endpoint} | " + " | ".join(row) + " |")
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m bench.calls", description=__doc__)
    parser.add_argument("--requests", type=int, default=800, help="requests counted per cell")
    parser.add_argument(
        "--endpoints", default=",".join(DEFAULT_ENDPOINTS), help=f"among {', '.join(ENDPOINTS)}"
    )
    parser.add_argument("--apps", default=",".join(DEFAULT_APPS), help="comma-separated")
    parser.add_argument("--child", choices=APPS, help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    endpoints = [e.strip() for e in args.endpoints.split(",") if e.strip()]
    unknown = sorted(set(endpoints) - set(ENDPOINTS))
    if unknown or not endpoints:
        parser.error(f"endpoints must be among {', '.join(ENDPOINTS)}")
    apps = [a.strip() for a in args.apps.split(",") if a.strip()]
    if not apps or not set(apps) <= set(APPS):
        parser.error(f"apps must be among {', '.join(APPS)}")
    if args.requests < 1:
        parser.error("--requests must be >= 1")
    if args.child:
        return child(args.child, endpoints, args.requests)
    env = dict(os.environ)
    if any(e in DATABASE for e in endpoints):
        from bench.db_overhead import MIGRATIONS
        from kit.db import apply_migrations, resolve_database_url
        from kit.settings import Settings

        # DATABASE_URL, or the embedded server, started once here for every child
        env["DATABASE_URL"] = url = resolve_database_url(Settings.from_env())
        asyncio.run(apply_migrations(url, MIGRATIONS))
    counts = {name: measure(name, endpoints, args.requests, env) for name in apps}
    print(
        f"Python calls per request (cProfile's count, resumptions included), {args.requests}"
        f" requests per cell, in process; {sys.implementation.name} {sys.version.split()[0]}\n"
    )
    print(report(counts, endpoints))
    return 0


if __name__ == "__main__":
    sys.exit(main())
