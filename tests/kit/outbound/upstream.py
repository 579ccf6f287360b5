"""A dependency whose faults tests choose: ``kit serve tests.kit.outbound.upstream:app``.

``/products/{id}`` answers like the catalog, as ``STUB_PRODUCTS`` says: ``ok``, ``unavailable``
(503) or ``slow`` (after ``STUB_DELAY`` seconds). ``POST /notifications`` takes
``STUB_NOTIFY_DELAY`` seconds. The other paths pick their fault in the URL. The server's own
/metrics counts every call it received, by route.
"""

from __future__ import annotations

import asyncio
import os

import msgspec

from kit import App, JSONResponse, Request, Response

PRODUCTS = os.environ.get("STUB_PRODUCTS", "ok")
DELAY = float(os.environ.get("STUB_DELAY", "5"))
NOTIFY_DELAY = float(os.environ.get("STUB_NOTIFY_DELAY", "0"))

app = App(title="stub upstream")


class Product(msgspec.Struct):
    id: int
    name: str
    price_cents: int
    status: str


@app.get("/products/{product_id}")
async def product(product_id: int, request: Request) -> Product:
    if PRODUCTS == "unavailable":
        raise_unavailable()
    if PRODUCTS == "slow":
        await asyncio.sleep(DELAY)
    # what a caller forwarded shows in the name: tests check what must not reach a dependency
    name = f"product {product_id}"
    if "authorization" in request.headers:
        name += " (got credentials)"
    return Product(product_id, name, 100 * product_id, "active")


@app.post("/notifications", status_code=202)
async def notifications(request: Request) -> None:
    await request.body()
    await asyncio.sleep(NOTIFY_DELAY)


@app.get("/item/{n}")
async def item(n: int) -> Product:
    return Product(n, f"item {n}", n, "active")


@app.api_route("/status/{code}", methods=["GET", "POST"])
async def status(code: int, retry_after: str | None = None) -> Response:
    headers = {"Retry-After": retry_after} if retry_after is not None else None
    return JSONResponse({"status": code}, status_code=code, headers=headers)


@app.get("/sleep/{seconds}")
async def sleep(seconds: float) -> Response:
    await asyncio.sleep(seconds)
    return JSONResponse({"slept": seconds})


@app.api_route("/echo", methods=["GET", "POST"])
async def echo(request: Request) -> Response:
    return JSONResponse({"headers": dict(request.headers), "body": (await request.body()).decode()})


def raise_unavailable() -> None:
    from kit import HTTPException

    raise HTTPException(503, "unavailable", headers={"Retry-After": "0"})
