"""docs/settings.md, generated from the settings' own definitions.

``python -m kit.settings_reference`` rewrites the page; ``--check`` only compares (exit 1 when
it differs). Each ``Settings`` field says what it does in its ``doc=``; the variables read
outside ``Settings`` are listed in ``OTHER_VARIABLES`` below.
"""

from __future__ import annotations

import argparse
import sys
from collections.abc import Sequence
from dataclasses import MISSING, Field, dataclass, fields
from pathlib import Path
from typing import Any

from kit.settings import Settings

PAGE = Path("docs/settings.md")
COMMAND = "python -m kit.settings_reference"


@dataclass(frozen=True)
class Variable:
    """An environment variable read outside ``kit.Settings``."""

    name: str
    read_by: str
    default: str
    doc: str


OTHER_VARIABLES = (
    Variable(
        "OTEL_SERVICE_NAME",
        "kit.ops.tracing",
        "the app's title",
        "Service name on every span (with `KIT_OTEL=1`).",
    ),
    Variable(
        "OTEL_TRACES_EXPORTER",
        "kit.ops.tracing",
        "`otlp`",
        "Where spans go: `otlp` (needs the `otlp` extra), `console` or `none`; comma-separated.",
    ),
    Variable(
        "OTEL_TRACES_SAMPLER",
        "OpenTelemetry SDK",
        "`parentbased_always_on`",
        "Sampler; `parentbased_traceidratio` with `OTEL_TRACES_SAMPLER_ARG` keeps a share.",
    ),
    Variable(
        "OTEL_TRACES_SAMPLER_ARG",
        "OpenTelemetry SDK",
        "unset",
        "The sampler's argument, e.g. `0.1` for 10% of traces.",
    ),
    Variable(
        "OTEL_EXPORTER_OTLP_ENDPOINT",
        "OpenTelemetry SDK",
        "`http://localhost:4318`",
        "The OTLP collector (and the other `OTEL_EXPORTER_OTLP_*` variables of the SDK).",
    ),
    Variable(
        "KIT_GIT_COMMIT",
        "kit.ops.admin",
        "the checkout's `git rev-parse HEAD`",
        "Commit shown by `/admin/info`; `GIT_COMMIT` and `SOURCE_COMMIT` are read next.",
    ),
    Variable(
        "GIT_COMMIT",
        "kit.ops.admin",
        "unset",
        "Commit shown by `/admin/info`, after `KIT_GIT_COMMIT`.",
    ),
    Variable(
        "SOURCE_COMMIT",
        "kit.ops.admin",
        "unset",
        "Commit shown by `/admin/info`, after `GIT_COMMIT` (set by some build services).",
    ),
    Variable(
        "KIT_GENERAL_PLAN",
        "kit._plan",
        "`0`",
        "`1`: every typed route runs in the general plan shape (the solver), to compare the "
        "shapes with it (docs/request-path.md); read when kit is imported.",
    ),
    Variable(
        "KIT_TEST_RUNTIMES",
        "tests, services' tests, tox",
        "every installed runtime",
        "Comma-separated runtimes the runtime tests run on; each tox cell sets its own.",
    ),
    Variable(
        "CATALOG_PAGE_SIZE",
        "services/catalog",
        "`20`",
        "The default `?limit=` of `GET /products`.",
    ),
    Variable(
        "CATALOG_URL",
        "services/orders",
        "unset",
        "Base URL of services/catalog, which the orders service calls.",
    ),
    Variable(
        "ORDERS_NOTIFY_URL",
        "services/orders",
        "unset (no notifications)",
        'Receives `POST /notifications {"order_id": N}` for every stored order, at least once, '
        "with an idempotency key header.",
    ),
    Variable(
        "ORDERS_CATALOG_TIMEOUT",
        "services/orders",
        "`2`",
        "Seconds per call to the catalog.",
    ),
    Variable(
        "ORDERS_CATALOG_CACHE_TTL",
        "services/orders",
        "`30`",
        "Seconds a catalog answer is cached.",
    ),
    Variable(
        "ORDERS_TASK_WORKERS",
        "services/orders",
        "`4`",
        "Confirmations one orders process sends at once (durable jobs, `kit.jobs`).",
    ),
    Variable(
        "ORDERS_CONFIRM_ATTEMPTS",
        "services/orders",
        "`20`",
        "Attempts at sending a confirmation before its job is dead (retried from /admin/jobs).",
    ),
    Variable(
        "BENCH_UPSTREAM_URL",
        "services/bench",
        "unset",
        "Upstream the bench service's outbound endpoint calls (set by the outbound benchmark).",
    ),
    Variable(
        "RUNTIMES_UVICORN_MAX_HEADER_SIZE",
        "runtimes/uvicorn",
        "`65536`",
        "Internal: the header-size bound handed to uvicorn's workers; set by kit, not by you.",
    ),
)

