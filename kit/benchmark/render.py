"""Results files -> one Markdown report with ratio tables, plus PNG bar charts beside it."""

from __future__ import annotations

import math
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from pathlib import Path

from matplotlib.figure import Figure

from kit.benchmark import redact
from kit.benchmark.schema import Record, Run
from runtimes.registry import BY_PREFERENCE

FRAMEWORK_ORDER = ("kit", "fastapi", "fastapi_tuned", "starlette", "raw")
RUNTIME_ORDER = BY_PREFERENCE
ENDPOINT_ORDER = ("json", "plaintext", "db", "queries", "fortunes", "updates", "validate")
RATIOS = ("fastapi", "fastapi_tuned", "starlette", "raw")  # kit's rps divided by each
CAVEAT = (
    "> **Latency caveat.** wrk is a closed-loop load generator: each connection sends its next "
    "request only after the previous answer, so while the server stalls, fewer requests are "
    "sent and the stall is sampled once (coordinated omission). The p50/p90/p99 below are "
    "therefore optimistic: compare tails between cells, not against a latency SLO."
)


# A cell during which the rest of the machine used more than this share of all CPUs (%)
# is flagged: its numbers were taken under someone else's load.
OTHER_LOAD_LIMIT = 10.0


@dataclass(frozen=True)
class Row:
    python: str  # "3.11", "3.14t"
    gil: bool
    record: Record

    @property
    def setup(self) -> tuple[str, bool, str, int]:
        r = self.record
        return (self.python, self.gil, r.runtime, r.workers)


def python_label(version: str, implementation: str) -> str:
    minor = ".".join(version.split(".")[:2])
    return minor + ("t" if "free-threaded" in implementation else "")


def rows_of(runs: Iterable[Run]) -> list[Row]:
    rows = []
    for run in runs:
        label = python_label(run.versions.python, run.versions.implementation)
        rows += [Row(label, r.gil, r) for r in run.records]
    return rows


def _order(values: Iterable[str], preferred: tuple[str, ...]) -> list[str]:
    """``preferred`` order first; other values (a user's paths) in the order they came."""
    seen = list(dict.fromkeys(values))
    return sorted(seen, key=lambda v: preferred.index(v) if v in preferred else len(preferred))


def _ok(r: Record) -> bool:
    return r.requests > 0 and r.rps > 0


def _flag(r: Record) -> str:
    return " ⚠" if r.errors or r.failure or _loaded(r) else ""


def _loaded(r: Record) -> bool:
    return r.other_cpu_pct > OTHER_LOAD_LIMIT


def _num(value: float, digits: int = 0) -> str:
    return f"{value:,.{digits}f}"


def _ratio(kit: Record | None, other: Record | None) -> str:
    if kit is None or other is None or not _ok(kit) or not _ok(other):
        return "-"
    return f"{kit.rps / other.rps:.2f}x"


def _table(header: list[str], body: list[list[str]], text: int = 1) -> list[str]:
    """A Markdown table whose first ``text`` columns are left-aligned, the rest right-aligned."""
    align = [":--"] * text + ["--:"] * (len(header) - text)
    lines = ["| " + " | ".join(header) + " |", "| " + " | ".join(align) + " |"]
    return lines + ["| " + " | ".join(cells) + " |" for cells in body]


def _setup_text(setup: tuple[str, bool, str, int]) -> str:
    python, gil, runtime, workers = setup
    return f"{runtime}, Python {python} (GIL {'on' if gil else 'off'}), {workers} worker(s)"


def summary_table(rows: list[Row], setup: tuple[str, bool, str, int]) -> list[str]:
    """Requests per second per endpoint and framework on one setup, with kit's ratios."""
    cells = {(r.record.endpoint, r.record.framework): r.record for r in rows if r.setup == setup}
    frameworks = _order((f for _, f in cells), FRAMEWORK_ORDER)
    endpoints = _order((e for e, _ in cells), ENDPOINT_ORDER)
    ratios = [f for f in RATIOS if f in frameworks and "kit" in frameworks]
    header = ["endpoint", *(f"{f} rps" for f in frameworks), *(f"kit/{f}" for f in ratios)]
    body = []
    for e in endpoints:
        line = [e]
        for f in frameworks:
            rec = cells.get((e, f))
            line.append(
                "-" if rec is None else (_num(rec.rps) if _ok(rec) else "failed") + _flag(rec)
            )
        line += [_ratio(cells.get((e, "kit")), cells.get((e, f))) for f in ratios]
        body.append(line)
    return _table(header, body)


