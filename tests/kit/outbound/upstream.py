"""A dependency whose faults tests choose: ``kit serve tests.kit.outbound.upstream:app``.

``/products/{id}`` answers like the catalog, as ``STUB_PRODUCTS`` says: ``ok``, ``unavailable``
(503), ``slow`` (after ``STUB_DELAY`` seconds), ``huge`` (1 GiB) or ``bomb`` (1 GiB gzipped).
``POST /notifications`` takes ``STUB_NOTIFY_DELAY`` seconds. The other paths pick their fault
in the URL: among them answers of any size (``/huge/{mib}``, with or without a Content-Length)
and gzip bombs (``/bomb/{mib}``: about 1 KB per MiB it inflates to). The server's own /metrics
counts every call it received, by route.
"""

from __future__ import annotations

import asyncio
import functools
import gzip
import os
import struct
import zlib
from collections.abc import AsyncIterator

import msgspec
from starlette.responses import StreamingResponse

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
async def product(product_id: int, request: Request) -> Product | Response:
    if PRODUCTS == "huge":
        return await huge(1024)
    if PRODUCTS == "bomb":
        return await bomb(1024)
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


MIB = 1 << 20
ZEROS = bytes(MIB)


async def _mebibytes(count: int) -> AsyncIterator[bytes]:
    for _ in range(count):
        yield ZEROS
        await asyncio.sleep(0)  # a client that stops reading ends the stream


@app.get("/huge/{mib}")
async def huge(mib: int, declared: bool = False) -> Response:
    """``mib`` MiB of zeros, chunked, or with a Content-Length when ``declared``."""
    headers = {"content-length": str(mib * MIB)} if declared else None
    return StreamingResponse(
        _mebibytes(mib), media_type="application/octet-stream", headers=headers
    )


@functools.cache
def _bomb(mib: int) -> tuple[bytes, bytes, bytes]:
    """A gzip stream of ``mib`` MiB of zeros as head, one repeated block, tail: each MiB
    compressed alone (a full flush) is the same 1 KB, so the bomb costs nothing to build."""
    squeeze = zlib.compressobj(9, zlib.DEFLATED, -zlib.MAX_WBITS)
    block = squeeze.compress(ZEROS) + squeeze.flush(zlib.Z_FULL_FLUSH)
    end = squeeze.flush()
    crc = 0
    for _ in range(mib):
        crc = zlib.crc32(ZEROS, crc)
    head = b"\x1f\x8b\x08\x00\x00\x00\x00\x00\x00\xff"
    return head, block, end + struct.pack("<II", crc, (mib * MIB) & 0xFFFFFFFF)


@app.get("/bomb/{mib}")
async def bomb(mib: int) -> Response:
    head, block, tail = _bomb(mib)

    async def body() -> AsyncIterator[bytes]:
        yield head
        for start in range(0, mib, 64):
            yield block * min(64, mib - start)
            await asyncio.sleep(0)
        yield tail

    headers = {"content-encoding": "gzip"}
    return StreamingResponse(body(), media_type="application/json", headers=headers)


@app.get("/gzip/{n}")
async def gzipped(n: int, raw_deflate: bool = False) -> Response:
    """Product ``n``, compressed: gzip, or the raw deflate some servers send as "deflate"."""
    body = msgspec.json.encode(Product(n, f"item {n}", n, "active"))
    if raw_deflate:
        squeeze = zlib.compressobj(6, zlib.DEFLATED, -zlib.MAX_WBITS)
        data, encoding = squeeze.compress(body) + squeeze.flush(), "deflate"
    else:
        data, encoding = gzip.compress(body), "gzip"
    return Response(data, media_type="application/json", headers={"content-encoding": encoding})


@app.get("/blob/{kib}")
async def blob(kib: int, n: int = 0) -> Response:
    return Response(bytes([n % 256]) * (kib * 1024), media_type="application/octet-stream")


@app.get("/redirect")
async def redirect(to: str = "/item/1") -> Response:
    return Response(status_code=302, headers={"location": to})


@app.get("/encoded/{encoding}")
async def encoded(encoding: str) -> Response:
    """Bytes that are not what ``Content-Encoding`` says: corrupt gzip, or an unasked-for one."""
    body = b"\x1f\x8b\x08\x00 definitely not gzip" if encoding == "gzip" else b"\x00" * 64
    return Response(body, media_type="application/json", headers={"content-encoding": encoding})
