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
import time
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import datetime, timezone
from pathlib import Path

import msgspec
import psutil

from bench import cpu, pythons, render, schema, wrk
from bench.cli import ROOT, UsageError, parser
from bench.matrix import (
    DB_ENDPOINTS,
    ENDPOINTS,
    FRAMEWORKS,
    QUICK,
    READY_PATH,
    RUNTIMES,
    Endpoint,
    custom_endpoints,
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
    apps: dict[str, str]  # framework name -> module:attr
    catalog: dict[str, Endpoint]  # endpoint name -> request
    ready_path: str
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

    server_cpus, load_cpus = split_cpus()
    apps, catalog, ready = dict(FRAMEWORKS), dict(ENDPOINTS), READY_PATH
    frameworks, endpoints = pick("frameworks"), pick("endpoints")
    if args.app is not None:
        if args.frameworks or args.endpoints:
            raise UsageError("--app replaces --frameworks and --endpoints; give --path instead")
        body = _read_body(args.body)
        try:
            catalog = custom_endpoints(args.path or [], args.method.upper(), body)
        except ValueError as exc:
            raise UsageError(str(exc)) from None
        name = app_name(args.app)
        apps = {name: args.app}
        frameworks, endpoints = [name], list(catalog)
        ready = args.ready_path or next(e.path for e in catalog.values())
    elif args.path or args.body:
        raise UsageError("--path and --body need --app MODULE:ATTR")
    return Plan(
        frameworks=frameworks,  # type: ignore[arg-type]
        runtimes=pick("runtimes"),  # type: ignore[arg-type]
        endpoints=endpoints,  # type: ignore[arg-type]
        apps=apps,
        catalog=catalog,
        ready_path=ready,
        connections=args.connections,
        duration=pick("duration"),  # type: ignore[arg-type]
        warmup=max(0, pick("warmup")),  # type: ignore[call-overload]
        timeout=args.timeout,
        workers=args.workers,
        python=sys.executable,
        server_cpus=server_cpus,
        load_cpus=load_cpus,
    )


def app_name(spec: str) -> str:
    """The name a user's app goes by in the report: ``services.catalog.app:app`` -> catalog."""
    parts = spec.partition(":")[0].split(".")
    while len(parts) > 1 and parts[-1] in ("app", "main", "asgi", "application"):
        parts.pop()
    return parts[-1]


def _read_body(path: Path | None) -> bytes | None:
    if path is None:
        return None
    try:
        return path.read_bytes()
    except OSError as exc:
        raise UsageError(f"--body {path}: {exc.strerror}") from None


def main(argv: list[str]) -> int:
    """Parse ``argv`` (``kit bench`` goes through bench.cli, which checks prerequisites first)."""
    return run(parser().parse_args(argv))


def run(args: argparse.Namespace) -> int:
    if args.merge:
        return _merge(args.merge, args.out)
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
    try:
        env = _server_env()
        postgres = _pin_postgres(env, plan)
    except RuntimeError as exc:
        print(f"kit bench: {exc}", file=sys.stderr)
        return 1
    if not wanted:
        code, _ = _one_python(plan, tool, env, postgres, args.out, quick=args.quick)
        return code
    return _many_pythons(plan, wanted, tool, env, postgres, args.out, quick=args.quick)


def _one_python(
    plan: Plan, tool: str, env: dict[str, str], postgres: Postgres, out: Path, *, quick: bool
) -> tuple[int, Path | None]:
    try:
        if _needs_database(plan):
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
            python = pythons.venv_for(executable, ROOT)
        except pythons.PythonMissing as exc:
            print(f"kit bench: skipped: {exc}", file=sys.stderr, flush=True)
            skipped[want.label] = str(exc)
            continue
        print(f"kit bench: Python {want.label}: {executable} ({where})", file=sys.stderr)
        plan.python = str(python)
        code, written = _one_python(plan, tool, env, postgres, out, quick=quick)
        if written is not None:
            results.append(written)
        if code == 130:
            break
    runs = [schema.load(p) for p in results]
    if not runs:
        print("kit bench: no interpreter could be run; nothing to report", file=sys.stderr)
        return code or 1
    stem = "merged-" + _now().replace(":", "").replace("-", "")[:13] + "Z"
    for path in render.write(runs, out, stem, skipped=skipped):
        print(path, flush=True)
    return code


def _needs_database(plan: Plan) -> bool:
    return plan.apps != FRAMEWORKS or bool(DB_ENDPOINTS.intersection(plan.endpoints))


@dataclass(frozen=True)
class Postgres:
    pid: int | None  # the local postmaster, when there is one to measure
    text: str  # for the report: where it ran and whether it was pinned


def _pin_postgres(env: dict[str, str], plan: Plan) -> Postgres:
    """Put the Postgres the cells use on the load tool's CPUs, so no backend lands on the
    server's core by chance; its CPU time is measured either way when it runs here."""
    pid = cpu.postmaster_pid(env["DATABASE_URL"])
    if pid is None:
        return Postgres(None, "not on this machine (not pinned, CPU not measured)")
    if plan.load_cpus and cpu.pin(pid, plan.load_cpus):
        cpus = ",".join(map(str, plan.load_cpus))
        return Postgres(pid, f"local, pinned to CPU {cpus} with the load tool")
    return Postgres(pid, "local, not pinned (one CPU or no affinity control)")


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


def _migrate(plan: Plan, env: dict[str, str]) -> None:
    # The peers share the kit service's tables; create them before any peer starts.
    app = KIT_APP if plan.apps == FRAMEWORKS else next(iter(plan.apps.values()))
    proc = subprocess.run(
        [plan.python, "-m", "kit.cli", "migrate", app],
        cwd=ROOT,
        env=env,
        capture_output=True,
        text=True,
    )
    if proc.returncode != 0:
        lines = (proc.stderr or proc.stdout).strip().splitlines()
        raise RuntimeError(f"kit migrate {app} failed: {lines[-1] if lines else proc.returncode}")


def _versions(python: str) -> schema.Versions:
    proc = subprocess.run([python, str(PROBE)], capture_output=True, text=True)
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
        endpoints={name: str(plan.catalog[name]) for name in plan.endpoints},
        env={k: v for k, v in sorted(env.items()) if k.startswith("KIT_")},
        started_at=started,
        finished_at=_now(),
        load_before=load_before,
        postgres=postgres.text,
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
    return 0, out / f"{stem}.json"


def _stem(started: str, versions: schema.Versions, quick: bool, plan: Plan) -> str:
    stamp = started.replace(":", "").replace("-", "")[:13]  # 20261122T2230
    py = ".".join(versions.python.split(".")[:2]) + ("" if versions.gil else "t")
    app = "" if plan.apps == FRAMEWORKS else "-" + "-".join(plan.apps)
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
        ep = plan.catalog[endpoint]
        port = free_port()
        pin = ["taskset", "-c", ",".join(map(str, plan.server_cpus))] if plan.server_cpus else []
        argv = [*pin, plan.python, "-m", "kit.cli", "serve", plan.apps[framework]]
        cell_env = {
            **self.env,
            "KIT_RUNTIME": runtime,
            "KIT_HOST": "127.0.0.1",
            "KIT_PORT": str(port),
            "KIT_WORKERS": str(plan.workers),
        }
        log = tmp / f"{framework}-{runtime}-{len(list(tmp.iterdir()))}.log"
        with Server(argv, cell_env, port, log, cwd=ROOT) as server:
            try:
                startup = server.wait_ready(plan.ready_path)
            except ServerFailed as exc:
                return _failed(base, f"server: {exc}")
            note = _probe(port, ep)
            script = (
                wrk.request_script(ep.method, ep.body, tmp)
                if ep.method != "GET" or ep.body is not None
                else None
            )
            url = f"http://127.0.0.1:{port}{ep.path}"

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

            assert server.proc is not None
            meters = Meters(server.proc.pid, self.postgres.pid)
            try:
                with server.peak_rss() as peak:
                    if plan.warmup:
                        load(plan.warmup)
                    meters.start()
                    result = load(plan.duration)
                    meters.stop()
            except wrk.WrkError as exc:
                return _failed(base, f"wrk: {exc}; server: {server.last_log_line()}", startup)
            if server.proc.poll() is not None:
                note = _join(note, f"server exited during the run: {server.last_log_line()}")
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


def _probe(port: int, ep: Endpoint) -> str | None:
    """One request before the load, so a broken endpoint is explained, not just counted."""
    try:
        status, body = request(port, ep.path, ep.method, ep.body, timeout=10.0)
    except OSError as exc:
        return f"probe {ep}: {exc}"
    if status != ep.status:
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
