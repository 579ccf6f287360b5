"""The results file: one JSON object per run, as DESIGN.md specifies."""

from __future__ import annotations

from pathlib import Path

import msgspec


class Machine(msgspec.Struct, frozen=True):
    cpu_count: int
    cpu_model: str
    platform: str
    memory_gb: float


class Versions(msgspec.Struct, frozen=True):
    python: str  # "3.11.7"; the server's interpreter, not necessarily the runner's
    implementation: str
    gil: bool  # False only on a free-threaded build with the GIL really off
    packages: dict[str, str]


class Method(msgspec.Struct, frozen=True):
    tool: str  # "wrk 4.1.0"
    connections: int
    threads: int
    duration_s: float
    warmup_s: float
    timeout_s: float
    workers: int
    pinning: str  # one line for the report, e.g. "server on CPU 0, wrk on CPU 1"
    server_cpus: list[int]
    load_cpus: list[int]
    endpoints: dict[str, str]  # name -> "GET /queries?queries=20"
    env: dict[str, str]  # settings every server ran with (DATABASE_URL left out)
    started_at: str  # UTC, ISO 8601
    finished_at: str
    load_before: float = -1.0  # 1-minute load average when the run started: was the machine quiet?


class Record(msgspec.Struct, frozen=True):
    framework: str
    runtime: str
    python: str
    endpoint: str
    rps: float
    p50_ms: float
    p99_ms: float
    errors: int  # non_2xx + socket_errors: anything but a clean 2xx
    rss_mb: float  # peak RSS summed over the server's process tree
    gil: bool = True
    workers: int = 1
    p90_ms: float = 0.0
    non_2xx: int = 0
    socket_errors: int = 0
    requests: int = 0
    startup_s: float = 0.0  # process start to the first 200
    failure: str | None = None  # why the cell has no numbers, or what its probe saw


class Run(msgspec.Struct, frozen=True):
    machine: Machine
    versions: Versions
    method: Method
    records: list[Record]


_encoder = msgspec.json.Encoder()
_decoder = msgspec.json.Decoder(Run)


def dump(run: Run, path: Path) -> None:
    path.write_bytes(msgspec.json.format(_encoder.encode(run), indent=2) + b"\n")


def load(path: Path) -> Run:
    return _decoder.decode(path.read_bytes())
