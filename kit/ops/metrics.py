"""Prometheus metrics: per-process registry, text exposition, and merging across workers.

Each worker keeps its numbers in memory and writes a snapshot to ``<dir>/<pid>.json`` every
second (and at shutdown); a scrape answered by any worker merges its live numbers with the
other workers' files. Counters from workers that exited are kept (so totals never go down);
gauges count only workers that are still alive.
"""

from __future__ import annotations

import asyncio
import contextlib
import math
import multiprocessing
import os
import shutil
import sys
import tempfile
from bisect import bisect_left
from collections.abc import AsyncIterator, Awaitable, Callable
from pathlib import Path
from typing import Any

import anyio.to_thread
import msgspec

from kit.ops.custom_exposition import render_custom
from kit.ops.loop_monitor import on_asyncio
from kit.ops.processes import pid_alive

BUCKETS = (0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0)
UNMATCHED = "<unmatched>"  # route label of requests no route matched: raw paths are unbounded
FLUSH_INTERVAL = 1.0
# Label sets one process keeps; past this, new ones are counted under one overflow series so a
# client cannot grow memory and the scrape without bound (routes and statuses are few anyway).
MAX_SERIES = 2000
OVERFLOW = ("other", "<overflow>")

# (name, type, help, gauge merge mode, [(sample name, labels, value)]): one metric family of the
# service's own (kit.ops.custom_metrics), as a worker's snapshot carries it.
CustomFamily = tuple[str, str, str, str, list[tuple[str, dict[str, str], float]]]
# Where snapshots get the service's own metrics from: prometheus-client's default registry,
# and kit.ops.custom_metrics, which adds itself on import.


def _clash(name: str) -> str:
    """Why a family of the default registry cannot be shown at /metrics ("" if it can)."""
    if name.startswith("kit_"):
        return (
            f"metric {name} of prometheus-client's default registry is not shown at /metrics: "
            "kit_ names are kit's own"
        )
    custom = sys.modules.get("kit.ops.custom_metrics")
    if custom is not None and name in getattr(custom.REGISTRY, "_names_to_collectors", {}):
        return (
            f"metric {name} is in both kit.ops.custom_metrics and prometheus-client's default "
            "registry: /metrics shows the kit.ops.custom_metrics one"
        )
    return ""


def default_registry() -> list[CustomFamily]:
    from kit.ops.custom_exposition import default_registry_families

    return default_registry_families(skip=_clash)


CUSTOM_SOURCES: list[Callable[[], list[CustomFamily]]] = [default_registry]


class Series:
    """Count, sum and (non-cumulative) bucket counts of one label set's request durations."""

    __slots__ = ("buckets", "count", "total")

    def __init__(self) -> None:
        self.count = 0
        self.total = 0.0
        self.buckets = [0] * (len(BUCKETS) + 1)


# A labelled value a part of kit reports once per snapshot (outbound breakers, task queues):
# (name, "counter" or "gauge", help, labels as rendered, value). Counters are summed over every
# worker that ever reported, gauges over the live ones.
Sample = tuple[str, str, str, str, float]


class Snapshot(msgspec.Struct, array_like=True):
    pid: int
    # [method, route, status, count, total, buckets]
    requests: list[tuple[str, str, int, int, float, list[int]]]
    in_flight: int = 0
    loop_lag: float = 0.0
    loop_blocked: int = 0
    pool: tuple[int, int] | None = None  # (size, idle)
    custom: list[CustomFamily] = []
    # outbound calls: [upstream, method, outcome (status or error kind), count, total, buckets]
    outbound: list[tuple[str, str, str, int, float, list[int]]] = []
    samples: list[Sample] = []


_decode_snapshot = msgspec.json.Decoder(Snapshot).decode
_encode = msgspec.json.encode


class Registry:
    """One process's numbers. Updated from the event loop thread only."""

    def __init__(self) -> None:
        self.requests: dict[tuple[str, str, int], Series] = {}
        self.in_flight = 0
        self.loop_lag = 0.0
        self.loop_blocked = 0
        # Set when the app has a database: returns (size, idle) of its pool, or None.
        self.pool_stats: Callable[[], tuple[int, int] | None] | None = None
        self.outbound: dict[tuple[str, str, str], Series] = {}
        # Called at each snapshot; kit.http and kit.tasks register theirs.
        self.samplers: list[Callable[[], list[Sample]]] = []

    def observe(self, method: str, route: str, status: int, seconds: float) -> None:
        key = (method, route, status)
        series = self.requests.get(key)
        if series is None:
            if len(self.requests) >= MAX_SERIES:
                key = (*OVERFLOW, status)
                series = self.requests.get(key)
            if series is None:
                series = self.requests[key] = Series()
        series.count += 1
        series.total += seconds
        series.buckets[bisect_left(BUCKETS, seconds)] += 1

    def observe_outbound(self, upstream: str, method: str, outcome: str, seconds: float) -> None:
        key = (upstream, method, outcome)
        series = self.outbound.get(key)
        if series is None:
            series = self.outbound[key] = Series()
        series.count += 1
        series.total += seconds
        series.buckets[bisect_left(BUCKETS, seconds)] += 1

    def snapshot(self) -> Snapshot:
        pool = None
        if self.pool_stats is not None:
            with contextlib.suppress(Exception):  # pool not started or closed
                pool = self.pool_stats()
        return Snapshot(
            pid=os.getpid(),
            # copy(): a worker thread (free-threaded builds) may add a label set meanwhile
            requests=[
                (*k, s.count, s.total, list(s.buckets)) for k, s in self.requests.copy().items()
            ],
            in_flight=self.in_flight,
            loop_lag=self.loop_lag,
            loop_blocked=self.loop_blocked,
            pool=pool,
            custom=[family for source in CUSTOM_SOURCES for family in source()],
            outbound=[
                (*k, s.count, s.total, list(s.buckets)) for k, s in self.outbound.copy().items()
            ],
            samples=[sample for sampler in self.samplers for sample in sampler()],
        )


