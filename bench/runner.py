"""``kit bench``: run every selected app x runtime x endpoint as a real server under wrk."""

from __future__ import annotations

import argparse
import contextlib
import json
import os
import platform
import subprocess
import sys
import tempfile
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import datetime, timezone
from pathlib import Path

import msgspec
import psutil

from bench import render, schema, wrk
from bench.cli import ROOT, UsageError, parser
from bench.matrix import (
    DB_ENDPOINTS,
    ENDPOINTS,
    FRAMEWORKS,
    QUICK,
    READY_PATH,
    RUNTIMES,
    Endpoint,
    pinning_text,
    split_cpus,
)
from bench.server import Server, ServerFailed, free_port, request
from services.bench.schemas import UPSTREAM_URL_ENV

PROBE = Path(__file__).with_name("probe.py")
KIT_APP = FRAMEWORKS["kit"]
UPSTREAM_APP = "bench.upstream:app"
# The same settings for every server: no access log (TechEmpower's rule), everything else default.
# Variables already set in the environment win, and the report lists them all.
SERVER_ENV = {"KIT_ACCESS_LOG": "0", "KIT_LOG_LEVEL": "warning"}
FULL = {"frameworks": list(FRAMEWORKS), "runtimes": list(RUNTIMES), "endpoints": list(ENDPOINTS)}
FULL_TIMES = {"duration": 10, "warmup": 3}


@dataclass
class Plan:
    frameworks: list[str]
    runtimes: list[str]
    endpoints: list[str]
    connections: int
    duration: int
    warmup: int
    timeout: int
    workers: int
    python: str
    server_cpus: list[int]
    load_cpus: list[int]


def _plan(args: argparse.Namespace) -> Plan:
    preset: dict[str, object] = {**FULL, **FULL_TIMES, **(QUICK if args.quick else {})}

    def pick(name: str) -> object:
        value = getattr(args, name)
        return preset[name] if value is None else value

    python = args.python or sys.executable
    if args.python and not os.access(python, os.X_OK):
        raise UsageError(f"--python {python}: not an executable")
    server_cpus, load_cpus = split_cpus()
    return Plan(
        frameworks=pick("frameworks"),  # type: ignore[arg-type]
        runtimes=pick("runtimes"),  # type: ignore[arg-type]
        endpoints=pick("endpoints"),  # type: ignore[arg-type]
        connections=args.connections,
        duration=pick("duration"),  # type: ignore[arg-type]
        warmup=max(0, pick("warmup")),  # type: ignore[call-overload]
        timeout=args.timeout,
        workers=args.workers,
        python=python,
        server_cpus=server_cpus,
        load_cpus=load_cpus,
    )


def main(argv: list[str]) -> int:
    """Parse ``argv`` (``kit bench`` goes through bench.cli, which checks prerequisites first)."""
    return run(parser().parse_args(argv))


def run(args: argparse.Namespace) -> int:
    if args.merge:
        return _merge(args.merge, args.out)
    try:
        plan = _plan(args)
        tool = wrk.find()
    except UsageError as exc:
        print(f"kit bench: {exc}", file=sys.stderr)
        return 2
    except wrk.WrkNotFound as exc:
        print(exc, file=sys.stderr)
        return 2
    try:
        env = _server_env()
        if DB_ENDPOINTS.intersection(plan.endpoints):
            _migrate(plan.python, env)
        versions = _versions(plan.python)
    except RuntimeError as exc:
        print(f"kit bench: {exc}", file=sys.stderr)
        return 1
    return _run(plan, tool, env, versions, args.out, quick=args.quick)


@contextlib.contextmanager
def _upstream(plan: Plan, env: dict[str, str], tmp: Path) -> Iterator[dict[str, str]]:
    """For ``aggregate``: one ``bench.upstream`` server (granian, unpinned like Postgres) for the
    whole run; ``env`` then names it in BENCH_UPSTREAM_URL for every app."""
    if "aggregate" not in plan.endpoints:
        yield env
        return
    port = free_port()
    argv = [plan.python, "-m", "kit.cli", "serve", UPSTREAM_APP, "--port", str(port)]
    upstream_env = {**env, "KIT_RUNTIME": "granian", "KIT_WORKERS": "1"}
    with Server(argv, upstream_env, port, tmp / "upstream.log", cwd=ROOT) as server:
        server.wait_ready("/item/1")
        yield {**env, UPSTREAM_URL_ENV: f"http://127.0.0.1:{port}"}


