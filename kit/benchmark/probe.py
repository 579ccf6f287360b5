"""Print the interpreter's version, build, GIL state and package versions as JSON.

Run as a script (``python probe.py PACKAGE...``) under the interpreter the servers will use
(``--python``), which may be another Python than the runner's and may lack kit's dependencies:
this file imports only the standard library. On a free-threaded build an
extension module that is not marked safe turns the GIL back on when imported, so the server
stack is imported before the GIL is read.
"""

from __future__ import annotations

import contextlib
import importlib
import json
import os
import platform
import sys
import sysconfig
from importlib import metadata

# The runner adds each runtime's server package (runtimes.registry) on the command line.
PACKAGES = (
    "kit",
    "starlette",
    "msgspec",
    "asyncpg",
    "fastapi",
    "pydantic",
    "uvicorn-worker",
    "uvloop",
    "httptools",
)


def _flags() -> str:
    names = ("CONFIG_ARGS", "PY_CFLAGS", "PY_CFLAGS_NODIST", "PY_LDFLAGS_NODIST", "OPT", "LDFLAGS")
    return " ".join(str(sysconfig.get_config_var(n) or "") for n in names)


def provenance(executable: str) -> str:
    """Where this interpreter comes from, as far as its path tells."""
    real = os.path.realpath(executable)
    if "/.pyenv/" in real:
        return "pyenv (built from source here)"
    if "/uv/python/" in real or "cpython-" in real:
        return "python-build-standalone (uv)"
    if real.startswith(("/usr/bin/", "/usr/lib/")):
        return "distribution package"
    if real.startswith("/usr/local/"):
        return "/usr/local (python.org source build or official container image)"
    return os.path.dirname(real)


def build() -> dict[str, object]:
    """How the interpreter was compiled: the flags that weigh more than the version.

    PGO and LTO are read from the configure arguments and compiler flags sysconfig kept;
    a distribution may apply them in its own build scripts without leaving a trace there
    (Debian does), so ``False`` means "not in the recorded flags", and ``provenance`` says
    where the build comes from.
    """
    flags = _flags()
    return {
        "provenance": provenance(sys.executable),
        "executable": os.path.realpath(sys.executable),
        "pgo": "--enable-optimizations" in flags or "-fprofile-use" in flags,
        "lto": "--with-lto" in flags or "-flto" in flags,
        "shared": bool(sysconfig.get_config_var("Py_ENABLE_SHARED")),
        "free_threaded": bool(sysconfig.get_config_var("Py_GIL_DISABLED")),
        "debug": bool(sysconfig.get_config_var("Py_DEBUG")),
        "compiler": platform.python_compiler(),
        "config_args": str(sysconfig.get_config_var("CONFIG_ARGS") or ""),
    }


def describe(extra: list[str] | None = None) -> dict[str, object]:
    packages = {}
    for name in dict.fromkeys([*PACKAGES, *(extra or [])]):
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
        "build": build(),
    }


if __name__ == "__main__":
    json.dump(describe(sys.argv[1:]), sys.stdout)
