"""CPU time per request: what the server and Postgres spent, read from the kernel's counters.

Requests per second move with whatever else the machine runs; the CPU time a process tree used
(utime + stime, as /proc reports them) divided by the requests it served moves much less, so
every cell records it for the server and for Postgres. Postgres is pinned to the load tool's
CPUs so its backends never share the server's core by chance.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
from dataclasses import dataclass

import psutil


def tree_pids(root: int | None) -> list[int]:
    """``root`` and all its descendants that are alive now."""
    if root is None:
        return []
    try:
        proc = psutil.Process(root)
        return [proc.pid, *(c.pid for c in proc.children(recursive=True))]
    except psutil.Error:
        return []


def cpu_seconds(pids: list[int]) -> dict[int, float]:
    """utime + stime of each process (children already reaped are not counted)."""
    times = {}
    for pid in pids:
        with contextlib.suppress(psutil.Error):
            t = psutil.Process(pid).cpu_times()
            times[pid] = t.user + t.system
    return times


@dataclass
class CpuMeter:
    """CPU seconds a process tree spends between ``start()`` and ``stop()``.

    Processes born in between (a Postgres backend for a new connection) count in full; the
    tree is walked again at the end, so they are found.
    """

    root: int | None  # None: nothing to measure (spent stays 0)
    before: dict[int, float] | None = None
    spent: float = 0.0

    def start(self) -> None:
        self.before = cpu_seconds(tree_pids(self.root))

    def stop(self) -> float:
        before = self.before or {}
        after = cpu_seconds(tree_pids(self.root))
        self.spent = sum(t - before.get(pid, 0.0) for pid, t in after.items())
        return self.spent


def per_request_us(seconds: float, requests: int) -> float:
    return round(seconds / requests * 1e6, 1) if requests else 0.0


async def _postmaster_pid(url: str) -> int | None:
    import asyncpg

    conn = await asyncpg.connect(url)
    try:
        # The backend serving us exits with the connection: ask for its parent meanwhile.
        backend = int(await conn.fetchval("select pg_backend_pid()"))
        parent = psutil.Process(backend).parent()
        return None if parent is None else parent.pid
    finally:
        await conn.close()


def postmaster_pid(database_url: str) -> int | None:
    """The local Postgres server behind ``database_url`` (the parent of our backend), or None
    when it runs elsewhere (another host, a container) and cannot be seen from here."""
    try:
        return asyncio.run(_postmaster_pid(database_url))
    except Exception:  # asyncpg's and psutil's errors have no common base: not measurable
        return None


def pin(root: int, cpus: list[int]) -> bool:
    """Move ``root`` and its descendants to ``cpus``; processes it forks later inherit them."""
    pids = tree_pids(root)
    for pid in pids:
        with contextlib.suppress(OSError):
            os.sched_setaffinity(pid, cpus)
    return bool(pids)