def _server_env() -> dict[str, str]:
    env = {**SERVER_ENV, **os.environ}
    if not env.get("DATABASE_URL"):
        # One Postgres for the whole run, started before any clock runs.
        from kit.db.embedded import EmbeddedPostgresError, resolve_database_url
        from kit.settings import Settings

        try:
            env["DATABASE_URL"] = resolve_database_url(Settings.from_env())
        except EmbeddedPostgresError as exc:
            raise RuntimeError(str(exc)) from None
    return env


def _migrate(python: str, env: dict[str, str]) -> None:
    # The peers share the kit service's tables; create them before any peer starts.
    proc = subprocess.run(
        [python, "-m", "kit.cli", "migrate", KIT_APP],
        cwd=ROOT,
        env=env,
        capture_output=True,
        text=True,
    )
    if proc.returncode != 0:
        lines = (proc.stderr or proc.stdout).strip().splitlines()
        raise RuntimeError(
            f"kit migrate {KIT_APP} failed: {lines[-1] if lines else proc.returncode}"
        )


def _versions(python: str) -> schema.Versions:
    proc = subprocess.run([python, str(PROBE)], capture_output=True, text=True)
    if proc.returncode != 0:
        raise RuntimeError(f"{python} could not describe itself: {proc.stderr.strip()[-300:]}")
    return schema.Versions(**json.loads(proc.stdout))


def _machine() -> schema.Machine:
    model = platform.processor() or platform.machine()
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                model = line.split(":", 1)[1].strip()
                break
    except OSError:
        pass
    return schema.Machine(
        cpu_count=os.cpu_count() or 1,
        cpu_model=model,
        platform=f"{platform.system()} {platform.release()}",
        memory_gb=round(psutil.virtual_memory().total / 2**30, 1),
    )


def _load() -> float:
    return round(os.getloadavg()[0], 2) if hasattr(os, "getloadavg") else -1.0


def _now() -> str:
    return datetime.now(timezone.utc).strftime("%Y-%m-%dT%H:%M:%SZ")


def _run(
    plan: Plan,
    tool: str,
    env: dict[str, str],
    versions: schema.Versions,
    out: Path,
    *,
    quick: bool,
) -> int:
    started = _now()
    load_before = _load()
    if load_before > 0.5:
        busy = f"the machine is busy (load average {load_before:.2f}); numbers will be noisy"
        print(f"kit bench: {busy}", file=sys.stderr)
    cells = [(e, r, f) for e in plan.endpoints for r in plan.runtimes for f in plan.frameworks]
    estimate = len(cells) * (plan.duration + plan.warmup + 2) / 60
    print(f"kit bench: {len(cells)} cells, about {estimate:.0f} min", file=sys.stderr, flush=True)
    records: list[schema.Record] = []
    interrupted = False
    with (
        tempfile.TemporaryDirectory(prefix="kit-bench-") as tmp,
        _upstream(plan, env, Path(tmp)) as env,
    ):
        for i, (endpoint, runtime, framework) in enumerate(cells, 1):
            try:
                record = _cell(plan, tool, env, versions, framework, runtime, endpoint, Path(tmp))
            except KeyboardInterrupt:
                interrupted = True
                break
            records.append(record)
            print(f"[{i}/{len(cells)}] {_summary(record)}", file=sys.stderr, flush=True)
    method = schema.Method(
        tool=wrk.version(tool),
        connections=plan.connections,
        threads=max(1, len(plan.load_cpus)),
        duration_s=plan.duration,
        warmup_s=plan.warmup,
        timeout_s=plan.timeout,
        workers=plan.workers,
        pinning=pinning_text(plan.server_cpus, plan.load_cpus),
        server_cpus=plan.server_cpus,
        load_cpus=plan.load_cpus,
        endpoints={name: str(ENDPOINTS[name]) for name in plan.endpoints},
        env={k: v for k, v in sorted(env.items()) if k.startswith("KIT_")},
        started_at=started,
        finished_at=_now(),
        load_before=load_before,
    )
    run = schema.Run(machine=_machine(), versions=versions, method=method, records=records)
    stem = _stem(started, versions, quick)
    out.mkdir(parents=True, exist_ok=True)
    schema.dump(run, out / f"{stem}.json")
    written = render.write([run], out, stem)
    for path in [out / f"{stem}.json", *written]:
        print(path, flush=True)
    if interrupted:
        print("kit bench: interrupted; the results hold the finished cells", file=sys.stderr)
        return 130
    return 0


def _stem(started: str, versions: schema.Versions, quick: bool) -> str:
    stamp = started.replace(":", "").replace("-", "")[:13]  # 20261122T2230
    py = ".".join(versions.python.split(".")[:2]) + ("" if versions.gil else "t")
    return f"{stamp}Z-py{py}" + ("-quick" if quick else "")


