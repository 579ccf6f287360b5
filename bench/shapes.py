"""Every app of the comparison on every shape, in process: CPU time per request, no server.

    python -m bench.shapes [--rounds 3] [--requests 2000] [--apps kit,blacksheep,...]

Each app (the matrix's, bench/matrix.py) runs in a fresh interpreter per round, its lifespan
against the development Postgres, and is driven as an ASGI app without sockets: for each
endpoint, the best process CPU time of five repeats of ``--requests`` requests, after a warm-up.
Apps alternate within every round; the median of the rounds is reported, with each endpoint's
cost against the app's own ``GET /json`` (the issue's "within 1.5x of /json") and kit against
the best peer (raw ASGI left out: it is the floor, not a peer). What this leaves out is the
server's share (parsing, the socket, the event loop): ``kit bench`` measures that.
"""

from __future__ import annotations

import argparse
import asyncio
import importlib
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time
from typing import Any

from bench.matrix import ENDPOINTS, FRAMEWORKS

Headers = tuple[tuple[bytes, bytes], ...]
# (endpoint name, method, target, body, headers, the status every app answers)
SHAPES: list[tuple[str, str, str, bytes | None, Headers, int]] = [
    ("json", "GET", "/json", None, (), 200),
    ("plaintext", "GET", "/plaintext", None, (), 200),
    ("validate", "POST", "/validate", ENDPOINTS["validate"].body, (), 200),
    ("item", "GET", "/items/7", None, (), 200),
    ("search", "GET", ENDPOINTS["search"].path, None, (), 200),
    (
        "whoami",
        "GET",
        "/whoami",
        None,
        ((b"x-tenant", b"acme"), (b"cookie", b"theme=dark; session=s-42")),
        200,
    ),
    ("account", "GET", "/accounts/6", None, (), 200),
    ("item_404", "GET", "/items/5000", None, (), 404),
    ("order", "POST", "/orders", ENDPOINTS["order"].body, (), 201),
]
PEERS = ("fastapi", "fastapi_tuned", "starlette", "litestar", "blacksheep")


async def drive(app: Any, requests: int) -> dict[str, float]:
    from bench.inprocess import Driver

    driver = Driver(app)
    await driver.start()
    out: dict[str, float] = {}
    try:
        for name, method, target, body, headers, status in SHAPES:
            for _ in range(50):
                got, _, payload = await driver.exchange(method, target, body, headers)
                if got != status:
                    raise SystemExit(f"{name}: {got} {payload[:200]!r}")
            best = float("inf")
            for _ in range(5):
                began = time.process_time()
                for _ in range(requests):
                    await driver.exchange(method, target, body, headers)
                best = min(best, time.process_time() - began)
            out[name] = best / requests * 1e6
    finally:
        await driver.stop()
    return out


def child(app: str, requests: int) -> None:
    module, _, attr = FRAMEWORKS[app].partition(":")
    target = getattr(importlib.import_module(module), attr)
    print(json.dumps(asyncio.run(drive(target, requests))))


def run(apps: list[str], rounds: int, requests: int) -> dict[tuple[str, str], float]:
    samples: dict[tuple[str, str], list[float]] = {}
    env = {**os.environ, "KIT_ACCESS_LOG": "0", "KIT_DB_POOL_MIN": "1", "KIT_DB_POOL_MAX": "2"}
    if "DATABASE_URL" not in env:
        from kit.db import resolve_database_url
        from kit.settings import Settings

        env["DATABASE_URL"] = resolve_database_url(Settings.from_env())
    with tempfile.TemporaryFile() as logs:
        for _ in range(rounds):
            for app in apps:
                argv = [sys.executable, "-m", "bench.shapes", "--child", app]
                argv += ["--requests", str(requests)]
                proc = subprocess.run(
                    argv, env=env, stdout=subprocess.PIPE, stderr=logs, text=True, check=True
                )
                for endpoint, us in json.loads(proc.stdout.strip().splitlines()[-1]).items():
                    samples.setdefault((app, endpoint), []).append(us)
                print(f"  {app} done", file=sys.stderr)
    return {key: statistics.median(values) for key, values in samples.items()}


def report(results: dict[tuple[str, str], float], apps: list[str]) -> str:
    peers = [a for a in apps if a in PEERS]
    head = "| endpoint | " + " | ".join(apps) + " | kit / json | best peer | kit / best peer |"
    lines = [head, "|---|" + "---:|" * (len(apps) + 3)]
    for name, *_ in SHAPES:
        row = [f"{results[(app, name)]:.1f}" for app in apps]
        kit = results.get(("kit", name))
        if kit is None or not peers:
            lines.append(f"| {name} | " + " | ".join(row) + " | | | |")
            continue
        best = min(peers, key=lambda p: results[(p, name)])
        row += [
            f"{kit / results[('kit', 'json')]:.2f}x",
            f"{best} {results[(best, name)]:.1f}",
            f"{kit / results[(best, name)]:.2f}",
        ]
        lines.append(f"| {name} | " + " | ".join(row) + " |")
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m bench.shapes", description=__doc__)
    parser.add_argument("--rounds", type=int, default=3, help="apps alternate each round")
    parser.add_argument("--requests", type=int, default=2000, help="requests per repeat")
    parser.add_argument("--apps", default=",".join(FRAMEWORKS), help="comma-separated")
    parser.add_argument("--child", choices=list(FRAMEWORKS), help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    if args.child:
        child(args.child, args.requests)
        return 0
    apps = [a for a in args.apps.split(",") if a]
    if not apps or set(apps) - set(FRAMEWORKS):
        parser.error(f"--apps among {', '.join(FRAMEWORKS)}")
    load = os.getloadavg()
    results = run(apps, args.rounds, args.requests)
    print(
        f"\nIn process, CPU us per request (best of 5 x {args.requests}, median of {args.rounds}"
        f" rounds, apps alternating); Python {sys.version.split()[0]}; load average"
        f" {load[0]:.1f} before, {os.getloadavg()[0]:.1f} after\n"
    )
    print(report(results, apps))
    return 0


if __name__ == "__main__":
    sys.exit(main())
