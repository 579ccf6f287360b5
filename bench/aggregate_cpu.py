"""What ``GET /aggregate`` (four concurrent upstream calls) costs each app in server CPU time.

    python -m bench.aggregate_cpu [--duration 8] [--rounds 2] [--connections 16]

``kit bench --endpoints aggregate`` reports requests/s, which the shared upstream bounds for
every app alike; the server's CPU time per request shows what the app and its HTTP client cost.
Each app is served by ``kit serve`` (granian) pinned to one core and loaded by wrk on the
other; ``bench.upstream`` runs unpinned, as Postgres does in the other benchmarks.
"""

from __future__ import annotations

import argparse
import statistics
import tempfile
from pathlib import Path

from bench.matrix import FRAMEWORKS
from bench.ops_overhead import loaded
from kit.benchmark.server import BenchServer
from kit.benchmark.study import pin_prefix
from runtimes.registry import default_name
from services.bench.schemas import UPSTREAM_URL_ENV

APPS = ("kit", "fastapi", "fastapi_tuned", "starlette", "raw")


def main() -> None:
    parser = argparse.ArgumentParser(prog="python -m bench.aggregate_cpu", description=__doc__)
    parser.add_argument("--duration", type=int, default=8)
    parser.add_argument("--warmup", type=int, default=2)
    parser.add_argument("--rounds", type=int, default=2)
    parser.add_argument("--connections", type=int, default=16)
    parser.add_argument("--apps", default=",".join(APPS))
    args = parser.parse_args()
    args.load_cpu = 1
    apps = args.apps.split(",")
    cells: dict[str, list[tuple[float, float, int]]] = {app: [] for app in apps}
    with tempfile.TemporaryDirectory() as tmp:
        runtime = default_name()
        env = {"KIT_RUNTIME": runtime, "KIT_ACCESS_LOG": "0"}
        up_log = Path(tmp) / "up.log"
        with BenchServer("bench.upstream:app", env=env, log=up_log, ready_path="/item/1") as up:
            for _ in range(args.rounds):
                for app in apps:
                    with BenchServer(
                        FRAMEWORKS[app],
                        prefix=pin_prefix([0]),
                        env={**env, UPSTREAM_URL_ENV: up.url},
                        log=Path(tmp) / f"{app}.log",
                        ready_path="/aggregate",
                    ) as server:
                        result, cpu = loaded(server, server.url + "/aggregate", args)
                    errors = result.non_2xx + result.socket_errors
                    cell = (result.rps, cpu / max(1, result.requests) * 1e6, errors)
                    cells[app].append(cell)
                    print(
                        f"{app:14} {cell[0]:8.0f} rps {cell[1]:8.0f} us CPU/request "
                        f"errors={errors}",
                        flush=True,
                    )
    print("\n| app | rps (median) | server CPU us/request (median) | kit's CPU / app's |")
    print("|---|--:|--:|--:|")
    kit_cpu = statistics.median(c[1] for c in cells[apps[0]])
    for app in apps:
        rps = statistics.median(c[0] for c in cells[app])
        cpu = statistics.median(c[1] for c in cells[app])
        print(f"| {app} | {rps:,.0f} | {cpu:,.0f} | {kit_cpu / cpu:.2f} |")


if __name__ == "__main__":
    main()
