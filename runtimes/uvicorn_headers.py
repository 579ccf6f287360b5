"""uvicorn's httptools protocol with a bound on the request line and headers, and a shutdown
that answers the requests on their way instead of closing their connections under them.

uvicorn's h11 protocol has ``h11_max_incomplete_event_size``; its httptools protocol has no
limit at all, and httptools keeps a header being received in memory whatever its size.
"""

from __future__ import annotations

import os
from typing import Any

from uvicorn.protocols.http.httptools_impl import HttpToolsProtocol

from runtimes.listeners import FIRST_REQUEST_WAIT, POLL, buffered
from runtimes.uvicorn import HEADER_LIMIT_VARIABLE

_BODY = b'{"detail":"Request Header Fields Too Large"}'
TOO_LARGE = (
    b"HTTP/1.1 431 Request Header Fields Too Large\r\n"
    b"content-type: application/json\r\n"
    b"content-length: " + str(len(_BODY)).encode() + b"\r\n"
    b"connection: close\r\n\r\n" + _BODY
)


class _Refused:
    """Stands for the request cycle of a refused header block: uvicorn's body and completion
    callbacks see a finished response and ignore what follows."""

    response_complete = True
    keep_alive = False


REFUSED = _Refused()
# uvicorn's callbacks, called directly by the subclass below (no super() object per call)
_message_begin = HttpToolsProtocol.on_message_begin
_headers_complete = HttpToolsProtocol.on_headers_complete
_data_received = HttpToolsProtocol.data_received
# Bytes of a header block beyond its names and values: "GET " and " HTTP/1.1\r\n" around the
# target, the final CRLF; ": " and CRLF per header.
BLOCK_OVERHEAD, HEADER_OVERHEAD = 16, 4


class BoundedHttpToolsProtocol(HttpToolsProtocol):
    """Answers 431 and closes once a header block passes ``max_header_size``.

    A complete block is measured when it is parsed (its target, names and values): exact,
    however the bytes arrived. An unfinished one (which httptools buffers whatever its size) is
    counted per read while the parser is in it, so it is refused within one read of the bound.

    Per request this adds to uvicorn's path only what the bound needs: the parent's callbacks
    are called directly (``super()`` builds an object per call before 3.12), and a block that
    came within reads no bigger than the bound together is not measured name by name.
    """

    max_header_size = int(os.environ.get(HEADER_LIMIT_VARIABLE, 64 * 1024))

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self._in_headers = True
        self._header_bytes = 0  # bytes of the reads that ended inside the current block
        self._read_size = 0  # bytes of the read being parsed
        self._stopping_since: float | None = None

    def on_message_begin(self) -> None:
        _message_begin(self)
        self._in_headers = True

    def on_headers_complete(self) -> None:
        self._in_headers = False
        received = self._header_bytes + self._read_size
        self._header_bytes = 0
        cycle: object = self.cycle
        if cycle is REFUSED:
            return  # a request pipelined behind a refused one
        # The block lies within the reads counted since it began and the current one, and its
        # measure exceeds its bytes by at most one per header ("a:b" counts 4 over the name and
        # value): within the bound together, the block is too (the usual case, a small read).
        if received + len(self.headers) > self.max_header_size:
            size = len(self.url) + BLOCK_OVERHEAD
            for name, value in self.headers:
                size += len(name) + len(value) + HEADER_OVERHEAD
            if size > self.max_header_size:
                self.cycle = REFUSED  # type: ignore[assignment]
                self._refuse()
                return
        _headers_complete(self)

    def data_received(self, data: bytes) -> None:
        transport = self.transport
        if transport.is_closing():
            return
        self._read_size = len(data)
        _data_received(self, data)
        if not self._in_headers or transport.is_closing():
            return
        self._header_bytes += len(data)
        if self._header_bytes > self.max_header_size:
            self._refuse()

    def _refuse(self) -> None:
        self.transport.write(TOO_LARGE)
        self.transport.close()

    def shutdown(self) -> None:
        """uvicorn closes an idle connection at once, resetting it if a request is already in
        its receive buffer. Here it is closed only once nothing is on the way: no unread bytes,
        no header block begun and, on a connection that has carried no request yet, not within
        ``FIRST_REQUEST_WAIT``; until then it is looked at again every ``POLL`` seconds, and a
        request that arrives meanwhile is answered and its connection closed after it."""
        if self.cycle is not None and not self.cycle.response_complete:
            self.cycle.keep_alive = False  # uvicorn's own: closed after this response
            return
        if self.transport.is_closing():
            return
        now = self.loop.time()
        if self._stopping_since is None:
            self._stopping_since = now
        sock = self.transport.get_extra_info("socket")
        if (
            self._header_bytes
            or (self.cycle is None and now - self._stopping_since < FIRST_REQUEST_WAIT)
            or (sock is not None and buffered(sock.fileno()))
        ):
            self.loop.call_later(POLL, self.shutdown)
            return
        self.transport.close()
