"""``kit bench``: its arguments, and the one-line refusal when the run cannot work here.

This module imports only the standard library and bench.matrix, so ``kit bench --help`` works
from any install; the harness itself (bench.runner) needs the bench extra and a checkout.
"""

from __future__ import annotations

import argparse
import sys
from collections.abc import Callable
from importlib.util import find_spec
from pathlib import Path

from bench.matrix import ENDPOINTS, FRAMEWORKS, RUNTIMES

ROOT = Path(__file__).resolve().parents[1]  # servers import the apps from here
RESULTS = Path(__file__).with_name("results")
# What a run imports beyond kit's core: the peers, the charts, the process sampling.
BENCH_MODULES = ("psutil", "matplotlib", "fastapi", "pydantic")
MERGE_MODULES = ("matplotlib",)


class UsageError(ValueError):
    pass


def _names(allowed: list[str] | tuple[str, ...], what: str) -> Callable[[str], list[str]]:
    def parse(raw: str) -> list[str]:
        names = [n.strip() for n in raw.split(",") if n.strip()]
        unknown = [n for n in names if n not in allowed]
        if unknown or not names:
            raise argparse.ArgumentTypeError(
                f"unknown {what} {', '.join(unknown) or repr(raw)}; use {', '.join(allowed)}"
            )
        return names

    return parse


def _spec(raw: str) -> str:
    module, _, attr = raw.partition(":")
    if not module or not attr:
        raise argparse.ArgumentTypeError(f"{raw!r} is not MODULE:ATTR")
    return raw


def _method(raw: str) -> str:
    if not raw.isalpha():
        raise argparse.ArgumentTypeError(f"{raw!r} is not an HTTP method")
    return raw.upper()


def _positive(raw: str) -> int:
    value = int(raw)
    if value < 1:
        raise argparse.ArgumentTypeError(f"{raw} must be >= 1")
    return value


def parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(
        prog="kit bench",
        description="Benchmark kit against FastAPI, Starlette and raw ASGI on real servers.",
    )
    p.add_argument(
        "--quick", action="store_true", help="about two minutes: 4 apps, granian, 3 endpoints"
    )
    p.add_argument("--frameworks", type=_names(list(FRAMEWORKS), "framework"))
    p.add_argument("--runtimes", type=_names(RUNTIMES, "runtime"))
    p.add_argument("--endpoints", type=_names(list(ENDPOINTS), "endpoint"))
    p.add_argument("--connections", type=_positive, default=64)
    p.add_argument("--duration", type=_positive, help="measured seconds per cell (default 10)")
    p.add_argument("--warmup", type=int, help="warm-up seconds per cell (default 3)")
    p.add_argument("--timeout", type=_positive, default=2, help="wrk's request timeout, seconds")
    p.add_argument("--workers", type=_positive, default=1)
    p.add_argument(
        "--python",
        metavar="3.11,3.12,...|PATH",
        help="versions (found on PATH, by pyenv, by uv; a venv each under .kit/) or interpreter "
        "paths, comma-separated; one merged report. A single path is used as it is",
    )
    mine = p.add_argument_group("your own app (instead of the built-in apps and endpoints)")
    mine.add_argument("--app", metavar="MODULE:ATTR", type=_spec, help="the ASGI app to serve")
    mine.add_argument(
        "--path",
        action="append",
        metavar="/PATH[#STATUS]",
        help="a path to load (repeatable); /missing#404 expects and measures a 404",
    )
    mine.add_argument("--method", default="GET", type=_method, help="HTTP method for --path")
    mine.add_argument("--body", type=Path, metavar="FILE", help="request body, sent as JSON")
    mine.add_argument(
        "--ready-path",
        metavar="/PATH",
        help="polled until 200 before each cell (default: the first --path)",
    )
    p.add_argument("--out", type=Path, default=RESULTS, help="directory for JSON, Markdown, PNGs")
    p.add_argument(
        "--merge", nargs="+", type=Path, metavar="JSON", help="merge result files into one report"
    )
    return p


def missing_prerequisites(args: argparse.Namespace, root: Path = ROOT) -> str | None:
    """Why this run cannot start here (one line), or None."""
    needed = MERGE_MODULES if args.merge else BENCH_MODULES
    missing = [name for name in needed if find_spec(name) is None]
    if missing:
        return (
            f"needs the bench extra (pip install 'kit-asgi[bench]'); missing: {', '.join(missing)}"
        )
    if args.app is not None and args.path is None:
        return "--app needs at least one --path to load"
    if not args.merge and not (root / "services" / "bench" / "app.py").is_file():
        return (
            f"needs a kit checkout: services/bench/app.py not found under {root}; "
            "run it from the repository (make bench)"
        )
    return None


def main(argv: list[str]) -> int:
    args = parser().parse_args(argv)
    problem = missing_prerequisites(args)
    if problem is not None:
        print(f"kit bench: {problem}", file=sys.stderr)
        return 2
    from bench.runner import run

    return run(args)