def _endpoint_section(rows: list[Row], endpoint: str, label: str) -> list[str]:
    mine = [r for r in rows if r.record.endpoint == endpoint]
    setups = sorted({r.setup for r in mine}, key=_setup_key)
    multi_python = len({(s[0], s[1]) for s in setups}) > 1
    header = ["python", "GIL"] if multi_python else []
    header += ["runtime", "framework", "rps", "p50 ms", "p90 ms", "p99 ms", "RSS MB", "start s"]
    header += ["server µs/req", "Postgres µs/req", "other CPU %", "errors", "kit/this"]
    text_columns = len(header) - 11  # the rest are numbers
    body = []
    for setup in setups:
        here = {r.record.framework: r.record for r in mine if r.setup == setup}
        for f in _order(here, FRAMEWORK_ORDER):
            rec = here[f]
            line = [setup[0], "on" if setup[1] else "off"] if multi_python else []
            line += [setup[2], f]
            if _ok(rec):
                line += [_num(rec.rps), _num(rec.p50_ms, 2), _num(rec.p90_ms, 2)]
                line += [_num(rec.p99_ms, 2), _num(rec.rss_mb, 1), _num(rec.startup_s, 2)]
                line += [_cpu(rec.server_cpu_us), _cpu(rec.postgres_cpu_us)]
                line.append(_num(rec.other_cpu_pct, 1) + (" ⚠" if _loaded(rec) else ""))
            else:
                line += ["failed", "-", "-", "-", "-"]
                line += [_num(rec.startup_s, 2) if rec.startup_s else "-", "-", "-", "-"]
            line += [_errors_text(rec), "" if f == "kit" else _ratio(here.get("kit"), rec)]
            body.append(line)
    return [f"## {endpoint}: {label}", "", *_table(header, body, text_columns), ""]


def _cpu(us: float) -> str:
    return _num(us, 1) if us > 0 else "-"


def _errors_text(rec: Record) -> str:
    if rec.errors == 0 and not rec.failure:
        return "0"
    parts = []
    if rec.non_2xx:
        parts.append(f"{rec.non_2xx:,} non-2xx")
    if rec.socket_errors:
        parts.append(f"{rec.socket_errors:,} socket")
    if rec.failure:
        parts.append("see Errors")
    return "⚠ " + ", ".join(parts)


def _loaded_section(rows: list[Row]) -> list[str]:
    loaded = [r for r in rows if _loaded(r.record)]
    if not loaded:
        return []
    cells = ", ".join(
        f"{r.record.framework}/{r.record.runtime}/{r.record.endpoint}/{r.python} "
        f"({r.record.other_cpu_pct:.0f}%)"
        for r in loaded
    )
    return [
        "## Taken under load",
        "",
        f"⚠ {len(loaded)} of {len(rows)} cells ran while other processes used more than "
        f"{OTHER_LOAD_LIMIT:.0f}% of the machine's CPU (other CPU % = all CPUs' busy time minus "
        "the server, Postgres, wrk and the runner): their requests/s are not comparable; their "
        f"CPU time per request is steadier. {cells}.",
        "",
    ]


def _errors_section(rows: list[Row]) -> list[str]:
    bad = [r for r in rows if r.record.errors or r.record.failure]
    lines = ["## Errors", ""]
    if not bad:
        return [
            *lines,
            "None: every cell answered as expected (2xx, or the status its path names) "
            "with no socket errors.",
            "",
        ]
    body = []
    for row in bad:
        rec = row.record
        cell = f"{rec.framework} / {rec.runtime} / {rec.endpoint} / Python {row.python}"
        detail = (rec.failure or "").replace("|", "\\|").replace("\n", " ")
        body.append([cell, detail or "-", _num(rec.non_2xx), _num(rec.socket_errors)])
    table = _table(["cell", "detail", "non-2xx", "socket errors"], body, text=2)
    return [*lines, *table, ""]


