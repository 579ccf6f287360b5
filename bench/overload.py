"""Goodput under overload: 200s per second with KIT_MAX_CONCURRENCY at its limit's connection
count (the peak) and at 16x as many, shedding at once (KIT_QUEUE_TIMEOUT=0) or after a short
queue (the defaults). The server is pinned to one CPU and wrk to another.

    python -m bench.overload [--runtime granian] [--path /db] [--duration 10]
"""

from __future__ import annotations

import argparse
import tempfile
from pathlib import Path

from bench.ops_overhead import cpu_seconds
from kit.benchmark import wrk
from kit.benchmark.cli import add_runtime_option
from kit.benchmark.server import BenchServer
from kit.benchmark.study import pin_prefix

APP = "services.bench.app:app"


def goodput(
    args: argparse.Namespace, connections: int, extra: dict[str, str], tmp: Path
) -> tuple[float, float, float, float]:
    """(200s per second, all answers per second, server CPU µs per 200, p99 ms)."""
    env = {
        "KIT_RUNTIME": args.runtime,
        "KIT_WORKERS": "1",
        "KIT_ACCESS_LOG": "0",
        "KIT_MAX_CONCURRENCY": str(args.limit),
        **extra,
    }
    with BenchServer(
        APP,
        prefix=pin_prefix([args.server_cpu]),
        env=env,
        log=tmp,
        ready_path=args.path,
    ) as server:
        tool = wrk.find()
        url = server.url + args.path

        def load(seconds: int) -> wrk.WrkResult:
            cmd = wrk.command(
                tool, url, connections=connections, seconds=seconds, cpus=[args.load_cpu]
            )
            return wrk.run(cmd, seconds=seconds)

        load(2)
        before = cpu_seconds(server)
        result = load(args.duration)
        cpu = cpu_seconds(server) - before
    good = (result.requests - result.non_2xx) / result.seconds
    return good, result.rps, cpu / max(1.0, good * result.seconds) * 1e6, result.p99_ms


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m bench.overload", description=__doc__)
    add_runtime_option(parser)
    parser.add_argument("--path", default="/db")
    parser.add_argument("--limit", type=int, default=8)
    parser.add_argument("--factor", type=int, default=16)
    parser.add_argument("--duration", type=int, default=10)
    parser.add_argument("--server-cpu", type=int, default=0)
    parser.add_argument("--load-cpu", type=int, default=1)
    args = parser.parse_args(argv)
    cells = [
        ("peak", args.limit, {}),
        ("shed at once", args.limit * args.factor, {"KIT_QUEUE_TIMEOUT": "0"}),
        ("queue (defaults)", args.limit * args.factor, {}),
    ]
    print("| cell | connections | 200/s | all/s | CPU µs per 200 | p99 ms | goodput/peak |")
    print("|---|---|---|---|---|---|---|")
    peak = 0.0
    with tempfile.TemporaryDirectory() as tmp:
        for name, connections, extra in cells:
            good, rps, cpu_us, p99 = goodput(args, connections, extra, Path(tmp))
            peak = peak or good
            print(
                f"| {name} | {connections} | {good:,.0f} | {rps:,.0f} | {cpu_us:,.0f} "
                f"| {p99:,.1f} | {good / peak:.0%} |",
                flush=True,
            )
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
