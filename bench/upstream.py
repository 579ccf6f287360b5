"""The upstream of the outbound benchmarks: ``kit serve bench.upstream:app``.

``GET /item/{n}`` answers a small JSON object, as a dependency's lookup would; the
``aggregate`` endpoints of the bench apps fan out to it, and bench/http_clients.py loads it.
"""

from __future__ import annotations

from kit import App
from services.bench.schemas import Item

app = App(title="upstream", version="1.0")


@app.get("/item/{n}")
async def item(n: int) -> Item:
    return Item(n, f"item {n}", 100 + n)