def _setup_key(setup: tuple[str, bool, str, int]) -> tuple[object, ...]:
    python, gil, runtime, workers = setup
    rt = RUNTIME_ORDER.index(runtime) if runtime in RUNTIME_ORDER else len(RUNTIME_ORDER)
    return (python, not gil, rt, runtime, workers)


def primary_setup(rows: list[Row]) -> tuple[str, bool, str, int]:
    """granian on the first run's Python, when present: the setup the README quotes."""
    return min({r.setup for r in rows}, key=lambda s: (s[:2] != rows[0].setup[:2], *_setup_key(s)))


def _method(runs: list[Run]) -> list[str]:
    run = runs[0]
    m, mc = run.method, run.machine
    endpoints = ", ".join(
        f"`{redact.path(name)}` = `{redact.path(text)}`" for name, text in m.endpoints.items()
    )
    pythons = "; ".join(
        dict.fromkeys(
            f"{python_label(r.versions.python, r.versions.implementation)} = "
            f"{r.versions.implementation} {r.versions.python}, "
            f"GIL {'on' if r.versions.gil else 'off'}"
            for r in runs
        )
    )
    builds = [
        f"  - {python_label(r.versions.python, r.versions.implementation)}: "
        f"{r.versions.build.text()}"
        for r in runs
    ]
    packages = ", ".join(f"{k} {v}" for k, v in run.versions.packages.items())
    env = ", ".join(f"{k}={v}" for k, v in redact.mapping(m.env).items()) or "defaults"
    headers = ", ".join(f"`{k}: {v}`" for k, v in redact.mapping(m.headers).items())
    dates = sorted({r.method.started_at[:10] for r in runs})
    return [
        "## Method",
        "",
        f"- **Date:** {', '.join(dates)} (run started {m.started_at}, finished {m.finished_at}).",
        f"- **Machine:** {mc.cpu_model}, {mc.cpu_count} CPUs, {mc.memory_gb} GB RAM, "
        f"{mc.platform}; 1-minute load average at the start: {_load_text(m.load_before)}.",
        f"- **Python:** {pythons}. **Packages:** {packages}.",
        "- **Builds** (how each interpreter was compiled; weighs more than the version):",
        *dict.fromkeys(builds),
        *_build_warning(runs),
        "- **Servers:** every cell (app x runtime x endpoint) is a fresh process started with "
        f"`kit serve APP` and {m.workers} worker(s); environment: {env}. "
        "All apps share one PostgreSQL.",
        f"- **Pinning:** {m.pinning}. **PostgreSQL:** {m.postgres}.",
        f"- **Load:** {m.tool}, {m.threads} thread(s), {m.connections} connections, "
        f"{m.warmup_s:g} s warm-up (discarded), then {m.duration_s:g} s measured with "
        f"`--latency`; request timeout {m.timeout_s:g} s; loopback (127.0.0.1) only.",
        f"- **Endpoints:** {endpoints}." + (f" **Headers:** {headers}." if headers else ""),
        "- **Measured:** requests/s and latency percentiles from wrk; errors = non-2xx "
        "responses (wrk counts statuses ≥ 400) + socket errors (connect, read, write, timeout); "
        "RSS = peak resident memory summed over the server's process tree, sampled every 100 ms "
        "during warm-up and run; start s = process start to the first 200 on the ready path; "
        "server and Postgres µs/req = CPU time (utime + stime) of each process tree during the "
        "measured run divided by its requests; other CPU % = what the rest of the machine used "
        f"meanwhile (⚠ above {OTHER_LOAD_LIMIT:.0f}%).",
        "- **Ratios:** kit's requests/s divided by the other app's, same runtime and Python.",
        *_merged(runs),
        "",
        CAVEAT,
        "",
    ]