def _process_start(pid: int) -> str:
    """The kernel's start time of ``pid``, so a recycled pid does not reuse a stale directory."""
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return "0"
    return stat.rpartition(")")[2].split()[19]


def shared_directory() -> Path | None:
    """Where the workers of one server share snapshots; None when this process serves alone.

    uvicorn, granian and hypercorn start workers with multiprocessing, so the parent process
    (the server's supervisor) identifies the group; gunicorn forks its workers itself, so
    in a gunicorn worker the parent pid (its arbiter) does.
    """
    parent = multiprocessing.parent_process()
    if parent is not None and parent.pid is not None:
        supervisor = parent.pid
    elif "gunicorn.arbiter" in sys.modules:
        supervisor = os.getppid()
    else:
        return None
    root = Path(tempfile.gettempdir())
    directory = root / f"kit-metrics-{supervisor}-{_process_start(supervisor)}"
    directory.mkdir(mode=0o700, exist_ok=True)
    for stale in root.glob("kit-metrics-*"):  # left by supervisors that are gone
        pid = stale.name.split("-")[2]
        if stale != directory and pid.isdigit() and not pid_alive(int(pid)):
            shutil.rmtree(stale, ignore_errors=True)
    return directory


class SnapshotFiles:
    def __init__(self, directory: Path) -> None:
        self.directory = directory
        self.path = directory / f"{os.getpid()}.json"

    def write(self, snapshot: Snapshot) -> None:
        tmp = self.path.with_suffix(".tmp")
        tmp.write_bytes(_encode(snapshot))
        os.replace(tmp, self.path)  # readers never see a half-written file

    def read_others(self) -> list[Snapshot]:
        out = []
        for path in self.directory.glob("*.json"):
            if path == self.path:
                continue
            with contextlib.suppress(OSError, msgspec.DecodeError):
                out.append(_decode_snapshot(path.read_bytes()))
        return out


class Metrics:
    """The registry of one app in this process, plus its link to sibling workers."""

    def __init__(self) -> None:
        self.registry = Registry()
        self.files: SnapshotFiles | None = None
        # Asked at each scrape for exposition lines of numbers that are the same whichever
        # worker answers (read from the database: kit.jobs), so never merged over workers.
        self.scrape_sources: list[Callable[[], Awaitable[str]]] = []

    @contextlib.asynccontextmanager
    async def lifespan(self, app: Any) -> AsyncIterator[None]:
        # What cannot be shown at /metrics is said now, once; in a thread, as collecting reads
        # files (prometheus-client's process collector reads /proc).
        await anyio.to_thread.run_sync(default_registry)
        directory = shared_directory()
        if directory is None or not on_asyncio():  # sharing flushes from an asyncio task
            yield
            return
        self.files = SnapshotFiles(directory)
        task = asyncio.create_task(self._flush_forever())
        try:
            yield
        finally:
            task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await task
            self.flush()

    def flush(self) -> None:
        if self.files is not None:
            with contextlib.suppress(OSError):
                self.files.write(self.registry.snapshot())

    async def _flush_forever(self) -> None:
        while True:
            self.flush()
            await asyncio.sleep(FLUSH_INTERVAL)

    def render(self) -> bytes:
        snapshots = [self.registry.snapshot()]
        if self.files is not None:
            snapshots += self.files.read_others()
        return render(snapshots)


def _escape(value: str) -> str:
    return value.replace("\\", "\\\\").replace('"', '\\"').replace("\n", "\\n")


def _number(value: float) -> str:
    if value == math.inf:
        return "+Inf"
    return repr(float(value)) if isinstance(value, float) else str(value)


Rows = list[tuple[Any, ...]]  # label values..., count, total, buckets


def _merge(rows: Rows) -> dict[tuple[Any, ...], tuple[int, float, list[int]]]:
    merged: dict[tuple[Any, ...], tuple[int, float, list[int]]] = {}
    for *key_values, count, total, buckets in rows:
        key = tuple(key_values)
        if key in merged:
            c, t, b = merged[key]
            merged[key] = (c + count, t + total, [x + y for x, y in zip(b, buckets, strict=True)])
        else:
            merged[key] = (count, total, list(buckets))
    return merged


