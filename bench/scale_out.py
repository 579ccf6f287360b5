"""Workers or replicas: one instance with 2 workers against two 1-worker instances behind NGINX.

    python -m bench.scale_out [--runtimes granian,gunicorn] [--duration 5] [--connections 64]

Setups, each loaded by wrk on the same machine (no pinning: the servers need every core):
  1x2 direct   kit serve with KIT_WORKERS=2, wrk straight at it
  1x2 nginx    the same instance behind deploy/nginx/kit.conf (what the proxy hop costs)
  2x1 nginx    two instances with KIT_WORKERS=1 behind the same NGINX config
CPU time per request is summed over every kit process (and, separately, NGINX's); on a shared
machine it is steadier than requests/s.
"""

from __future__ import annotations

import argparse
import contextlib
import os
import sys
import tempfile
from collections.abc import Iterator
from pathlib import Path

import psutil

from bench.nginx import Nginx
from kit.benchmark import wrk
from kit.benchmark.server import BenchServer

ROOT = Path(__file__).resolve().parents[1]
APP = "services.bench.app:app"
ENDPOINTS = ("/json", "/db")
SETUPS = ("1x2 direct", "1x2 nginx", "2x1 nginx")


def cpu_seconds(pids: list[int]) -> float:
    total = 0.0
    for pid in pids:
        root = psutil.Process(pid)
        for proc in [root, *root.children(recursive=True)]:
            with contextlib.suppress(psutil.NoSuchProcess):
                times = proc.cpu_times()
                total += times.user + times.system
    return total


@contextlib.contextmanager
def instances(runtime: str, count: int, workers: int, tmp: Path) -> Iterator[list[BenchServer]]:
    with contextlib.ExitStack() as stack:
        servers = []
        for index in range(count):
            env = {
                "KIT_RUNTIME": runtime,
                "KIT_WORKERS": str(workers),
                "KIT_ACCESS_LOG": "0",
                "KIT_LOG_LEVEL": "warning",
                "KIT_FORWARDED_ALLOW_IPS": "127.0.0.1",
            }
            log = tmp / f"{runtime}-{count}x{workers}-{index}.log"
            server = BenchServer(APP, env=env, cwd=ROOT, log=log, ready_path="/json")
            stack.callback(server.stop)
            server.spawn()  # all start at once, then each is waited for
            servers.append(server)
        for server in servers:
            server.wait_ready()
        yield servers


def measure(
    url: str, pids: list[int], nginx: int | None, args: argparse.Namespace
) -> dict[str, float]:
    tool = wrk.find()

    def load(seconds: float) -> wrk.WrkResult:
        command = wrk.command(tool, url, connections=args.connections, seconds=seconds, threads=2)
        return wrk.run(command, seconds=seconds)

    load(args.warmup)
    kit_before = cpu_seconds(pids)
    nginx_before = cpu_seconds([nginx]) if nginx else 0.0
    result = load(args.duration)
    requests = max(1, result.requests)
    return {
        "rps": result.rps,
        "p99_ms": result.p99_ms,
        "errors": result.non_2xx + result.socket_errors,
        "kit_cpu_us": (cpu_seconds(pids) - kit_before) / requests * 1e6,
        "nginx_cpu_us": (cpu_seconds([nginx]) - nginx_before) / requests * 1e6 if nginx else 0.0,
    }


def run_setup(
    setup: str, runtime: str, args: argparse.Namespace, tmp: Path
) -> dict[str, dict[str, float]]:
    count, workers = (1, 2) if setup.startswith("1x2") else (2, 1)
    results = {}
    with instances(runtime, count, workers, tmp) as servers:
        pids = [s.pid for s in servers]
        if setup.endswith("direct"):
            for endpoint in ENDPOINTS:
                url = f"http://127.0.0.1:{servers[0].port}{endpoint}"
                results[endpoint] = measure(url, pids, None, args)
            return results
        directory = tmp / f"nginx-{runtime}-{count}x{workers}"
        directory.mkdir()
        nginx = Nginx(directory, [s.port for s in servers]).start()
        try:
            assert nginx.proc is not None
            for endpoint in ENDPOINTS:
                results[endpoint] = measure(nginx.url + endpoint, pids, nginx.proc.pid, args)
        finally:
            nginx.stop()
    return results


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m bench.scale_out", description=__doc__)
    parser.add_argument("--runtimes", default="granian,gunicorn")
    parser.add_argument("--duration", type=float, default=5.0)
    parser.add_argument("--warmup", type=float, default=2.0)
    parser.add_argument("--connections", type=int, default=64)
    args = parser.parse_args(argv)
    print(f"load average before: {os.getloadavg()[0]:.2f} on {os.cpu_count()} CPUs")
    columns = "runtime | setup | endpoint | req/s | p99 ms | kit CPU µs/req | NGINX CPU µs/req"
    print(f"| {columns} | errors |")
    print("|---|---|---|---:|---:|---:|---:|---:|")
    with tempfile.TemporaryDirectory() as tmp:
        for runtime in args.runtimes.split(","):
            for setup in SETUPS:
                results = run_setup(setup, runtime, args, Path(tmp))
                for endpoint, r in results.items():
                    print(
                        f"| {runtime} | {setup} | {endpoint} | {r['rps']:.0f} | {r['p99_ms']:.1f}"
                        f" | {r['kit_cpu_us']:.0f} | {r['nginx_cpu_us']:.0f} | {r['errors']:.0f} |",
                        flush=True,
                    )
    print(f"load average after: {os.getloadavg()[0]:.2f}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