def _build_warning(runs: list[Run]) -> list[str]:
    keys = {r.versions.build.key() for r in runs}
    if len(keys) < 2:
        return []
    return [
        "- ⚠ **The interpreters were built differently** (provenance, PGO, LTO or shared "
        "library): differences between Python versions here mix the version with the build."
    ]


def _load_text(load: float) -> str:
    return "not recorded" if load < 0 else f"{load:.2f}"


def _merged(runs: list[Run]) -> list[str]:
    """One line per run when several are merged; the load settings above are the first run's."""
    if len(runs) < 2:
        return []
    lines = [f"- **Merged runs:** {len(runs)} (the load line above is the first run's):"]
    for run in runs:
        m = run.method
        python = python_label(run.versions.python, run.versions.implementation)
        lines.append(
            f"  - Python {python}, started {m.started_at}: {m.connections} connections, "
            f"{m.warmup_s:g} s + {m.duration_s:g} s, {m.pinning}, {len(run.records)} cells"
        )
    return lines


def python_table(rows: list[Row], skipped: dict[str, str]) -> list[str]:
    """Requests/s (server µs per request) per endpoint and app, one column per Python; a
    Python that was asked for but not found is a column of "skipped"."""
    pythons = _order((f"{r.python}" for r in rows), ())
    columns = [*pythons, *(p for p in skipped if p not in pythons)]
    if len(columns) < 2:
        return []
    runtime = primary_setup(rows)[2] if rows else ""
    cells = {
        (r.record.endpoint, r.record.framework, r.python): r.record
        for r in rows
        if r.record.runtime == runtime
    }
    present = {(e, f) for e, f, _ in cells}
    endpoints = _order((e for e, _, _ in cells), ENDPOINT_ORDER)  # dicts keep the run's order
    frameworks = _order((f for _, f, _ in cells), FRAMEWORK_ORDER)
    keys = [(e, f) for e in endpoints for f in frameworks if (e, f) in present]
    body = []
    for endpoint, framework in keys:
        line = [endpoint, framework]
        for python in columns:
            rec = cells.get((endpoint, framework, python))
            if python in skipped:
                line.append("skipped")
            elif rec is None:
                line.append("-")
            elif not _ok(rec):
                line.append("failed" + _flag(rec))
            else:
                line.append(f"{_num(rec.rps)} ({_cpu(rec.server_cpu_us)} µs){_flag(rec)}")
        body.append(line)
    notes = [f"- Python {p} skipped: {why}" for p, why in skipped.items()]
    title = f"## By Python ({runtime}): requests/s (server CPU µs per request)"
    return [title, "", *_table(["endpoint", "app", *columns], body, 2), "", *notes, ""]


def markdown(runs: list[Run], charts: dict[str, str], skipped: dict[str, str] | None = None) -> str:
    rows = rows_of(runs)
    apps = _order((r.record.framework for r in rows), FRAMEWORK_ORDER)
    title = "kit vs FastAPI vs Starlette vs raw ASGI"
    if any(a not in FRAMEWORK_ORDER for a in apps):
        title = ", ".join(apps)
    lines = [f"# kit benchmark: {title}", "", *_method(runs)]
    lines += python_table(rows, skipped or {})
    if rows:
        primary = primary_setup(rows)
        lines += [f"## Summary: {_setup_text(primary)}", "", *summary_table(rows, primary), ""]
        for setup in sorted({r.setup for r in rows} - {primary}, key=_setup_key):
            lines += [f"### {_setup_text(setup)}", "", *summary_table(rows, setup), ""]
    lines += _loaded_section(rows)
    lines += _errors_section(rows)
    for title, file in charts.items():
        lines += [f"![{title}]({file})", ""]
    labels = {r.record.endpoint: r for r in rows}
    endpoint_text = {**{k: v for run in runs for k, v in run.method.endpoints.items()}}
    for endpoint in _order(labels, ENDPOINT_ORDER):
        lines += _endpoint_section(rows, endpoint, endpoint_text.get(endpoint, endpoint))
    return "\n".join(lines).rstrip() + "\n"


