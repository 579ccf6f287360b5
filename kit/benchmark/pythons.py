"""``--python 3.11,3.12,...``: find each interpreter and give it a virtualenv with kit in it.

An interpreter is looked for on PATH (``python3.12``, ``python3.14t``), then with
``pyenv prefix``, then with ``uv python find``; a candidate counts only if it runs and reports
the asked version (a pyenv shim for an inactive version does not). One virtualenv per
interpreter lives under ``.kit/bench-venvs/`` and is reused while pyproject.toml is unchanged.
"""

from __future__ import annotations

import hashlib
import json
import re
import shutil
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path

from runtimes.registry import NAMES

VERSION = re.compile(r"^3\.(\d+)(t?)$")
# The server venv's extras: kit, every runtime, the peer apps; no charts (the runner draws).
EXTRAS = ",".join(("embedded", *NAMES, "peers"))
ASK = (
    "import json, sys, sysconfig; print(json.dumps([sys.executable, list(sys.version_info[:2]),"
    " bool(sysconfig.get_config_var('Py_GIL_DISABLED'))]))"
)


class PythonMissing(RuntimeError):
    """No interpreter for a requested version, or its virtualenv could not be built."""


@dataclass(frozen=True)
class Wanted:
    label: str  # "3.12", "3.14t", or the path as given
    path: str | None = None  # an interpreter given by path
    minor: int = 0
    free_threaded: bool = False


def parse(raw: str) -> list[Wanted]:
    """``3.11,3.14t,/opt/py/bin/python3`` -> what to look for; raises ValueError on nonsense."""
    wanted = []
    for item in (s.strip() for s in raw.split(",")):
        if not item:
            continue
        if "/" in item:
            wanted.append(Wanted(item, path=item))
            continue
        match = VERSION.match(item)
        if match is None:
            raise ValueError(f"--python {item}: give a version like 3.12 or 3.14t, or a path")
        wanted.append(Wanted(item, minor=int(match.group(1)), free_threaded=bool(match.group(2))))
    if not wanted:
        raise ValueError("--python: no interpreter given")
    return wanted


def _ask(candidate: str) -> tuple[str, int, bool] | None:
    try:
        proc = subprocess.run(
            [candidate, "-c", ASK], capture_output=True, text=True, timeout=30, check=False
        )
        executable, (_, minor), free_threaded = json.loads(proc.stdout)
    except (OSError, ValueError, subprocess.TimeoutExpired):
        return None
    return (str(executable), int(minor), bool(free_threaded)) if proc.returncode == 0 else None


def _output(argv: list[str]) -> str:
    if shutil.which(argv[0]) is None:
        return ""
    try:
        proc = subprocess.run(argv, capture_output=True, text=True, timeout=60, check=False)
    except (OSError, subprocess.TimeoutExpired):
        return ""
    return proc.stdout.strip() if proc.returncode == 0 else ""


def candidates(want: Wanted) -> list[tuple[str, str]]:
    """(where, path) in the order they are tried."""
    if want.path is not None:
        return [("given", want.path)]
    name = f"python3.{want.minor}" + ("t" if want.free_threaded else "")
    found = []
    on_path = shutil.which(name)
    if on_path:
        found.append(("PATH", on_path))
    prefix = _output(["pyenv", "prefix", want.label])
    if prefix:
        found.append(("pyenv", str(Path(prefix.splitlines()[0]) / "bin" / name)))
    uv = _output(["uv", "python", "find", want.label])
    if uv:
        found.append(("uv", uv.splitlines()[0]))
    return found


def find(want: Wanted) -> tuple[str, str]:
    """(the interpreter's own sys.executable, where it was found); PythonMissing otherwise."""
    tried = []
    for where, path in candidates(want):
        answer = _ask(path)
        if answer is None:
            tried.append(f"{where}: {path} does not run")
            continue
        executable, minor, free_threaded = answer
        if want.path is None and (minor, free_threaded) != (want.minor, want.free_threaded):
            tried.append(f"{where}: {path} is 3.{minor}{'t' if free_threaded else ''}")
            continue
        return executable, where
    detail = "; ".join(tried) or "not on PATH, not in pyenv, not found by uv"
    raise PythonMissing(f"Python {want.label}: {detail}")


def venv_for(executable: str, root: Path) -> Path:
    """A virtualenv with kit and the bench's servers for ``executable``; its python's path.

    Built once under ``root/.kit/bench-venvs/`` and reused until pyproject.toml changes.
    """
    stamp_text = hashlib.sha256(
        executable.encode() + (root / "pyproject.toml").read_bytes()
    ).hexdigest()[:16]
    venv = root / ".kit" / "bench-venvs" / hashlib.sha256(executable.encode()).hexdigest()[:12]
    python = venv / "bin" / "python"
    stamp = venv / ".kit-bench-stamp"
    if stamp.is_file() and stamp.read_text() == stamp_text and python.exists():
        return python
    steps = [
        [executable, "-m", "venv", "--clear", str(venv)],
        [str(python), "-m", "pip", "install", "--quiet", "-e", f"{root}[{EXTRAS}]"],
    ]
    for argv in steps:
        print(f"kit bench: {' '.join(argv)}", file=sys.stderr, flush=True)
        proc = subprocess.run(argv, capture_output=True, text=True, check=False)
        if proc.returncode != 0:
            lines = (proc.stderr or proc.stdout).strip().splitlines()
            raise PythonMissing(f"{executable}: {lines[-1] if lines else 'venv setup failed'}")
    stamp.write_text(stamp_text)
    return python
