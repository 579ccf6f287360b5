"""Request IDs: taken from a valid ``X-Request-ID`` or generated, echoed in the response."""

from __future__ import annotations

import itertools
import os
import re
import threading
from collections.abc import Iterator

from kit.ops.logs import REQUEST_ID

HEADER = b"x-request-id"
MAX_LENGTH = 128

# A client-sent id ends up in logs and headers: bounded, and no characters that could forge
# log lines or header fields.
_valid = re.compile(rb"[A-Za-z0-9._:@/+=-]{1,%d}" % MAX_LENGTH).fullmatch


def request_id() -> str | None:
    """The id of the request being handled (None outside a request)."""
    return REQUEST_ID.get()


_HEX2 = tuple(f"{i:02x}" for i in range(0x100))


def _ids(prefix: str, start: int) -> Iterator[str]:
    """``prefix`` then ``start``, ``start + 1``... as 16 hex digits; the first 14 of them are
    formatted once per 256 ids."""
    high, low = divmod(start, 0x100)
    while True:
        head = "%s%014x" % (prefix, high)  # noqa: UP031  (faster than an f-string)
        for tail in itertools.islice(_HEX2, low, None):
            yield head + tail
        high += 1
        low = 0


class _IdSource(threading.local):
    """32 hex digits: a random prefix and a counter, so no syscall per request.

    Unique within a thread by the counter and across threads and processes by the prefix,
    drawn for each thread (free-threaded builds serve from several) and again in a forked
    child. The counter starts at a random 32-bit value, so 16 hex digits hold it for far
    longer than a process lives. ``next()`` resumes a generator: cheaper than formatting the
    whole id per request.
    """

    def __init__(self) -> None:
        self.reseed()

    def reseed(self) -> None:
        self.next = _ids(os.urandom(8).hex(), int.from_bytes(os.urandom(4), "big")).__next__

    def __call__(self) -> str:
        return self.next()


new_request_id = _IdSource()
os.register_at_fork(after_in_child=new_request_id.reseed)


def incoming_request_id(headers: list[tuple[bytes, bytes]]) -> bytes | None:
    """The client's X-Request-ID if it is well-formed, else None."""
    for name, value in headers:
        if name == HEADER:
            return value if _valid(value) else None
    return None
