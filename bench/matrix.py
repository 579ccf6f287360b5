"""The comparison ``kit bench`` runs in a checkout: kit's bench service against its peers, on
every runtime, over the TechEmpower endpoints (kit.benchmark.study finds ``STUDY`` here)."""

from __future__ import annotations

from pathlib import Path

from kit.benchmark.study import Endpoint, Study, Upstream
from runtimes.registry import BY_PREFERENCE
from services.bench.schemas import UPSTREAM_URL_ENV

# The kit app is the real service; the peers implement the same endpoints byte for byte.
FRAMEWORKS: dict[str, str] = {
    "kit": "services.bench.app:app",
    "fastapi": "bench.apps.fastapi:app",
    "fastapi_tuned": "bench.apps.fastapi_tuned:app",
    "starlette": "bench.apps.starlette:app",
    "raw": "bench.apps.raw:app",
}
# The default runtime leads every table.
RUNTIMES = BY_PREFERENCE

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
}
DB_ENDPOINTS = frozenset({"db", "queries", "fortunes", "updates"})
READY_PATH = "/json"  # every app serves it without the database

# About two minutes: the comparison that matters most, on the default runtime.
QUICK = {
    "frameworks": ["kit", "fastapi", "starlette", "raw"],
    "runtimes": [RUNTIMES[0]],
    "endpoints": ["json", "db", "validate"],
    "duration": 5,
    "warmup": 2,
}

STUDY = Study(
    frameworks=FRAMEWORKS,
    endpoints=ENDPOINTS,
    ready_path=READY_PATH,
    root=Path(__file__).resolve().parents[1],
    migrate_app=FRAMEWORKS["kit"],  # the peers share the kit service's tables
    db_endpoints=DB_ENDPOINTS,
    quick=QUICK,
    upstream=Upstream("bench.upstream:app", "/item/1", UPSTREAM_URL_ENV, frozenset({"aggregate"})),
)
