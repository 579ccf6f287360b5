"""The ``kit`` command: a table of subcommands, each imported only when it runs."""

from __future__ import annotations

import os
import sys
from collections.abc import Callable, Sequence
from importlib import import_module

from kit.settings import SettingsError

# name -> ("module:function", one-line help); each function takes argv and returns an exit code.
COMMANDS: dict[str, tuple[str, str]] = {
    "serve": ("kit.serve:main", "serve an ASGI app on the runtime KIT_RUNTIME names"),
    "migrate": ("kit.db.migrate:main", "apply an app's SQL migrations"),
    "new": ("kit.scaffold:main", "scaffold services/NAME with app, schemas, migration, tests"),
    "openapi": ("kit.openapi.cli:main", "print an app's OpenAPI 3.1 document as JSON"),
    "bench": ("bench.runner:main", "run the framework x runtime benchmark and write results"),
}


def _usage() -> str:
    width = max(map(len, COMMANDS))
    lines = ["usage: kit COMMAND [ARGS...]", "", "commands:"]
    lines += [f"  {name:<{width}}  {help_}" for name, (_, help_) in COMMANDS.items()]
    return "\n".join(lines)


def main(argv: Sequence[str] | None = None) -> int:
    args = list(sys.argv[1:] if argv is None else argv)
    sys.path.insert(0, os.getcwd())  # like uvicorn --app-dir .: APP imports from the current dir
    if not args or args[0] in ("-h", "--help", "help"):
        print(_usage())
        return 0 if args else 2
    name, rest = args[0], args[1:]
    if name not in COMMANDS:
        print(f"kit: unknown command {name!r}; use one of {', '.join(COMMANDS)}", file=sys.stderr)
        return 2
    module_name, _, attr = COMMANDS[name][0].partition(":")
    command: Callable[[list[str]], int] = getattr(import_module(module_name), attr)
    try:
        return command(rest)
    except SettingsError as exc:
        print(f"kit {name}: {exc}", file=sys.stderr)
        return 2


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
