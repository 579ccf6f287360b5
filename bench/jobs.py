"""Throughput of kit.jobs: 10,000 no-op jobs worked by 1, 2 and 4 worker processes (each one
instance of a service), with the Postgres CPU each job cost.

    python -m bench.jobs [--jobs 10000] [--workers 1,2,4] [--concurrency 10] [--rounds 1]

Each worker process runs an App's lifespan with a ``Jobs`` whose handler does nothing (the
polling interval is 50 ms, the NOTIFY wake-up on). Once every worker is ready, the jobs are
inserted in one transaction; the clock runs from its commit until no job is left undone.
Postgres CPU is read from /proc: user + system time of the postmaster's children (the
backends, the background processes) plus what the postmaster reaped from exited children,
before the insert and when the last job is done — so it needs the server on this machine
(the embedded one, or a local DATABASE_URL). The database is a fresh one, dropped after.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import secrets
import statistics
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import asyncpg

from kit.db import resolve_database_url
from kit.settings import Settings
from kit.testing.databases import with_database

TICKS = os.sysconf("SC_CLK_TCK")
INSERT = """
INSERT INTO kit_jobs (queue, name, payload, max_attempts)
SELECT 'default', 'noop', '{}'::jsonb, 3 FROM generate_series(1, $1)
"""
UNDONE = "SELECT count(*) FROM kit_jobs WHERE state <> 'done'"


def _cpu_ticks(pid: int, children: bool = False) -> int:
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    # after the name: state(0) ppid(1) ... utime(11) stime(12) cutime(13) cstime(14)
    ticks = int(fields[11]) + int(fields[12])
    if children:
        ticks += int(fields[13]) + int(fields[14])
    return ticks


def postgres_cpu(postmaster: int) -> float:
    """Seconds of CPU of the postmaster's children, live and reaped."""
    total = _cpu_ticks(postmaster, children=True) - _cpu_ticks(postmaster)
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            stat = (entry / "stat").read_text()
        except OSError:
            continue
        if int(stat.rsplit(")", 1)[1].split()[1]) == postmaster:
            total += _cpu_ticks(int(entry.name))
    return total / TICKS


def _parent(pid: int) -> int:
    return int(Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[1])


async def worker(url: str, concurrency: int) -> None:
    """One instance: an App with the jobs part, until stdin closes."""
    from kit import App
    from kit.db import Database
    from kit.jobs import Job, Jobs

    jobs = Jobs(poll_interval=0.05)
    jobs.queue("default", concurrency=concurrency)

    @jobs.job("noop")
    async def noop(job: Job[Any]) -> None:
        pass

    app = App(title="bench-jobs", database=Database(url=url))
    app.add_part(jobs.part(app))
    async with app.router.lifespan_context(app):
        print("ready", flush=True)
        await asyncio.get_running_loop().run_in_executor(None, sys.stdin.read)


def _spawn(url: str, concurrency: int, env: dict[str, str]) -> subprocess.Popen[bytes]:
    command = [sys.executable, "-m", "bench.jobs", "--worker", url]
    command += ["--concurrency", str(concurrency)]
    return subprocess.Popen(command, stdin=subprocess.PIPE, stdout=subprocess.PIPE, env=env)


async def measure(url: str, workers: int, count: int, concurrency: int) -> dict[str, float]:
    env = {
        **os.environ,
        "KIT_LOG_LEVEL": "warning",
        "KIT_METRICS": "0",
        "KIT_BLOCKING_THRESHOLD": "0",
        "KIT_MIGRATE": "1",
        "KIT_DB_POOL_MAX": str(concurrency + 2),
    }
    procs = [_spawn(url, concurrency, env) for _ in range(workers)]
    try:
        for proc in procs:
            assert proc.stdout is not None
            if proc.stdout.readline().strip() != b"ready":
                raise RuntimeError("a worker did not start")
        conn = await asyncpg.connect(url)
        try:
            postmaster = _parent(await conn.fetchval("SELECT pg_backend_pid()"))
            cpu_before = postgres_cpu(postmaster)
            await conn.execute(INSERT, count)
            started = time.perf_counter()
            while await conn.fetchval(UNDONE):
                await asyncio.sleep(0.02)
            elapsed = time.perf_counter() - started
            cpu = postgres_cpu(postmaster) - cpu_before
            await conn.execute("DELETE FROM kit_jobs")
        finally:
            await conn.close()
    finally:
        for proc in procs:
            if proc.stdin is not None:
                proc.stdin.close()
        for proc in procs:
            proc.wait(timeout=30)
    return {"workers": workers, "seconds": elapsed, "jobs_per_s": count / elapsed, "cpu": cpu}


async def main(args: argparse.Namespace) -> None:
    server = resolve_database_url(Settings.from_env())
    name = f"kit_bench_jobs_{secrets.token_hex(4)}"
    admin = await asyncpg.connect(server)
    await admin.execute(f'CREATE DATABASE "{name}"')
    url = with_database(server, name)
    try:
        results = []
        for workers in args.workers:
            for _ in range(args.rounds):
                results.append(await measure(url, workers, args.jobs, args.concurrency))
        print(
            f"\n{args.jobs} no-op jobs, {args.concurrency} at once per worker process, "
            f"{os.cpu_count()} CPUs; median of {args.rounds} round(s) (range)\n"
        )
        print("| worker processes | jobs/s | Postgres CPU per job |")
        print("|---:|---:|---:|")
        for workers in args.workers:
            mine = [r for r in results if r["workers"] == workers]
            rates = sorted(r["jobs_per_s"] for r in mine)
            costs = sorted(r["cpu"] / args.jobs * 1e6 for r in mine)
            print(
                f"| {workers} | {statistics.median(rates):,.0f} "
                f"({rates[0]:,.0f}..{rates[-1]:,.0f}) "
                f"| {statistics.median(costs):.0f} µs ({costs[0]:.0f}..{costs[-1]:.0f}) |"
            )
    finally:
        await admin.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
        await admin.close()


if __name__ == "__main__":
    parser = argparse.ArgumentParser(prog="python -m bench.jobs", description=__doc__)
    parser.add_argument("--jobs", type=int, default=10_000)
    parser.add_argument(
        "--workers", type=lambda v: [int(n) for n in v.split(",")], default=[1, 2, 4]
    )
    parser.add_argument("--concurrency", type=int, default=10)
    parser.add_argument("--rounds", type=int, default=1)
    parser.add_argument("--worker", help=argparse.SUPPRESS)
    parsed = parser.parse_args()
    if parsed.worker:
        asyncio.run(worker(parsed.worker, parsed.concurrency))
    else:
        asyncio.run(main(parsed))
