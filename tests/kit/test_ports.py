"""kit.ops.ports: the bind check kit serve makes before a server starts, and the listening watch."""

from __future__ import annotations

import socket
import threading

import pytest

from kit.ops.ports import PortUnavailable, check_bindable, when_listening
from kit.testing import free_port


def test_a_free_port_and_port_zero_pass() -> None:
    check_bindable("127.0.0.1", free_port())
    check_bindable("127.0.0.1", 0)


@pytest.mark.parametrize("reuse_port", [False, True])
def test_a_listening_port_is_refused_even_if_its_owner_allows_sharing(reuse_port: bool) -> None:
    with socket.socket() as sock:
        if reuse_port:
            sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEPORT, 1)
        sock.bind(("127.0.0.1", 0))
        sock.listen()
        port = sock.getsockname()[1]
        with pytest.raises(PortUnavailable, match=f"^port {port} on 127.0.0.1 is in use"):
            check_bindable("127.0.0.1", port)
        with pytest.raises(PortUnavailable, match=f"^port {port} on 0.0.0.0 is in use"):
            check_bindable("0.0.0.0", port)


def test_an_unknown_host_is_one_line() -> None:
    with pytest.raises(PortUnavailable, match=r"^cannot use the host 'no-such-host\.invalid'"):
        check_bindable("no-such-host.invalid", 8000)


def test_when_listening_calls_back_once_the_port_accepts() -> None:
    called = threading.Event()
    port = free_port()
    thread = when_listening("127.0.0.1", port, called.set)
    assert not called.wait(0.3)  # nothing listens yet
    with socket.socket() as sock:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        sock.bind(("127.0.0.1", port))
        sock.listen()
        assert called.wait(10)
        thread.join(10)
        assert not thread.is_alive()
