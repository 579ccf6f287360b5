"""Print the interpreter's version, GIL state and package versions as JSON.

Run as a script under the interpreter the servers will use (``--python``), which may be another
Python than the runner's. On a free-threaded build an extension module that is not marked safe
turns the GIL back on when imported, so the server stack is imported before the GIL is read.
"""

from __future__ import annotations

import contextlib
import importlib
import json
import platform
import sys
import sysconfig
from importlib import metadata

PACKAGES = (
    "kit",
    "starlette",
    "msgspec",
    "asyncpg",
    "fastapi",
    "pydantic",
    "granian",
    "uvicorn",
    "hypercorn",
    "gunicorn",
    "uvicorn-worker",
    "uvloop",
    "httptools",
)


def describe() -> dict[str, object]:
    packages = {}
    for name in PACKAGES:
        try:
            packages[name] = metadata.version(name)
        except metadata.PackageNotFoundError:
            continue
        with contextlib.suppress(Exception):  # a broken package must not hide the rest
            importlib.import_module(name)
    free_threaded = bool(sysconfig.get_config_var("Py_GIL_DISABLED"))
    is_gil_enabled = getattr(sys, "_is_gil_enabled", None)
    return {
        "python": platform.python_version(),
        "implementation": platform.python_implementation()
        + (" free-threaded" if free_threaded else ""),
        "gil": True if is_gil_enabled is None else bool(is_gil_enabled()),
        "packages": packages,
    }


if __name__ == "__main__":
    json.dump(describe(), sys.stdout)
