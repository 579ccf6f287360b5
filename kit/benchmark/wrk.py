"""Running wrk and reading its ``--latency`` report."""

from __future__ import annotations

import re
import shutil
import subprocess
from collections.abc import Mapping
from pathlib import Path

import msgspec

MISSING = (
    "wrk not found: install it with 'apt-get install wrk' (Debian/Ubuntu) "
    "or 'brew install wrk' (macOS)"
)


class WrkNotFound(RuntimeError):
    def __init__(self) -> None:
        super().__init__(MISSING)


class WrkError(RuntimeError):
    """wrk failed, or printed something that is not a wrk report."""


class WrkResult(msgspec.Struct, frozen=True):
    requests: int
    seconds: float
    rps: float
    p50_ms: float
    p75_ms: float
    p90_ms: float
    p99_ms: float
    connect_errors: int = 0
    read_errors: int = 0
    write_errors: int = 0
    timeouts: int = 0
    non_2xx: int = 0  # wrk counts statuses >= 400 here, despite its "Non-2xx or 3xx" label

    @property
    def socket_errors(self) -> int:
        return self.connect_errors + self.read_errors + self.write_errors + self.timeouts


def find() -> str:
    path = shutil.which("wrk")
    if path is None:
        raise WrkNotFound
    return path


def version(wrk: str) -> str:
    # `wrk -v` prints "wrk 4.1.0 [epoll] ..." (Debian: "wrk debian/4.1.0-3") and exits 1.
    proc = subprocess.run([wrk, "-v"], capture_output=True, text=True, check=False)
    first = (proc.stdout or proc.stderr).splitlines()[:1]
    match = re.match(r"wrk (\S+)", first[0]) if first else None
    return f"wrk {match.group(1)}" if match else "wrk"


def post_script(body: bytes, directory: Path) -> Path:
    """A wrk script that POSTs ``body`` as JSON (see ``request_script``)."""
    return request_script("POST", body, directory)


def lua_string(text: str) -> str:
    """``text`` as a Lua long string whose closing bracket does not occur in it."""
    level = 0
    while f"]{'=' * level}]" in text:
        level += 1
    eq = "=" * level
    # A long string drops a newline right after its opening: keep the text's own.
    first = "\n" if text.startswith(("\n", "\r")) else ""
    return f"[{eq}[{first}{text}]{eq}]"


def request_script(
    method: str, body: bytes | None, directory: Path, headers: Mapping[str, str] | None = None
) -> Path:
    """A wrk script that sends ``method`` with ``body`` (if any) as JSON and ``headers``.

    wrk builds this request once at start-up, so no Lua runs per request and the load tool costs
    the same as for a GET. Header values stay out of wrk's command line (other users can read
    it); the script is readable by its owner only.
    """
    if not method.isalpha():
        raise ValueError(f"{method!r} is not an HTTP method")
    lines = [f'wrk.method = "{method}"']
    if body is not None:
        lines += [f"wrk.body = {lua_string(body.decode())}"]
        lines += ['wrk.headers["Content-Type"] = "application/json"']
    for name, value in (headers or {}).items():
        if not re.fullmatch(r"[!#$%&'*+.^_`|~0-9A-Za-z-]+", name):
            raise ValueError(f"{name!r} is not a header name")
        lines.append(f'wrk.headers["{name}"] = {lua_string(value)}')
    script = directory / f"{method.lower()}.lua"
    script.touch(mode=0o600)
    script.chmod(0o600)
    script.write_text("\n".join(lines) + "\n")
    return script


def command(
    wrk: str,
    url: str,
    *,
    connections: int,
    seconds: float,
    threads: int = 1,
    timeout_s: float = 2.0,
    script: Path | None = None,
    cpus: list[int] | None = None,
) -> list[str]:
    argv = [
        wrk,
        f"-t{threads}",
        f"-c{max(connections, threads)}",
        f"-d{max(1, round(seconds))}s",
        f"--timeout={max(1, round(timeout_s))}s",
        "--latency",
    ]
    if script is not None:
        argv += ["-s", str(script)]
    argv.append(url)
    if cpus:
        argv = ["taskset", "-c", ",".join(map(str, cpus)), *argv]
    return argv


def run(argv: list[str], *, grace_s: float = 30.0, seconds: float = 0.0) -> WrkResult:
    try:
        proc = subprocess.run(
            argv, capture_output=True, text=True, timeout=seconds + grace_s, check=False
        )
    except subprocess.TimeoutExpired:
        raise WrkError(f"wrk did not finish within {seconds + grace_s:.0f} s") from None
    if proc.returncode != 0:
        detail = (proc.stderr or proc.stdout).strip().splitlines()
        raise WrkError(f"wrk exited {proc.returncode}: {detail[-1] if detail else 'no output'}")
    return parse(proc.stdout)


_UNITS_MS = {"us": 1e-3, "ms": 1.0, "s": 1e3, "m": 60e3, "h": 3600e3}
_PERCENTILE = re.compile(r"^\s*(50|75|90|99)%\s+([\d.]+)(us|ms|s|m|h)\s*$", re.MULTILINE)
_TOTAL = re.compile(r"^\s*(\d+) requests in ([\d.]+)(us|ms|s|m|h),", re.MULTILINE)
_RPS = re.compile(r"^Requests/sec:\s+([\d.]+)\s*$", re.MULTILINE)
_SOCKET = re.compile(
    r"^\s*Socket errors: connect (\d+), read (\d+), write (\d+), timeout (\d+)\s*$", re.MULTILINE
)
_NON_2XX = re.compile(r"^\s*Non-2xx or 3xx responses: (\d+)\s*$", re.MULTILINE)


def parse(text: str) -> WrkResult:
    percentiles = {p: float(v) * _UNITS_MS[u] for p, v, u in _PERCENTILE.findall(text)}
    total = _TOTAL.search(text)
    rps = _RPS.search(text)
    if total is None or rps is None or len(percentiles) != 4:
        raise WrkError("not a wrk --latency report: " + (text.strip()[:200] or "empty output"))
    socket = _SOCKET.search(text)
    connect, read, write, timeouts = map(int, socket.groups()) if socket else (0, 0, 0, 0)
    non_2xx = _NON_2XX.search(text)
    return WrkResult(
        requests=int(total.group(1)),
        seconds=float(total.group(2)) * _UNITS_MS[total.group(3)] / 1e3,
        rps=float(rps.group(1)),
        p50_ms=percentiles["50"],
        p75_ms=percentiles["75"],
        p90_ms=percentiles["90"],
        p99_ms=percentiles["99"],
        connect_errors=connect,
        read_errors=read,
        write_errors=write,
        timeouts=timeouts,
        non_2xx=int(non_2xx.group(1)) if non_2xx else 0,
    )
