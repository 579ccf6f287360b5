"""One hypercorn worker's serving loop, as ``hypercorn.asyncio.run.worker_serve`` (cleartext
TCP only, which is all kit binds) with kit's shutdown order and connection class.

At shutdown hypercorn closes each idle connection the moment the worker is told to stop, and
its listening sockets right after: a request already in an idle connection's receive buffer,
or on its way on a connection just accepted, is reset, and so is every connection still in the
accept queue. Here the accept queue is taken first (``stop_listening``), and an idle connection
is closed only once no request is on its way.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Awaitable, Callable
from typing import Any

import hypercorn.protocol
from hypercorn.asyncio.lifespan import Lifespan
from hypercorn.asyncio.statsd import StatsdLogger
from hypercorn.asyncio.tcp_server import TCPServer
from hypercorn.asyncio.worker_context import WorkerContext
from hypercorn.config import Config, Sockets
from hypercorn.events import Closed
from hypercorn.protocol.h11 import H11Protocol
from hypercorn.typing import AppWrapper, LifespanState

from runtimes.listeners import FIRST_REQUEST_WAIT, POLL, buffered, stop_listening


class StartupReported(Exception):
    """The app's startup failed with an error whose one line it printed already."""


class BoundedH11Protocol(H11Protocol):
    """hypercorn's HTTP/1.1 protocol, refusing with 431 a complete header block over the bound.

    h11's ``max_incomplete_event_size`` applies to a block still arriving only: one that came
    whole within a read was taken up to twice the bound. Here the parsed block is measured
    (target, names and values, with the bytes around them) before a stream is made for it.
    """

    async def _create_stream(self, request: Any) -> None:
        size = len(request.target) + 16  # "GET ", " HTTP/1.1\r\n", the final CRLF
        for name, value in request.headers.raw_items():
            size += len(name) + len(value) + 4  # ": " and CRLF
        if size > self.config.h11_max_incomplete_size:
            await self._send_error_response(431)
            await self.send(Closed())
            return  # no stream: what follows on this connection is ignored
        await super()._create_stream(request)


# The protocol hypercorn's ProtocolWrapper makes for each HTTP/1.1 connection of this worker.
hypercorn.protocol.H11Protocol = BoundedH11Protocol  # type: ignore[attr-defined]


class DrainingTCPServer(TCPServer):
    """hypercorn's connection, whose idle timer, once the worker stops, waits for a request
    on its way (unread bytes, or a first request on a connection that carried none) before it
    closes the connection; such a request stops the timer and is answered first."""

    async def _idle_timeout(self) -> None:
        try:
            await asyncio.wait_for(self.context.terminated.wait(), self.config.keep_alive_timeout)
        except TimeoutError:
            pass
        else:
            await self._until_nothing_on_the_way()
        await asyncio.shield(self._initiate_server_close())

    async def _until_nothing_on_the_way(self) -> None:
        sock = self.writer.get_extra_info("socket")
        # h11's count of requests on this connection (h2 connections are never "fresh")
        fresh = getattr(self.protocol.protocol, "keep_alive_requests", 1) == 0
        deadline = time.monotonic() + FIRST_REQUEST_WAIT
        while (fresh and time.monotonic() < deadline) or (
            sock is not None and buffered(sock.fileno())
        ):
            await asyncio.sleep(POLL)


async def serve_worker(
    app: AppWrapper,
    config: Config,
    sockets: Sockets,
    shutdown_trigger: Callable[[], Awaitable[Any]],
) -> None:
    config.set_statsd_logger_class(StatsdLogger)
    loop = asyncio.get_running_loop()
    lifespan_state: LifespanState = {}
    lifespan = Lifespan(app, config, loop, lifespan_state)
    lifespan_task = loop.create_task(lifespan.handle_lifespan())
    await lifespan.wait_for_startup()
    if lifespan_task.done() and lifespan_task.exception() is not None:
        error = lifespan_task.exception()
        # hypercorn raises its LifespanFailureError from the app's error; when the app printed
        # that error's one line already, exit without a traceback, as the other runtimes do
        if getattr(getattr(error, "__context__", None), "reported", False) is True:
            raise StartupReported from None
        raise error  # type: ignore[misc]

    context = WorkerContext(None)
    server_tasks: set[asyncio.Task[None]] = set()

    async def on_connection(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        task = asyncio.current_task()
        assert task is not None
        server_tasks.add(task)
        task.add_done_callback(server_tasks.discard)
        await DrainingTCPServer(app, loop, config, context, lifespan_state, reader, writer)

    listening = sockets.insecure_sockets
    servers = [
        await asyncio.start_server(on_connection, backlog=config.backlog, sock=sock)
        for sock in listening
    ]
    try:
        await shutdown_trigger()
        await stop_listening(sock.fileno() for sock in listening)
    finally:
        await context.terminated.set()
        for server in servers:
            server.close()
            await server.wait_closed()
        # Connections still open past the graceful timeout are cancelled, as in hypercorn.
        if server_tasks:  # asyncio.wait refuses an empty set
            await asyncio.wait(server_tasks, timeout=config.graceful_timeout)
        for task in server_tasks:
            task.cancel()
        await lifespan.wait_for_shutdown()
        lifespan_task.cancel()
        await lifespan_task
