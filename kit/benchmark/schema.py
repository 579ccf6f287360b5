"""The results file: one JSON object per run (machine, versions, method, records)."""

from __future__ import annotations

from pathlib import Path

import msgspec


class Machine(msgspec.Struct, frozen=True):
    cpu_count: int
    cpu_model: str
    platform: str
    memory_gb: float


class Build(msgspec.Struct, frozen=True):
    """How the server's interpreter was compiled (kit.benchmark.probe reads it from sysconfig)."""

    provenance: str = "not recorded"  # "distribution package", "pyenv (built from source here)"
    executable: str = ""
    pgo: bool = False  # in the recorded flags; a distribution may apply it without a trace
    lto: bool = False
    shared: bool = False  # libpython as a shared library (--enable-shared): slower calls
    free_threaded: bool = False
    debug: bool = False
    compiler: str = ""
    config_args: str = ""

    def key(self) -> tuple[object, ...]:
        """What must match for two interpreters' numbers to compare as versions, not builds."""
        return (self.provenance, self.pgo, self.lto, self.shared, self.debug)

    def text(self) -> str:
        flags = [f"PGO {'yes' if self.pgo else 'not in flags'}"]
        flags.append(f"LTO {'yes' if self.lto else 'not in flags'}")
        flags.append("shared libpython" if self.shared else "static libpython")
        if self.free_threaded:
            flags.append("free-threaded")
        if self.debug:
            flags.append("debug build")
        return f"{self.provenance}, {', '.join(flags)}, {self.compiler}".rstrip(", ")


class Versions(msgspec.Struct, frozen=True):
    python: str  # "3.11.7"; the server's interpreter, not necessarily the runner's
    implementation: str
    gil: bool  # False only on a free-threaded build with the GIL really off
    packages: dict[str, str]
    build: Build = Build()


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
    env: dict[str, str]  # KIT_* settings every server ran with, secrets redacted
    started_at: str  # UTC, ISO 8601
    finished_at: str
    load_before: float = -1.0  # 1-minute load average when the run started: was the machine quiet?
    postgres: str = "not used"  # where the Postgres the cells used ran, and whether it was pinned
    headers: dict[str, str] = {}  # --header values sent with every request, secrets redacted


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
    # CPU time (utime + stime) per request during the measured run, microseconds:
    server_cpu_us: float = 0.0  # the server's process tree
    postgres_cpu_us: float = 0.0  # the Postgres server's process tree (0: not used or not local)
    # CPU the rest of the machine used during the measured run, in % of all CPUs: a cell taken
    # while something else ran is flagged in the report (see OTHER_LOAD_LIMIT in render.py).
    other_cpu_pct: float = 0.0
    load_before: float = -1.0  # 1-minute load average just before the cell


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
