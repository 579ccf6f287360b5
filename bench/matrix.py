"""What a run can cover: the apps, the runtimes, the endpoints, and how cores are split."""

from __future__ import annotations

import os
import shutil
from dataclasses import dataclass

from runtimes.registry import NAMES

# The kit app is the real service; the peers implement the same endpoints byte for byte.
FRAMEWORKS: dict[str, str] = {
    "kit": "services.bench.app:app",
    "fastapi": "bench.apps.fastapi:app",
    "fastapi_tuned": "bench.apps.fastapi_tuned:app",
    "starlette": "bench.apps.starlette:app",
    "raw": "bench.apps.raw:app",
    "litestar": "bench.apps.litestar:app",
    "blacksheep": "bench.apps.blacksheep:app",
}
# granian first: the default runtime leads every table.
RUNTIMES = ("granian", *(name for name in NAMES if name != "granian"))


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


ORDER = (
    b'{"customer":{"name":"Ada Lovelace","email":"ada@example.com"},'
    b'"lines":[{"sku":"tea","quantity":2},{"sku":"cake","quantity":3}],"note":"by the door"}'
)
ENDPOINTS: dict[str, Endpoint] = {
    "json": Endpoint("GET", "/json"),
    "plaintext": Endpoint("GET", "/plaintext"),
    "db": Endpoint("GET", "/db"),
    "queries": Endpoint("GET", "/queries?queries=20"),
    "fortunes": Endpoint("GET", "/fortunes"),
    "updates": Endpoint("GET", "/updates?queries=20"),
    "aggregate": Endpoint("GET", "/aggregate"),  # 4 concurrent calls to bench.upstream
    "validate": Endpoint(
        "POST",
        "/validate",
        b'{"name":"Ada Lovelace","age":36,"email":"ada@example.com","tags":["math","poetry"]}',
    ),
    # The REST shapes (services/bench/rest.py)
    "item": Endpoint("GET", "/items/7"),
    "search": Endpoint("GET", "/search?limit=20&offset=40&tag=new&tag=sale"),
    "account": Endpoint("GET", "/accounts/6"),
    "item_404": Endpoint("GET", "/items/5000", status=404),
    "order": Endpoint("POST", "/orders", ORDER, status=201),
}
DB_ENDPOINTS = frozenset({"db", "queries", "fortunes", "updates"})
READY_PATH = "/json"  # every app serves it without the database

# About two minutes: the comparison that matters most, on the default runtime.
QUICK = {
    "frameworks": ["kit", "fastapi", "starlette", "raw"],
    "runtimes": ["granian"],
    "endpoints": ["json", "db", "validate"],
    "duration": 5,
    "warmup": 2,
}


def custom_endpoints(paths: list[str], method: str, body: bytes | None) -> dict[str, Endpoint]:
    """``--path`` values as endpoints named by their path; ``/p#404`` expects a 404 (a fragment
    is never sent, so the suffix cannot clash with a real path)."""
    endpoints = {}
    for raw in paths:
        path, _, status = raw.partition("#")
        if not path.startswith("/"):
            raise ValueError(f"--path {raw}: must start with /")
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


def pinning_text(server: list[int], load: list[int]) -> str:
    if not server:
        return "none (one CPU or no taskset): server and wrk share the CPUs"
    return f"server on CPU {_cpus(server)}, wrk on CPU {_cpus(load)} (taskset)"


def _cpus(cpus: list[int]) -> str:
    return ",".join(map(str, cpus))
