"""An answer's body read within a byte limit: Content-Length checked before reading, the bytes
counted as they arrive, gzip and deflate inflated only up to the limit."""

from __future__ import annotations

import asyncio
import zlib
from collections.abc import AsyncIterator, Iterator

import aiohttp

DEFAULT_MAX_BODY = 10 * 1024 * 1024
CHUNK = 64 * 1024
# What kit.http asks for: what it can inflate with a bound (zlib's max_length).
ACCEPT_ENCODING = "gzip, deflate"
# A gzip stream may be many members one after another; past this many it is not an answer.
MAX_MEMBERS = 64


class TooLarge(Exception):
    """The answer is (or inflates to) more than ``limit`` bytes."""

    def __init__(self, limit: int, what: str) -> None:
        super().__init__(f"answered {what} over the limit of {limit} bytes")
        self.limit = limit


class Unreadable(Exception):
    """The answer's encoding is unknown or its compressed data is corrupt."""


class _Inflater:
    """gzip or deflate, inflated ``CHUNK`` bytes at a time: never more than asked for."""

    __slots__ = ("members", "wbits", "zobj")

    def __init__(self, encoding: str) -> None:
        # gzip: a gzip header; deflate: zlib (RFC 9110) or, as some servers send, raw deflate
        self.wbits = 16 + zlib.MAX_WBITS if encoding in ("gzip", "x-gzip") else zlib.MAX_WBITS
        self.zobj = zlib.decompressobj(self.wbits)
        self.members = 1

    def feed(self, data: bytes, room: int) -> Iterator[bytes]:
        """The inflated pieces of ``data``; stops once more than ``room`` bytes came out."""
        produced = 0
        while data and produced <= room:
            try:
                out = self.zobj.decompress(data, CHUNK)
            except zlib.error:
                if self.wbits == zlib.MAX_WBITS and self.members == 1 and not produced:
                    self.wbits = -zlib.MAX_WBITS  # raw deflate, no zlib header
                    self.zobj = zlib.decompressobj(self.wbits)
                    continue
                raise Unreadable("answered corrupt compressed data") from None
            produced += len(out)
            if out:
                yield out
            if self.zobj.eof:
                data = self.zobj.unused_data
                if data:
                    self.members += 1
                    if self.members > MAX_MEMBERS:
                        raise Unreadable("answered too many compressed members")
                    self.zobj = zlib.decompressobj(self.wbits)
            else:
                data = self.zobj.unconsumed_tail


def inflater_for(content_encoding: str) -> _Inflater | None:
    encoding = content_encoding.strip().lower()
    if encoding in ("", "identity"):
        return None
    if encoding in ("gzip", "x-gzip", "deflate"):
        return _Inflater(encoding)
    raise Unreadable(f"answered an encoding it was not asked for ({encoding[:40]!r})")


async def chunks(raw: aiohttp.ClientResponse, limit: int) -> AsyncIterator[bytes]:
    """``raw``'s body, decoded, in pieces of at most ``CHUNK`` bytes; ``TooLarge`` as soon as
    the bytes received or the bytes inflated pass ``limit``."""
    received = produced = 0
    if raw.method == "HEAD" or raw.status in (204, 304):
        return  # no body, whatever Content-Length says
    try:
        inflater = inflater_for(raw.headers.get("Content-Encoding", ""))
        try:
            length = raw.content_length
        except ValueError:
            raise Unreadable("answered an invalid Content-Length") from None
        if length is not None and length > limit:
            raise TooLarge(limit, f"a Content-Length of {length}")
        while True:
            data = await raw.content.read(CHUNK)
            if not data:
                return
            received += len(data)
            if received > limit:
                raise TooLarge(limit, "a body")
            if inflater is None:
                yield data
                continue
            for count, piece in enumerate(inflater.feed(data, limit - produced), 1):
                produced += len(piece)
                if produced > limit:
                    raise TooLarge(limit, "a body that inflates")
                yield piece
                if count % 16 == 0:  # 1 MiB inflated from one read: let the loop run
                    await asyncio.sleep(0)
    except (TooLarge, Unreadable):
        raw.close()  # never back to the pool with unread bytes
        raise


async def read(raw: aiohttp.ClientResponse, limit: int) -> bytes:
    """``raw``'s whole body, decoded, within ``limit`` bytes."""
    pieces = [piece async for piece in chunks(raw, limit)]
    return pieces[0] if len(pieces) == 1 else b"".join(pieces)