def _histograms(
    lines: list[str], prefix: str, helps: tuple[str, str], names: tuple[str, ...], rows: Rows
) -> None:
    """``prefix``_total (a counter) and ``prefix``_duration_seconds (a histogram) of ``rows``."""
    merged = sorted(_merge(rows).items())
    lines += [f"# HELP {prefix}_total {helps[0]}", f"# TYPE {prefix}_total counter"]
    labelled = [
        (",".join(f'{n}="{_escape(str(v))}"' for n, v in zip(names, key, strict=True)), value)
        for key, value in merged
    ]
    for labels, (count, _, _) in labelled:
        lines.append(f"{prefix}_total{{{labels}}} {count}")
    name = f"{prefix.removesuffix('s')}_duration_seconds"
    lines += [f"# HELP {name} {helps[1]}", f"# TYPE {name} histogram"]
    for labels, (count, total, buckets) in labelled:
        cumulative = 0
        for bound, n in zip((*BUCKETS, math.inf), buckets, strict=True):
            cumulative += n
            lines.append(f'{name}_bucket{{{labels},le="{_number(bound)}"}} {cumulative}')
        lines.append(f"{name}_sum{{{labels}}} {_number(total)}")
        lines.append(f"{name}_count{{{labels}}} {count}")


def _samples(lines: list[str], snapshots: list[Snapshot], live: list[Snapshot]) -> None:
    merged: dict[str, tuple[str, str, dict[str, float]]] = {}
    for snap in snapshots:
        for name, kind, help_, labels, value in snap.samples:
            if kind == "gauge" and snap not in live:
                continue
            _, _, values = merged.setdefault(name, (kind, help_, {}))
            values[labels] = values.get(labels, 0.0) + value
    for name, (kind, help_, values) in sorted(merged.items()):
        lines += [f"# HELP {name} {help_}", f"# TYPE {name} {kind}"]
        lines += [f"{name}{{{labels}}} {_number(v)}" for labels, v in sorted(values.items())]


def render(snapshots: list[Snapshot]) -> bytes:
    """Prometheus text format 0.0.4 of the merged snapshots."""
    live = [s for s in snapshots if s.pid == os.getpid() or pid_alive(s.pid)]
    lines: list[str] = []
    _histograms(
        lines,
        "kit_http_requests",
        (
            "HTTP requests answered, by route template and status.",
            "Time to answer HTTP requests.",
        ),
        ("method", "route", "status"),
        [row for snap in snapshots for row in snap.requests],
    )

    def gauge(name: str, help_: str, value: float, kind: str = "gauge") -> None:
        lines.extend(
            (f"# HELP {name} {help_}", f"# TYPE {name} {kind}", f"{name} {_number(value)}")
        )

    gauge(
        "kit_http_requests_in_flight",
        "HTTP requests being handled.",
        sum(s.in_flight for s in live),
    )
    gauge(
        "kit_event_loop_lag_seconds",
        "Latest event-loop lag (worst worker).",
        max((s.loop_lag for s in live), default=0.0),
    )
    gauge(
        "kit_event_loop_blocked_total",
        "Times a handler blocked the event loop past the threshold.",
        sum(s.loop_blocked for s in snapshots),
        "counter",
    )
    pools = [s.pool for s in live if s.pool is not None]
    if pools:
        size = sum(p[0] for p in pools)
        idle = sum(p[1] for p in pools)
        gauge("kit_db_pool_size", "Database connections open.", size)
        gauge("kit_db_pool_in_use", "Database connections lent to requests.", size - idle)
        gauge("kit_db_pool_idle", "Database connections idle in the pool.", idle)
    outbound = [row for snap in snapshots for row in snap.outbound]
    if outbound:
        _histograms(
            lines,
            "kit_outbound_requests",
            (
                "Outbound HTTP calls, by upstream, method and outcome (status or error).",
                "Time outbound HTTP calls took, until answered or failed.",
            ),
            ("upstream", "method", "outcome"),
            outbound,
        )
    _samples(lines, snapshots, live)
    lines.append("")
    text = "\n".join(lines).encode()
    if any(s.custom for s in snapshots):
        text += render_custom(snapshots, {s.pid for s in live})
    return text


class MetricsEndpoint:
    """The ASGI app answering /metrics."""

    headers = ((b"content-type", b"text/plain; version=0.0.4; charset=utf-8"),)

    def __init__(self, metrics: Metrics) -> None:
        self.metrics = metrics

    async def __call__(self, scope: Any, receive: Any, send: Any) -> None:
        scope["kit.route"] = "/metrics"
        body = self.metrics.render()
        for source in self.metrics.scrape_sources:
            body += (await source()).encode()
        await send({"type": "http.response.start", "status": 200, "headers": list(self.headers)})
        await send({"type": "http.response.body", "body": body})
