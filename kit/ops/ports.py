"""The address ``kit serve`` binds: checked before any server starts, watched until it listens.

Servers differ in how they bind (granian, and hypercorn with several workers, set
SO_REUSEPORT and would quietly share a port another server holds; uvicorn and hypercorn fail
with their own tracebacks), so kit tries the bind itself first, the way a server would without
SO_REUSEPORT, and refuses in one line. Sharing a port stays possible when asked for
(``KIT_REUSE_PORT=1``).
"""

from __future__ import annotations

import errno
import os
import socket
import threading
import time
from collections.abc import Callable

__all__ = ["PortUnavailable", "check_bindable", "when_listening", "write_line"]


class PortUnavailable(Exception):
    """The address cannot be bound; the message is one line for the user."""


def _addresses(host: str, port: int) -> list[tuple[int, tuple[object, ...]]]:
    try:
        infos = socket.getaddrinfo(
            host or None, port, type=socket.SOCK_STREAM, flags=socket.AI_PASSIVE
        )
    except socket.gaierror as exc:
        raise PortUnavailable(f"cannot use the host {host!r}: {exc.strerror}") from None
    seen: list[tuple[int, tuple[object, ...]]] = []
    for family, _, _, _, address in infos:
        if (family, address) not in seen:
            seen.append((family, address))
    return seen


def check_bindable(host: str, port: int) -> None:
    """Raise ``PortUnavailable`` unless ``host:port`` can be bound without SO_REUSEPORT.

    Port 0 (any free port) always can. A port left in TIME_WAIT by a server that just stopped
    can (SO_REUSEADDR, as every server sets it).
    """
    if port == 0:
        return
    for family, address in _addresses(host, port):
        with socket.socket(family, socket.SOCK_STREAM) as sock:
            sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
            if family == socket.AF_INET6:
                sock.setsockopt(socket.IPPROTO_IPV6, socket.IPV6_V6ONLY, 1)
            try:
                sock.bind(address)
            except OSError as exc:
                if exc.errno == errno.EADDRINUSE:
                    raise PortUnavailable(
                        f"port {port} on {host} is in use by another process (`ss -ltnp "
                        f"'sport = :{port}'` shows which); stop it or pick another with "
                        "--port/KIT_PORT"
                    ) from None
                reason = exc.strerror or str(exc)
                raise PortUnavailable(f"cannot bind {host}:{port}: {reason}") from None


def _probe_host(host: str) -> str:
    # a wildcard address is reached through loopback
    return {"": "127.0.0.1", "0.0.0.0": "127.0.0.1", "::": "::1"}.get(host, host)


def when_listening(host: str, port: int, callback: Callable[[], None]) -> threading.Thread:
    """Call ``callback`` (in a daemon thread) once something accepts connections on
    ``host:port``; never, if nothing ever does. The probe connects and closes at once: no
    request reaches the app."""
    target = _probe_host(host)

    def watch() -> None:
        while True:
            try:
                with socket.create_connection((target, port), timeout=0.5):
                    pass
            except OSError:
                time.sleep(0.02)
                continue
            callback()
            return

    thread = threading.Thread(target=watch, name="kit-when-listening", daemon=True)
    thread.start()
    return thread


def write_line(line: str) -> None:
    """``line`` to stderr with one system call: safe from a thread while a server forks."""
    os.write(2, (line + "\n").encode())
