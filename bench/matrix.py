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
    "litestar": "bench.apps.litestar:app",
    "blacksheep": "bench.apps.blacksheep:app",
}
# The default runtime leads every table.
RUNTIMES = BY_PREFERENCE

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
