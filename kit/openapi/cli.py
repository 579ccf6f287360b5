"""``kit openapi APP``: print the app's OpenAPI 3.1 document as JSON."""

from __future__ import annotations

import argparse
import sys

import msgspec

from kit.app import App
from kit.openapi.document import build_document, encode_document
from kit.settings import Settings


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="kit openapi", description="Print an app's OpenAPI 3.1 document as JSON."
    )
    parser.add_argument("app", nargs="?", help="module:attr (default: KIT_APP)")
    parser.add_argument("--indent", type=int, default=2, help="spaces per level; 0 for one line")
    parser.add_argument("--output", "-o", help="write to this file instead of stdout")
    return parser


def main(argv: list[str]) -> int:
    from kit.serve import ServeError, import_app

    args = build_parser().parse_args(argv)
    target = args.app or Settings.from_env().app
    if not target:
        print("kit openapi: no APP given and KIT_APP is not set", file=sys.stderr)
        return 2
    try:
        app = import_app(target)
    except ServeError as exc:
        print(f"kit openapi: {exc}", file=sys.stderr)
        return 2
    if not isinstance(app, App):
        print(f"kit openapi: {target!r} is not a kit App", file=sys.stderr)
        return 2
    encoded = encode_document(build_document(app))
    text = (msgspec.json.format(encoded, indent=args.indent) if args.indent else encoded).decode()
    if args.output:
        with open(args.output, "w", encoding="utf-8") as file:
            file.write(text + "\n")
    else:
        sys.stdout.write(text + "\n")
    return 0
