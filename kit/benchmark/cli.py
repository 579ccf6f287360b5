"""``kit bench``: its arguments, and the one-line refusal when the run cannot work here.

This module imports only the standard library and runtimes, so ``kit bench --help`` works from
any install; the harness itself (kit.benchmark.runner) needs the bench extra.
"""

from __future__ import annotations

import argparse
import os
import re
import sys
from importlib.util import find_spec
from pathlib import Path

from kit.benchmark.study import CHECKOUT
from runtimes.registry import NAMES

# What a run imports beyond kit's core: the charts and the process sampling; the comparison
# also imports its peers.
BENCH_MODULES: tuple[str, ...] = ("psutil", "matplotlib")
PEER_MODULES: tuple[str, ...] = ("fastapi", "pydantic")
MERGE_MODULES: tuple[str, ...] = ("matplotlib",)
MAX_HEADERS = 32
MAX_HEADER_BYTES = 8192
_TOKEN = re.compile(r"^[!#$%&'*+.^_`|~0-9A-Za-z-]+$")  # RFC 9110 field name


def _names(raw: str) -> list[str]:
    names = [n.strip() for n in raw.split(",") if n.strip()]
    if not names:
        raise argparse.ArgumentTypeError(f"no name in {raw!r}")
    return names


def _runtimes(raw: str) -> list[str]:
    names = _names(raw)
    unknown = [n for n in names if n not in NAMES]
    if unknown:
        raise argparse.ArgumentTypeError(
            f"unknown runtime {', '.join(unknown)}; use {', '.join(NAMES)}"
        )
    return names


def _spec(raw: str) -> str:
    module, _, attr = raw.partition(":")
    if not module or not attr:
        raise argparse.ArgumentTypeError(f"{raw!r} is not MODULE:ATTR")
    return raw


def _method(raw: str) -> str:
    if not raw.isalpha() or len(raw) > 20:
        raise argparse.ArgumentTypeError(f"{raw!r} is not an HTTP method")
    return raw.upper()


def _positive(raw: str) -> int:
    value = int(raw)
    if value < 1:
        raise argparse.ArgumentTypeError(f"{raw} must be >= 1")
    return value


def _header(raw: str) -> tuple[str, str]:
    """``NAME:VALUE`` as given; ``${VAR}`` in VALUE is read from the environment later."""
    name, colon, value = raw.partition(":")
    name, value = name.strip(), value.strip()
    if not colon or not _TOKEN.match(name):
        raise argparse.ArgumentTypeError(f"--header {name or raw!r}: give NAME:VALUE")
    if len(raw.encode()) > MAX_HEADER_BYTES:
        raise argparse.ArgumentTypeError(f"--header {name}: longer than {MAX_HEADER_BYTES} bytes")
    return name, value


def parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(
        prog="kit bench",
        description="Benchmark an app on real servers under wrk. In a kit checkout, without "
        "--app: kit against FastAPI, Starlette and raw ASGI (bench/matrix.py).",
    )
    p.add_argument(
        "--quick", action="store_true", help="about two minutes: 4 apps, one runtime, 3 endpoints"
    )
    p.add_argument("--frameworks", type=_names, help="apps of the comparison, comma-separated")
    p.add_argument("--runtimes", type=_runtimes, help=f"comma-separated: {', '.join(NAMES)}")
    p.add_argument("--endpoints", type=_names, help="endpoints of the comparison")
    p.add_argument("--connections", type=_positive, default=64)
    p.add_argument("--duration", type=_positive, help="measured seconds per cell (default 10)")
    p.add_argument("--warmup", type=int, help="warm-up seconds per cell (default 3)")
    p.add_argument("--timeout", type=_positive, default=2, help="wrk's request timeout, seconds")
    p.add_argument("--workers", type=_positive, default=1)
    p.add_argument(
        "--ready-timeout",
        type=_positive,
        default=60,
        help="seconds a server has to become ready before its cell fails (default 60)",
    )
    p.add_argument(
        "--python",
        metavar="3.11,3.12,...|PATH",
        help="versions (found on PATH, by pyenv, by uv; a venv each under .kit/, in a checkout) "
        "or interpreter paths, comma-separated; one merged report. A single path is used as it is",
    )
    mine = p.add_argument_group("your own app (instead of the comparison)")
    mine.add_argument("--app", metavar="MODULE:ATTR", type=_spec, help="the ASGI app to serve")
    mine.add_argument(
        "--path",
        action="append",
        metavar="/PATH[#STATUS]",
        help="a path to load (repeatable); /missing#404 expects and measures a 404, "
        "/events#202 with --method POST a 202",
    )
    mine.add_argument(
        "--method",
        default="GET",
        type=_method,
        help="HTTP method for every --path, its probes included (default GET)",
    )
    mine.add_argument(
        "--body", type=Path, metavar="FILE", help="request body for every --path, sent as JSON"
    )
    mine.add_argument(
        "--ready-path",
        metavar="/PATH",
        help="polled with GET until 200 before each cell (default: the first --path, "
        "sent as it is loaded until it answers its expected status)",
    )
    p.add_argument(
        "--header",
        action="append",
        type=_header,
        default=[],
        metavar="NAME:VALUE",
        help="a request header for the load and the probes (repeatable); ${VAR} in VALUE is "
        "read from the environment, e.g. 'Authorization:Bearer ${TOKEN}' (single quotes); "
        "secret values are redacted in the report",
    )
    p.add_argument("--out", type=Path, help="directory for JSON, Markdown, PNGs")
    p.add_argument(
        "--merge", nargs="+", type=Path, metavar="JSON", help="merge result files into one report"
    )
    return p


def missing_prerequisites(args: argparse.Namespace) -> str | None:
    """Why this run cannot start here (one line), or None."""
    if not args.merge and args.app is None and not (CHECKOUT / "bench" / "matrix.py").is_file():
        return (
            f"needs a kit checkout for the comparison (bench/ not found under {CHECKOUT}); "
            "benchmark your own app with --app MODULE:ATTR --path /PATH"
        )
    if args.merge:
        needed = MERGE_MODULES
    elif args.app is None:
        needed = BENCH_MODULES + PEER_MODULES
    else:
        needed = BENCH_MODULES
    missing = [name for name in needed if find_spec(name) is None]
    if missing:
        return (
            f"needs the bench extra (pip install 'kit-asgi[bench]'); missing: {', '.join(missing)}"
        )
    if args.app is not None and args.path is None:
        return "--app needs at least one --path to load"
    if len(args.header) > MAX_HEADERS:
        return f"at most {MAX_HEADERS} --header"
    return None


def main(argv: list[str]) -> int:
    args = parser().parse_args(argv)
    problem = missing_prerequisites(args)
    if problem is not None:
        print(f"kit bench: {problem}", file=sys.stderr)
        return 2
    # The harness needs the bench extra, checked just above.
    from kit.benchmark.runner import run

    return run(args)


def add_runtime_option(parser: argparse.ArgumentParser) -> None:
    """``--runtime`` for a study script: a runtime of the table, KIT_RUNTIME's value by default
    (read as ``kit serve`` reads it, so a bad value is the same one-line error)."""
    from kit.settings import Settings

    variable = Settings.env_name("runtime")
    given = {variable: os.environ[variable]} if variable in os.environ else {}
    parser.add_argument(
        "--runtime",
        choices=NAMES,
        default=Settings.from_env(given).runtime,
        help=f"default: {variable}, else kit's default runtime",
    )
