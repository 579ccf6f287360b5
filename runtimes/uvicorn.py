"""uvicorn: uvloop + httptools where available; HTTP/2 only through its zttp protocol."""

from __future__ import annotations

import math
import os
import signal
import socket
import time
from importlib.util import find_spec
from types import FrameType

import uvicorn
from uvicorn.supervisors import Multiprocess

from runtimes.base import Launch, Runtime, RuntimeUnavailable, quiet_level
from runtimes.listeners import POLL, answer_queued, held_by, refuse_new, stop_listening


def _installed(module: str) -> bool:
    return find_spec(module) is not None


# uvicorn imports the protocol by name in each worker process: the limit reaches the bounded
# httptools protocol (runtimes/uvicorn_headers.py) through the environment workers inherit.
HEADER_LIMIT_VARIABLE = "RUNTIMES_UVICORN_MAX_HEADER_SIZE"


def http_protocol(http: str) -> str:
    """uvicorn's HTTP implementation for ``KIT_HTTP``."""
    if http == "2":
        return "zttp"
    if _installed("httptools"):
        return "runtimes.uvicorn_headers:BoundedHttpToolsProtocol"
    return "h11"


def header_bound(launch: Launch) -> int:
    """``launch.max_header_size``, passed on to the bounded httptools protocol; uvicorn's h11
    protocol takes it as ``h11_max_incomplete_event_size`` (431 past it)."""
    os.environ[HEADER_LIMIT_VARIABLE] = str(launch.max_header_size)
    return launch.max_header_size


class UvicornRuntime(Runtime):
    name = "uvicorn"
    package = "uvicorn"

    def check(self, launch: Launch) -> None:
        if launch.http == "2" and not _installed("zttp"):
            raise RuntimeUnavailable(
                "uvicorn serves HTTP/2 only with the zttp package (pip install zttp); "
                "use KIT_HTTP=auto or 1, or KIT_RUNTIME=granian or hypercorn"
            )

    def config(self, launch: Launch) -> uvicorn.Config:
        return uvicorn.Config(
            launch.app,
            host=launch.host,
            port=launch.port,
            workers=launch.workers,
            loop=launch.loop,
            http=http_protocol(launch.http),
            http2=launch.http == "2",
            lifespan="on",
            access_log=False,
            log_level=quiet_level(launch.log_level),
            server_header=False,
            # kit resolves forwarded headers itself (kit.middleware.forwarded).
            proxy_headers=False,
            h11_max_incomplete_event_size=header_bound(launch),
            # uvicorn takes whole seconds; rounding up never cuts a drain short.
            timeout_graceful_shutdown=math.ceil(launch.graceful_timeout),
        )

    def serve(self, launch: Launch) -> int:
        config = self.config(launch)
        if config.workers > 1:
            Supervisor(config, [config.bind_socket()], launch.drain_delay).run()
            return 0
        server = Server(config)
        # uvicorn replays the signal it handled to the previous handler once it has drained;
        # the drain is done, so a no-op handler makes it exit 0 like the other runtimes.
        previous = {s: signal.signal(s, _drained) for s in (signal.SIGINT, signal.SIGTERM)}
        try:
            server.run()
        finally:
            for signum, handler in previous.items():
                signal.signal(signum, handler)
        return 0 if server.started else 3


def _drained(signum: int, frame: FrameType | None) -> None:
    pass


class Server(uvicorn.Server):
    """uvicorn's server, letting its accept loop take every connection the kernel already
    queued before it closes its listening sockets (closing them would reset those)."""

    async def shutdown(self, sockets: list[socket.socket] | None = None) -> None:
        listening = [sock for server in self.servers for sock in server.sockets]
        await stop_listening(sock.fileno() for sock in listening)
        await super().shutdown(sockets)


class Supervisor(Multiprocess):
    """uvicorn's supervisor, whose copy of the listening socket outlives the workers' copies.

    uvicorn's workers close their listening sockets without taking what the kernel queued; the
    last descriptor closing would reset those connections. So the supervisor stops new
    connections once the workers stop serving (after the drain delay), keeps its copy open
    until no worker holds the socket any more, answers whatever is left queued with a 503 and
    ``Connection: close``, and closes it: from then on new connections are refused.
    """

    def __init__(self, config: uvicorn.Config, sockets: list[socket.socket], delay: float) -> None:
        super().__init__(config, sockets=sockets)
        self.drain_delay = delay

    def terminate_all(self) -> None:
        super().terminate_all()
        time.sleep(self.drain_delay)  # the workers serve on meanwhile (kit's readiness)
        for sock in self.sockets:
            refuse_new(sock)
        workers = [process.pid for process in self.processes]
        while any(held_by(workers, sock) for sock in self.sockets):
            time.sleep(POLL)
        answer_queued(self.sockets)
        for sock in self.sockets:
            sock.close()