def _bars(
    rows: list[Row],
    path: Path,
    title: str,
    keep: Callable[[Row], bool],
    series: Callable[[Row], str],
    series_order: tuple[str, ...] = (),
) -> None:
    """One panel per endpoint: frameworks on the x axis, one bar per series value."""
    mine = [r for r in rows if keep(r) and _ok(r.record)]
    endpoints = _order((r.record.endpoint for r in mine), ENDPOINT_ORDER)
    frameworks = _order((r.record.framework for r in mine), FRAMEWORK_ORDER)
    names = _order((series(r) for r in mine), series_order)
    values = {(r.record.endpoint, r.record.framework, series(r)): r.record.rps for r in mine}
    cols = min(3, max(1, len(endpoints)))
    nrows = max(1, math.ceil(len(endpoints) / cols))
    fig = Figure(figsize=(4.2 * cols, 3.2 * nrows + 0.6), layout="constrained")
    fig.suptitle(title)
    axes = fig.subplots(nrows, cols, squeeze=False).flatten()
    width = 0.8 / max(1, len(names))
    for ax, endpoint in zip(axes, endpoints, strict=False):
        for i, name in enumerate(names):
            heights = [values.get((endpoint, f, name), 0.0) for f in frameworks]
            xs = [x + (i - (len(names) - 1) / 2) * width for x in range(len(frameworks))]
            # A single series is coloured per framework, several per series (with a legend).
            colors = [f"C{j}" for j in range(len(frameworks))] if len(names) == 1 else f"C{i}"
            ax.bar(xs, heights, width, label=name, color=colors)
        ax.set_title(endpoint)
        ax.set_xticks(range(len(frameworks)), frameworks, rotation=30, ha="right", fontsize=8)
        ax.set_ylabel("requests/s")
        ax.tick_params(axis="y", labelsize=8)
        ax.grid(axis="y", alpha=0.3)
    for ax in axes[len(endpoints) :]:
        ax.set_visible(False)
    if len(names) > 1 and endpoints:
        handles, labels = axes[0].get_legend_handles_labels()
        fig.legend(handles, labels, loc="outside lower center", ncols=len(names), fontsize=9)
    if not endpoints:
        axes[0].text(0.5, 0.5, "no successful cells", ha="center", va="center")
    fig.savefig(path, dpi=110)


def charts(runs: list[Run], out: Path, stem: str) -> dict[str, str]:
    """Write the three charts; return {title: file name} for the report to link."""
    rows = rows_of(runs)
    if not rows:
        return {}
    python, gil, runtime, workers = primary_setup(rows)

    def same_python(r: Row) -> bool:
        return (r.python, r.gil, r.record.workers) == (python, gil, workers)

    def same_runtime(r: Row) -> bool:
        return (r.record.runtime, r.record.workers) == (runtime, workers)

    specs = {
        "endpoints": (
            f"Requests/s per endpoint ({runtime}, Python {python})",
            lambda r: same_python(r) and r.record.runtime == runtime,
            lambda r: runtime,
            (),
        ),
        "runtimes": (
            f"Requests/s by runtime (Python {python})",
            same_python,
            lambda r: r.record.runtime,
            RUNTIME_ORDER,
        ),
        "python": (
            f"Requests/s by Python version ({runtime})",
            same_runtime,
            lambda r: f"{r.python} (GIL {'on' if r.gil else 'off'})",
            (),
        ),
    }
    written = {}
    for name, (title, keep, series, order) in specs.items():
        file = f"{stem}-{name}.png"
        _bars(rows, out / file, title, keep, series, order)
        written[title] = file
    return written


def write(
    runs: list[Run], out: Path, stem: str, skipped: dict[str, str] | None = None
) -> list[Path]:
    """Write ``stem.md`` and its charts into ``out``; return the paths written. ``skipped``:
    Pythons that were asked for and not run, with the reason."""
    files = charts(runs, out, stem)
    report = out / f"{stem}.md"
    report.write_text(markdown(runs, files, skipped))
    return [report, *(out / f for f in files.values())]
