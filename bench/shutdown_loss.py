"""Lost work on SIGTERM: clients tag every request with an X-Request-ID, the server's access log
says which ids it answered, and each request the server read but the client never got an
answer for is counted, as is each connection the kernel accepted and then reset.

    python -m bench.shutdown_loss [--runtimes uvicorn,granian,...] [--workers 1,2] [--runs 10]

Per run: 32 clients loop on GET /slow?seconds=0.02 (half keep their connection alive, half
open a new one per request), SIGTERM after 2 s, the clients go on for 1.5 s more. The server
runs on CPU 0 and the clients on CPU 1 (where taskset and two CPUs exist). Each cell prints its
totals and, per run, the connections reset, the requests not read (connection closed) and the
requests answered in the access log but never received; the load average comes last.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import shutil
import signal
import tempfile
import time
from collections import Counter
from pathlib import Path

from kit.benchmark.study import pin_prefix
from kit.testing import ServerProcess
from runtimes.registry import NAMES

APP = "tests.kit.ops.app:app"
PATH = "/slow?seconds=0.02"
LOST = "LOST: server answered, client got nothing"
PINNED = shutil.which("taskset") is not None and (os.cpu_count() or 1) >= 2


async def client(
    port: int, name: str, keep_alive: bool, until: float, out: list[tuple[str, str]]
) -> None:
    n = 0
    reader = writer = None
    while time.monotonic() < until:
        n += 1
        rid = f"{name}-{n}"
        try:
            if writer is None:
                try:
                    reader, writer = await asyncio.open_connection("127.0.0.1", port)
                except OSError:
                    out.append((rid, "refused"))
                    await asyncio.sleep(0.01)
                    continue
            header = "" if keep_alive else "Connection: close\r\n"
            writer.write(
                f"GET {PATH} HTTP/1.1\r\nHost: x\r\nX-Request-ID: {rid}\r\n{header}\r\n".encode()
            )
            await writer.drain()
            assert reader is not None
            head = await asyncio.wait_for(reader.readuntil(b"\r\n\r\n"), 15)
            length = 0
            close = not keep_alive
            for line in head.split(b"\r\n")[1:]:
                key, _, value = line.partition(b":")
                if key.lower() == b"content-length":
                    length = int(value)
                elif key.lower() == b"connection" and value.strip().lower() == b"close":
                    close = True
            await reader.readexactly(length)
            out.append((rid, "answered " + head.split(b" ", 2)[1].decode()))
            if close:
                writer.close()
                writer = None
        except (
            asyncio.IncompleteReadError,
            ConnectionResetError,
            BrokenPipeError,
            TimeoutError,
        ) as exc:
            kind = "reset" if isinstance(exc, ConnectionResetError) else "closed"
            out.append((rid, f"no answer ({kind})"))
            if writer is not None:
                writer.close()
            writer = None


def one_run(runtime: str, workers: int, directory: Path) -> Counter[str]:
    server = ServerProcess(
        APP,
        "--workers",
        str(workers),
        runtime=runtime,
        env={"KIT_LOG_FORMAT": "json", "KIT_GRACEFUL_TIMEOUT": "10"},
        log=directory,
        stop_timeout=20,
        prefix=pin_prefix([0] if PINNED else []),
    )
    server.start()
    outcomes: list[tuple[str, str]] = []

    async def drive() -> None:
        until = time.monotonic() + 3.5
        loop = asyncio.get_running_loop()
        loop.call_later(2.0, server.send_signal, signal.SIGTERM)
        await asyncio.gather(
            *(client(server.port, f"c{i}", i % 2 == 0, until, outcomes) for i in range(32))
        )

    try:
        asyncio.run(drive())
    finally:
        server.stop()
    answered = set()
    for line in server.output().splitlines():
        if line.startswith("{"):
            record = json.loads(line)
            if record.get("logger") == "kit.access" and record.get("request_id"):
                answered.add(record["request_id"])
    counts: Counter[str] = Counter()
    for rid, outcome in outcomes:
        if outcome.startswith("answered"):
            counts["answered"] += 1
        elif outcome == "refused":
            counts["refused (clean)"] += 1
        elif rid in answered:
            counts[LOST] += 1
        else:
            counts[f"not read by the server, {outcome}"] += 1
    return counts


def per_run(runs: list[Counter[str]]) -> str:
    """Resets, unread (closed) and lost answered requests, one run after another."""

    def column(outcomes: set[str]) -> str:
        return "/".join(str(sum(run[o] for o in outcomes)) for run in runs)

    resets = {"not read by the server, no answer (reset)"}
    unread = {"not read by the server, no answer (closed)"}
    return f"resets {column(resets)} | unread {column(unread)} | lost {column({LOST})}"


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m bench.shutdown_loss", description=__doc__)
    parser.add_argument("--runtimes", default=",".join(NAMES), help="default: every runtime")
    parser.add_argument("--workers", default="1,2")
    parser.add_argument("--runs", type=int, default=10)
    args = parser.parse_args(argv)
    if PINNED:
        os.sched_setaffinity(0, {1})
    with tempfile.TemporaryDirectory() as tmp:
        for runtime in args.runtimes.split(","):
            for workers in (int(w) for w in args.workers.split(",")):
                runs = [one_run(runtime, workers, Path(tmp)) for _ in range(args.runs)]
                total: Counter[str] = sum(runs, Counter())
                print(
                    f"{runtime} workers={workers} runs={args.runs}: {dict(sorted(total.items()))}"
                    f"\n    per run: {per_run(runs)}",
                    flush=True,
                )
    print("load average: " + " ".join(f"{x:.2f}" for x in os.getloadavg()), flush=True)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