def _cell(
    plan: Plan,
    tool: str,
    env: dict[str, str],
    versions: schema.Versions,
    framework: str,
    runtime: str,
    endpoint: str,
    tmp: Path,
) -> schema.Record:
    base = schema.Record(
        framework=framework,
        runtime=runtime,
        python=versions.python,
        gil=versions.gil,
        endpoint=endpoint,
        workers=plan.workers,
        rps=0.0,
        p50_ms=0.0,
        p99_ms=0.0,
        errors=0,
        rss_mb=0.0,
    )
    ep = ENDPOINTS[endpoint]
    port = free_port()
    pin = ["taskset", "-c", ",".join(map(str, plan.server_cpus))] if plan.server_cpus else []
    argv = [*pin, plan.python, "-m", "kit.cli", "serve", FRAMEWORKS[framework]]
    cell_env = {
        **env,
        "KIT_RUNTIME": runtime,
        "KIT_HOST": "127.0.0.1",
        "KIT_PORT": str(port),
        "KIT_WORKERS": str(plan.workers),
    }
    log = tmp / f"{framework}-{runtime}-{endpoint}.log"
    with Server(argv, cell_env, port, log, cwd=ROOT) as server:
        try:
            startup = server.wait_ready(READY_PATH)
        except ServerFailed as exc:
            return _failed(base, f"server: {exc}")
        note = _probe(port, ep)
        script = wrk.post_script(ep.body, tmp) if ep.body is not None else None
        url = f"http://127.0.0.1:{port}{ep.path}"

        def load(seconds: int) -> wrk.WrkResult:
            argv = wrk.command(
                tool,
                url,
                connections=plan.connections,
                seconds=seconds,
                threads=max(1, len(plan.load_cpus)),
                timeout_s=plan.timeout,
                script=script,
                cpus=plan.load_cpus,
            )
            return wrk.run(argv, seconds=seconds)

        try:
            with server.peak_rss() as peak:
                if plan.warmup:
                    load(plan.warmup)
                result = load(plan.duration)
        except wrk.WrkError as exc:
            return _failed(base, f"wrk: {exc}; server: {server.last_log_line()}", startup)
        if server.proc is not None and server.proc.poll() is not None:
            note = _join(note, f"server exited during the run: {server.last_log_line()}")
    return msgspec.structs.replace(
        base,
        rps=round(result.rps, 1),
        p50_ms=round(result.p50_ms, 3),
        p90_ms=round(result.p90_ms, 3),
        p99_ms=round(result.p99_ms, 3),
        errors=result.non_2xx + result.socket_errors,
        non_2xx=result.non_2xx,
        socket_errors=result.socket_errors,
        requests=result.requests,
        rss_mb=round(peak[0] / 2**20, 1),
        startup_s=round(startup, 3),
        failure=note,
    )


def _probe(port: int, ep: Endpoint) -> str | None:
    """One request before the load, so a broken endpoint is explained, not just counted."""
    try:
        status, body = request(port, ep.path, ep.method, ep.body, timeout=10.0)
    except OSError as exc:
        return f"probe {ep}: {exc}"
    if status != 200:
        return f"probe {ep} answered {status}: {body[:160].decode(errors='replace')}"
    return None


def _join(a: str | None, b: str) -> str:
    return f"{a}; {b}" if a else b


def _failed(base: schema.Record, why: str, startup: float = 0.0) -> schema.Record:
    return msgspec.structs.replace(base, startup_s=round(startup, 3), failure=why)


def _summary(r: schema.Record) -> str:
    cell = f"{r.framework} {r.runtime} {r.endpoint}:"
    if r.requests == 0 and r.failure:
        return f"{cell} FAILED {r.failure}"
    text = f"{cell} {r.rps:,.0f} rps, p99 {r.p99_ms:.2f} ms, {r.rss_mb:.0f} MB"
    if r.errors:
        text += f", {r.non_2xx} non-2xx, {r.socket_errors} socket errors"
    return text + (f" ({r.failure})" if r.failure else "")


def _merge(paths: list[Path], out: Path) -> int:
    try:
        runs = [schema.load(p) for p in paths]
    except (OSError, ValueError) as exc:  # msgspec errors are ValueErrors
        print(f"kit bench --merge: {exc}", file=sys.stderr)
        return 2
    stem = "merged-" + _now().replace(":", "").replace("-", "")[:13] + "Z"
    out.mkdir(parents=True, exist_ok=True)
    for path in render.write(runs, out, stem):
        print(path)
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
