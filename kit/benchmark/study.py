"""What a run measures: endpoints, the apps serving them, and how the cores are split.

A user's app (``--app`` with ``--path``) is a study of one app; the comparison of kit with its
peers is the study in a kit checkout's ``bench/matrix.py`` (``STUDY``), found next to kit's own
package and imported only when asked for, so kit never depends on bench/.
"""

from __future__ import annotations

import importlib
import os
import shutil
import sys
from dataclasses import dataclass, field
from pathlib import Path

# A checkout has kit/ beside bench/ and services/; an installed wheel has neither.
CHECKOUT = Path(__file__).resolve().parents[2]
STUDY_MODULE = "bench.matrix"
READY_PATH_DEFAULT = "/healthz"


class UsageError(ValueError):
    """Arguments that cannot make a run; the message is one line for the user."""


@dataclass(frozen=True)
class Endpoint:
    method: str
    path: str
    body: bytes | None = None  # sent as application/json
    status: int = 200  # what the probe must see; a 4xx endpoint's answers are not errors

    def __str__(self) -> str:
        text = f"{self.method} {self.path}"
        return text if self.status == 200 else f"{text} -> {self.status}"

    @property
    def errors_are_answers(self) -> bool:
        """A path benchmarked for its 4xx answer (a 404 page): wrk's non-2xx count is the load."""
        return self.status >= 400


@dataclass(frozen=True)
class Upstream:
    """A server the apps call during some endpoints, started once per run (unpinned)."""

    app: str  # module:attr
    ready_path: str
    url_variable: str  # the apps find it at this environment variable
    endpoints: frozenset[str]  # started only when one of these is in the run


@dataclass(frozen=True)
class Study:
    frameworks: dict[str, str]  # name -> module:attr, the first one leads every table
    endpoints: dict[str, Endpoint]  # name -> request
    ready_path: str  # every app answers 200 here without the database
    root: Path  # servers start here (they import the apps from it)
    migrate_app: str | None = None  # `kit migrate` runs on it before a database endpoint
    db_endpoints: frozenset[str] = frozenset()
    quick: dict[str, object] = field(default_factory=dict)  # what --quick selects
    upstream: Upstream | None = None

    def needs_database(self, endpoints: list[str]) -> bool:
        return self.migrate_app is not None and bool(self.db_endpoints.intersection(endpoints))


class NoStudy(LookupError):
    """No comparison study here (kit runs from a wheel): only ``--app`` can be measured."""


def comparison(root: Path = CHECKOUT) -> Study:
    """The checkout's comparison of kit with its peers (``bench/matrix.py``'s STUDY)."""
    if not (root / "bench" / "matrix.py").is_file():
        raise NoStudy(
            f"needs a kit checkout (bench/matrix.py not found under {root}); "
            "outside one, benchmark your own app with --app MODULE:ATTR --path /PATH"
        )
    if str(root) not in sys.path:
        sys.path.insert(0, str(root))
    study = importlib.import_module(STUDY_MODULE).STUDY
    if not isinstance(study, Study):
        raise NoStudy(f"{STUDY_MODULE}.STUDY is not a kit.benchmark.study.Study")
    return study


def own_app(
    spec: str, paths: list[str], method: str, body: bytes | None, ready_path: str | None
) -> tuple[str, Study]:
    """``--app`` with its ``--path`` values: the app's report name and its study. The servers
    start in the current directory, where the user's module is."""
    endpoints = custom_endpoints(paths, method, body)
    name = app_name(spec)
    study = Study(
        frameworks={name: spec},
        endpoints=endpoints,
        ready_path=ready_path or "",  # empty: the first path, probed as it is loaded
        root=Path.cwd(),
        migrate_app=spec,
        db_endpoints=frozenset(endpoints),
    )
    return name, study


def app_name(spec: str) -> str:
    """The name a user's app goes by in the report: ``services.catalog.app:app`` -> catalog."""
    parts = spec.partition(":")[0].split(".")
    while len(parts) > 1 and parts[-1] in ("app", "main", "asgi", "application"):
        parts.pop()
    return parts[-1]


def custom_endpoints(paths: list[str], method: str, body: bytes | None) -> dict[str, Endpoint]:
    """``--path`` values as endpoints named by their path; ``/p#404`` expects a 404 (a fragment
    is never sent, so the suffix cannot clash with a real path). Every path is sent with
    ``method`` and ``body``, the probes included."""
    endpoints = {}
    for raw in paths:
        path, _, status = raw.partition("#")
        if not path.startswith("/"):
            raise ValueError(f"--path {raw}: must start with /")
        if any(c in path for c in " \r\n\t\x00"):
            raise ValueError(f"--path {raw!r}: no whitespace or control characters")
        if status and not (status.isdigit() and 200 <= int(status) <= 599):
            raise ValueError(f"--path {raw}: the status after # must be 200-599")
        endpoints[raw] = Endpoint(method, path, body, int(status) if status else 200)
    return endpoints


def split_cpus() -> tuple[list[int], list[int]]:
    """Give the server the first half of the usable CPUs and the load tool the rest.

    Returns empty lists (no pinning) with a single CPU or without ``taskset``.
    """
    cpus = sorted(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else []
    if len(cpus) < 2 or shutil.which("taskset") is None:
        return [], []
    half = len(cpus) // 2
    return cpus[:half], cpus[half:]


def pin_prefix(cpus: list[int]) -> list[str]:
    """The command prefix that runs a process on ``cpus`` (nothing when ``cpus`` is empty)."""
    return ["taskset", "-c", _cpus(cpus)] if cpus else []


def pinning_text(server: list[int], load: list[int]) -> str:
    if not server:
        return "none (one CPU or no taskset): server and wrk share the CPUs"
    return f"server on CPU {_cpus(server)}, wrk on CPU {_cpus(load)} (taskset)"


def _cpus(cpus: list[int]) -> str:
    return ",".join(map(str, cpus))
