"""Which async HTTP client kit.http uses: requests/s and client CPU per call, side by side.

    python -m bench.http_clients [--requests 20000] [--concurrency 32] [--rounds 3]

One ``kit serve bench.upstream:app`` (granian, pinned to CPU 0) answers ``GET /item/N``; each
candidate client, in a fresh process pinned to CPU 1, makes the same calls over one pooled
keep-alive client with ``--concurrency`` tasks. Reported: calls/s and the client process's CPU
time per call (user + system), the better figure on a shared machine. Rounds alternate the
candidates, and the best round of each is kept.
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
import tempfile
from pathlib import Path

from kit.benchmark.server import BenchServer
from kit.benchmark.study import pin_prefix
from runtimes.registry import default_name

REPO = Path(__file__).resolve().parents[1]
CANDIDATES = ("aiohttp", "httpx", "httpx2")

CLIENT = r"""
import asyncio, json, os, resource, sys, time
name, url, total, concurrency = sys.argv[1], sys.argv[2], int(sys.argv[3]), int(sys.argv[4])

async def main():
    if name == "aiohttp":
        import aiohttp
        session = aiohttp.ClientSession(connector=aiohttp.TCPConnector(limit=concurrency))
        async def get(path):
            async with session.get(url + path) as r:
                await r.read()
                return r.status
        close = session.close
    else:
        httpx = __import__(name)
        limits = httpx.Limits(max_connections=concurrency, max_keepalive_connections=concurrency)
        client = httpx.AsyncClient(limits=limits)
        async def get(path):
            r = await client.get(url + path)
            return r.status_code
        close = client.aclose
    for i in range(200):  # warm up: open the pool
        await get(f"/item/{i}")
    left = total
    errors = 0
    async def worker():
        nonlocal left, errors
        while left > 0:
            left -= 1
            if await get(f"/item/{left % 1000}") != 200:
                errors += 1
    usage = resource.getrusage(resource.RUSAGE_SELF)
    started = time.perf_counter()
    await asyncio.gather(*(worker() for _ in range(concurrency)))
    elapsed = time.perf_counter() - started
    after = resource.getrusage(resource.RUSAGE_SELF)
    cpu = after.ru_utime - usage.ru_utime + after.ru_stime - usage.ru_stime
    await close()
    print(json.dumps({"rps": total / elapsed, "cpu_us": cpu / total * 1e6, "errors": errors}))

asyncio.run(main())
"""


def measure(name: str, url: str, total: int, concurrency: int, cpu: int) -> dict[str, float]:
    command = ["taskset", "-c", str(cpu), sys.executable, "-c", CLIENT]
    command += [name, url, str(total), str(concurrency)]
    out = subprocess.run(command, capture_output=True, text=True, check=True, cwd=REPO).stdout
    result: dict[str, float] = json.loads(out)
    return result


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--requests", type=int, default=20000)
    parser.add_argument("--concurrency", type=int, default=32)
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--candidates", default=",".join(CANDIDATES))
    args = parser.parse_args()
    candidates = args.candidates.split(",")
    env = {"KIT_ACCESS_LOG": "0", "KIT_RUNTIME": default_name()}
    best: dict[str, dict[str, float]] = {}
    with (
        tempfile.TemporaryDirectory() as tmp,
        BenchServer(
            "bench.upstream:app",
            prefix=pin_prefix([0]),
            env=env,
            cwd=REPO,
            log=Path(tmp) / "log",
            ready_path="/item/1",
        ) as server,
    ):
        url = server.url
        for round_ in range(args.rounds):
            for name in candidates:
                cell = measure(name, url, args.requests, args.concurrency, cpu=1)
                print(
                    f"round {round_ + 1} {name:8} {cell['rps']:8.0f} calls/s "
                    f"{cell['cpu_us']:6.1f} us CPU/call errors={cell['errors']}",
                    flush=True,
                )
                if name not in best or cell["cpu_us"] < best[name]["cpu_us"]:
                    best[name] = cell
    print("\nbest of rounds (lowest client CPU per call):")
    base = best[candidates[0]]
    for name in candidates:
        cell = best[name]
        print(
            f"{name:8} {cell['rps']:8.0f} calls/s {cell['cpu_us']:6.1f} us CPU/call "
            f"({cell['cpu_us'] / base['cpu_us']:.2f}x {candidates[0]}'s CPU)"
        )


if __name__ == "__main__":
    main()