KINDS = {
    "str": "string",
    "int": "integer",
    "float": "number",
    "bool": "boolean",
    "tuple[str, ...]": "list",
}


def undocumented() -> list[str]:
    """Settings fields without a ``doc=``."""
    return [f.name for f in fields(Settings) if not f.metadata.get("doc")]


def _kind(f: Field[Any]) -> str:
    text = str(f.type)
    optional = text.endswith(" | None")
    kind = KINDS.get(text.removesuffix(" | None"), text)
    return f"{kind}, optional" if optional else kind


def _default(f: Field[Any]) -> str:
    if f.metadata.get("shown"):
        return str(f.metadata["shown"])
    if f.default is MISSING:
        raise ValueError(
            f"kit/settings.py: Settings.{f.name} has a computed default; "
            f"say how to show it with shown= in its _env(...)"
        )
    value = f.default
    if value is None or value == ():
        return "unset"
    if isinstance(value, bool):
        return "`1`" if value else "`0`"
    if isinstance(value, float):
        return f"`{value:g}`"
    if value == "":
        return "empty"
    return f"`{value}`"


def _cell(text: str) -> str:
    return text.replace("|", "\\|").replace("\n", " ")


def render() -> str:
    """The whole page, as ``python -m kit.settings_reference`` writes it."""
    missing = undocumented()
    if missing:
        raise ValueError(
            "kit/settings.py: give these Settings fields a doc= (what the setting does) "
            f"in their _env(...): {', '.join(missing)}"
        )
    lines = [
        "# Settings reference",
        "",
        f"<!-- Generated by `{COMMAND}` from kit/settings.py; do not edit by hand. -->",
        "",
        "Every setting is an environment variable, read once into the frozen `kit.Settings`",
        "(`Settings.from_env()`; `App(settings=...)` takes one built in code). `kit serve` flags",
        "override their variables. A value outside the allowed ones stops the process with one",
        "line naming the variable and what it accepts, exit code 2. Booleans accept `1/0`,",
        "`true/false`, `yes/no` and `on/off`.",
        "",
        "## kit.Settings",
        "",
        "| variable | type | accepts | default | what it does |",
        "|---|---|---|---|---|",
    ]
    for f in fields(Settings):
        accepts = getattr(f.metadata["parse"], "accepts", "")
        lines.append(
            f"| `{f.metadata['env']}` | {_kind(f)} | {_cell(accepts)} | {_cell(_default(f))} "
            f"| {_cell(f.metadata['doc'])} |"
        )
    lines += [
        "",
        "## Other variables",
        "",
        "Read outside `kit.Settings`: by the OpenTelemetry SDK, by a module for one purpose, or",
        "by one of the services in this repository.",
        "",
        "| variable | read by | default | what it does |",
        "|---|---|---|---|",
    ]
    for v in OTHER_VARIABLES:
        lines.append(f"| `{v.name}` | {v.read_by} | {_cell(v.default)} | {_cell(v.doc)} |")
    return "\n".join(lines) + "\n"


def settings_variables() -> set[str]:
    """The variables of ``kit.Settings``."""
    return {f.metadata["env"] for f in fields(Settings)}


def variables() -> set[str]:
    """Every environment variable the reference documents."""
    return settings_variables() | {v.name for v in OTHER_VARIABLES}


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog=COMMAND, description="Write docs/settings.md from the Settings definitions."
    )
    parser.add_argument("--output", type=Path, default=PAGE, help="default: %(default)s")
    parser.add_argument(
        "--check", action="store_true", help="only compare; exit 1 when the page differs"
    )
    args = parser.parse_args(argv)
    try:
        text = render()
    except ValueError as error:
        print(f"kit: {error}", file=sys.stderr)
        return 2
    current = args.output.read_text() if args.output.exists() else None
    if args.check:
        if current != text:
            print(f"kit: {args.output} is out of date; run `{COMMAND}`", file=sys.stderr)
            return 1
        return 0
    if current != text:
        args.output.parent.mkdir(parents=True, exist_ok=True)
        args.output.write_text(text)
        print(f"wrote {args.output}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
