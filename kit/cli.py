"""The ``kit`` command: subcommands registered in the ``kit.commands`` entry-point group.

Each entry point names a function that takes argv and returns an exit code; it is imported only
when it runs. Other distributions can add commands to the group. ``bench`` is registered the
same way: its harness is ``kit.benchmark``, shipped in the wheel, so ``kit bench --app`` works
from an installed kit; in a checkout it also runs the comparison study in bench/.
"""

from __future__ import annotations

import os
import sys
from collections.abc import Callable, Sequence
from importlib.metadata import entry_points

from kit.imports import import_from_string
from kit.settings import SettingsError

GROUP = "kit.commands"
# Used when kit runs from a checkout that was never installed (no entry points to read).
BUILTIN: dict[str, str] = {
    "serve": "kit.serve:main",
    "migrate": "kit.db.migrate:main",
    "db": "kit.db.reset:main",
    "new": "kit.scaffold:main",
    "openapi": "kit.openapi.cli:main",
    "bench": "kit.benchmark.cli:main",
}
HELP: dict[str, str] = {
    "serve": "serve an ASGI app on the runtime KIT_RUNTIME names",
    "migrate": "apply an app's SQL migrations",
    "db": "kit db reset APP: start the embedded development database again",
    "new": "scaffold services/NAME with app, schemas, migration, tests",
    "openapi": "print an app's OpenAPI 3.1 document as JSON",
    "bench": "run the framework x runtime benchmark and write results",
}


def commands() -> dict[str, str]:
    """Command name -> ``module:function``, from the entry-point group."""
    found = {ep.name: ep.value for ep in entry_points(group=GROUP)}
    if not found:
        return dict(BUILTIN)
    # kit's own first, in their usual order; then any other distribution's, by name
    return {**{n: found[n] for n in BUILTIN if n in found}, **dict(sorted(found.items()))}


def _usage(table: dict[str, str]) -> str:
    width = max(map(len, table))
    lines = ["usage: kit COMMAND [ARGS...]", "", "commands:"]
    lines += [f"  {name:<{width}}  {HELP.get(name, target)}" for name, target in table.items()]
    return "\n".join(lines)


def main(argv: Sequence[str] | None = None) -> int:
    args = list(sys.argv[1:] if argv is None else argv)
    sys.path.insert(0, os.getcwd())  # like uvicorn --app-dir .: APP imports from the current dir
    table = commands()
    if not args or args[0] in ("-h", "--help", "help"):
        print(_usage(table))
        return 0 if args else 2
    name, rest = args[0], args[1:]
    if name not in table:
        print(f"kit: unknown command {name!r}; use one of {', '.join(table)}", file=sys.stderr)
        return 2
    command: Callable[[list[str]], int] = import_from_string(table[name])
    try:
        return command(rest)
    except SettingsError as exc:
        print(f"kit {name}: {exc}", file=sys.stderr)
        return 2


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
