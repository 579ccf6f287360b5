"""Closing listening sockets and idle connections without resets: the runtimes' shutdown calls.

When the last descriptor of a listening socket closes, the kernel resets every connection still
in its accept queue; a connection closed with a request unread in its receive buffer (or one
that arrives just after) is reset too. So, at shutdown only:

- ``stop_listening``: the kernel stops completing handshakes on the socket (a drop-all socket
  filter: new SYNs go unanswered, the client retries and is refused once the socket is closed),
  then the server's own accept loop takes what is already queued before the socket is closed.
- ``answer_queued``: for a supervisor whose copy of the socket outlives its workers' copies
  (``held_by`` says when those are closed), the connections the workers left queued get a
  503 with ``Connection: close``.
- ``buffered``: whether an idle connection the server is about to close has a request waiting
  unread, so that it is answered (with ``Connection: close``) first.
"""

from __future__ import annotations

import asyncio
import contextlib
import ctypes
import os
import socket
import struct
import sys
import time
from collections.abc import Iterable

# How long a connection accepted but silent may take to send its first request once the
# server is stopping, and how often the drain looks again.
FIRST_REQUEST_WAIT = 2.0
POLL = 0.005
# The accept queue is drained by the servers' accept loops, usually within a loop turn.
ACCEPT_QUEUE_WAIT = 2.0

_SO_ATTACH_FILTER = 26  # Linux <asm-generic/socket.h>
_TCP_INFO_UNACKED = 24  # struct tcp_info: for a listening socket, the accept queue length
_LINUX = sys.platform.startswith("linux")


def _drop_everything(sock: socket.socket) -> bool:
    """Attach the classic BPF program ``ret #0``: the socket takes no packet any more."""
    instruction = ctypes.create_string_buffer(struct.pack("HBBI", 0x06, 0, 0, 0))
    program = struct.pack("HL", 1, ctypes.addressof(instruction))  # struct sock_fprog
    try:
        sock.setsockopt(socket.SOL_SOCKET, _SO_ATTACH_FILTER, program)
    except OSError:
        return False
    return True


def queued(sock: socket.socket) -> int:
    """Connections the kernel completed on listening ``sock`` that nobody accepted yet."""
    info = sock.getsockopt(socket.IPPROTO_TCP, socket.TCP_INFO, _TCP_INFO_UNACKED + 4)
    return int(struct.unpack_from("I", info, _TCP_INFO_UNACKED)[0])


def _duplicate(fileno: int) -> socket.socket:
    """A socket object of our own on the same open socket (closing it leaves the original)."""
    return socket.socket(fileno=socket.dup(fileno))


async def stop_listening(filenos: Iterable[int], timeout: float = ACCEPT_QUEUE_WAIT) -> None:
    """Stop new connections on these listening descriptors and wait (up to ``timeout``) until
    the server's accept loop has taken every queued one; the caller then closes them."""
    if not _LINUX:
        return
    socks = [_duplicate(fileno) for fileno in filenos]
    try:
        stopped = [s for s in socks if refuse_new(s)]
        deadline = time.monotonic() + timeout
        while any(queued(s) for s in stopped) and time.monotonic() < deadline:
            await asyncio.sleep(POLL)
    finally:
        for sock in socks:
            sock.close()


def refuse_new(sock: socket.socket) -> bool:
    """Stop the kernel completing new handshakes on listening ``sock`` (Linux only)."""
    tcp = sock.family in (socket.AF_INET, socket.AF_INET6) and sock.type == socket.SOCK_STREAM
    return _LINUX and tcp and _drop_everything(sock)


_BODY = b'{"detail":"Service is shutting down"}'
UNAVAILABLE = (
    b"HTTP/1.1 503 Service Unavailable\r\n"
    b"content-type: application/json\r\n"
    b"content-length: " + str(len(_BODY)).encode() + b"\r\n"
    b"retry-after: 1\r\n"
    b"connection: close\r\n\r\n" + _BODY
)
# Bounds on answering one queued connection: reading its request head, and the lingering read
# after the answer (so that the close is a FIN, not a reset over unread bytes).
ANSWER_TIMEOUT = 1.0


def answer_queued(socks: Iterable[socket.socket]) -> int:
    """Accept every connection still queued on these listening sockets, read its request head,
    answer 503 with ``Connection: close`` and close it cleanly; return how many."""
    return asyncio.run(_answer_queued(list(socks)))


async def _answer_queued(socks: list[socket.socket]) -> int:
    accepted = []
    for sock in socks:
        sock.setblocking(False)
        while True:
            try:
                accepted.append(sock.accept()[0])
            except (BlockingIOError, InterruptedError):
                break
            except OSError:
                break
    await asyncio.gather(*(_answer(conn) for conn in accepted))
    return len(accepted)


async def _answer(conn: socket.socket) -> None:
    try:
        reader, writer = await asyncio.open_connection(sock=conn)
    except OSError:
        conn.close()
        return
    try:
        with contextlib.suppress(asyncio.IncompleteReadError, asyncio.LimitOverrunError):
            await asyncio.wait_for(reader.readuntil(b"\r\n\r\n"), ANSWER_TIMEOUT)
        writer.write(UNAVAILABLE)
        await writer.drain()
        writer.write_eof()
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(_discard(reader), ANSWER_TIMEOUT)
    except (OSError, TimeoutError):
        pass
    finally:
        writer.close()
        with contextlib.suppress(OSError):
            await writer.wait_closed()


async def _discard(reader: asyncio.StreamReader) -> None:
    while await reader.read(65536):
        pass


def held_by(pids: Iterable[int | None], sock: socket.socket) -> bool:
    """Whether any of these processes still has a descriptor of ``sock`` open (Linux: from
    /proc; elsewhere the answer is no)."""
    if not _LINUX:
        return False
    link = f"socket:[{os.fstat(sock.fileno()).st_ino}]"
    for pid in pids:
        if pid is None:
            continue
        with contextlib.suppress(OSError):  # the process is gone
            for fd in os.listdir(f"/proc/{pid}/fd"):
                with contextlib.suppress(OSError):
                    if os.readlink(f"/proc/{pid}/fd/{fd}") == link:
                        return True
    return False


def buffered(fileno: int) -> bool:
    """Whether bytes wait unread in this connection's receive buffer."""
    with contextlib.suppress(OSError), _duplicate(fileno) as sock:
        return bool(sock.recv(1, socket.MSG_PEEK | socket.MSG_DONTWAIT))
    return False
