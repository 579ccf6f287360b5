"""granian: the ASGI interface; on a free-threaded build its workers are threads."""

from __future__ import annotations

import logging
import math
import multiprocessing
import signal
from types import FrameType
from typing import Any

from granian import Granian
from granian import _signals as granian_signals
from granian._granian import BUILD_GIL, WorkerSignal
from granian.constants import HTTPModes, Interfaces, Loops
from granian.http import HTTP1Settings, HTTP2Settings
from granian.log import LogLevels
from granian.server.common import AbstractServer

from runtimes.base import Launch, Runtime, RuntimeUnavailable, quiet_level
from runtimes.gil import gil_enabled


class GranianRuntime(Runtime):
    name = "granian"
    package = "granian"
    # granian picks its thread-based server itself when built without the GIL.
    thread_workers = not BUILD_GIL

    def check(self, launch: Launch) -> None:
        # KIT_ALLOW_GIL cannot help here: granian's free-threaded build refuses a GIL itself.
        if not BUILD_GIL and gil_enabled():
            raise RuntimeUnavailable(
                "granian's free-threaded build does not run with the GIL enabled; "
                "use PYTHON_GIL=0, or KIT_RUNTIME=uvicorn or hypercorn with KIT_ALLOW_GIL=1"
            )

    def shares_port(self, launch: Launch) -> bool:
        return True  # granian always binds with SO_REUSEPORT

    def options(self, launch: Launch) -> dict[str, Any]:
        return {
            "target": launch.app,
            "address": launch.host,
            "port": launch.port,
            "interface": Interfaces.ASGI,
            "workers": launch.workers,
            "loop": Loops(launch.loop),
            "http": HTTPModes(launch.http),
            "websockets": True,
            "log_access": False,
            "log_level": LogLevels(quiet_level(launch.log_level)),
            # Whole seconds; 0 would mean "wait forever" to granian, so at least 1. The workers
            # serve on for the drain delay before they start to drain.
            "workers_kill_timeout": max(1, math.ceil(launch.drain_delay + launch.graceful_timeout)),
            # hyper's read buffer holds the request line and headers (431 past it); 8 KiB minimum
            "http1_settings": HTTP1Settings(max_buffer_size=max(8192, launch.max_header_size)),
            "http2_settings": HTTP2Settings(max_headers_size=launch.max_header_size),
        }

    def serve(self, launch: Launch) -> int:
        granian_signals.set_loop_signals = _plain_signal_handlers  # forked workers inherit it
        logging.getLogger("_granian").addFilter(_PrintedErrors())  # and this
        if multiprocessing.get_start_method() == "forkserver":
            # Python 3.14's default on Linux, where granian would spawn its workers instead;
            # fork, as granian does on earlier Pythons, hands them the handlers above.
            multiprocessing.set_start_method("fork", force=True)
        server: AbstractServer[Any] = Granian(**self.options(launch))
        try:
            server.serve()
        except SystemExit as exc:  # granian exits non-zero when a worker died
            return exc.code if isinstance(exc.code, int) else 1
        return 0


class _PrintedErrors(logging.Filter):
    """granian logs a failed app startup with the error's traceback; for an error whose one
    line the app printed already (``reported``), granian's own line is enough."""

    def filter(self, record: logging.LogRecord) -> bool:
        error = record.exc_info[1] if record.exc_info else None
        if getattr(error, "reported", False) is True:
            record.exc_info = None
            record.exc_text = None
        return True


def _plain_signal_handlers(loop: Any) -> WorkerSignal:
    """granian's own fallback for loops without signal support: plain handlers, which the app
    can chain onto (kit's readiness does, to hold the shutdown back for KIT_DRAIN_DELAY); a
    loop.add_signal_handler callback runs before any Python-level handler could."""
    event = WorkerSignal()

    def on_signal(signum: int, frame: FrameType | None) -> None:
        event.set()

    for signum in (signal.SIGINT, signal.SIGTERM):
        signal.signal(signum, on_signal)
    return event
