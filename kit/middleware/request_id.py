"""Request IDs: taken from a valid ``X-Request-ID`` or generated, echoed in the response."""

from __future__ import annotations

import itertools
import os
import re

from kit.ops.logs import REQUEST_ID

HEADER = b"x-request-id"
MAX_LENGTH = 128

# A client-sent id ends up in logs and headers: bounded, and no characters that could forge
# log lines or header fields.
_valid = re.compile(rb"[A-Za-z0-9._:@/+=-]{1,%d}" % MAX_LENGTH).fullmatch


def request_id() -> str | None:
    """The id of the request being handled (None outside a request)."""
    return REQUEST_ID.get()


class _IdSource:
    """32 hex digits: a random per-process prefix and a counter, so no syscall per request.

    Unique within a process by the counter and across processes by the prefix, which is drawn
    again in a forked child. The counter starts at a random 32-bit value, so 16 hex digits hold
    it for far longer than a process lives, and it stays a small int, cheap to format.
    """

    def __init__(self) -> None:
        self.reseed()

    def reseed(self) -> None:
        self.prefix = os.urandom(8).hex()
        self._next = itertools.count(int.from_bytes(os.urandom(4), "big")).__next__

    def __call__(self) -> str:
        return "%s%016x" % (self.prefix, self._next())  # noqa: UP031  (faster than an f-string)


new_request_id = _IdSource()
os.register_at_fork(after_in_child=new_request_id.reseed)


def incoming_request_id(headers: list[tuple[bytes, bytes]]) -> bytes | None:
    """The client's X-Request-ID if it is well-formed, else None."""
    for name, value in headers:
        if name == HEADER:
            return value if _valid(value) else None
    return None
