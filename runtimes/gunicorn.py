"""gunicorn: the process manager, with uvicorn workers (the ``uvicorn-worker`` package).

gunicorn forks its workers and respawns one that dies; each worker is a uvicorn server.
"""

from __future__ import annotations

import math
import sys
from typing import Any

from gunicorn.app.base import BaseApplication
from gunicorn.arbiter import Arbiter
from uvicorn_worker import UvicornWorker

from runtimes.base import Launch, Runtime, RuntimeUnavailable, quiet_level
from runtimes.imports import import_from_string
from runtimes.uvicorn import Server, header_bound, http_protocol

# Extra time, past the graceful timeout, for lifespan shutdown before a worker is killed.
SHUTDOWN_MARGIN = 10.0
# A worker that has not reported for this long is killed and replaced (its loop is stuck).
WORKER_TIMEOUT = 30
KEEP_ALIVE = 5


class GunicornRuntime(Runtime):
    name = "gunicorn"
    package = "gunicorn"

    def check(self, launch: Launch) -> None:
        if launch.http == "2":
            raise RuntimeUnavailable(
                "gunicorn's uvicorn workers serve HTTP/1.1 only; "
                "use KIT_HTTP=auto or 1, or KIT_RUNTIME=granian or hypercorn"
            )

    def options(self, launch: Launch) -> dict[str, Any]:
        host = f"[{launch.host}]" if ":" in launch.host else launch.host
        return {
            "bind": [f"{host}:{launch.port}"],
            "workers": launch.workers,
            "worker_class": worker_class(launch),
            # Past the drain delay and uvicorn's own drain, then lifespan shutdown.
            "graceful_timeout": math.ceil(
                launch.drain_delay + launch.graceful_timeout + SHUTDOWN_MARGIN
            ),
            "timeout": WORKER_TIMEOUT,
            # Idle keep-alive seconds, as on the other runtimes (gunicorn's own default is 2).
            "keepalive": KEEP_ALIVE,
            "loglevel": quiet_level(launch.log_level),
            "accesslog": None,
            # kit resolves forwarded headers itself (kit.middleware.forwarded).
            "forwarded_allow_ips": "",
            "proc_name": f"kit {launch.app}",
        }

    def serve(self, launch: Launch) -> int:
        application = _Application(launch.app, self.options(launch))
        try:
            _Arbiter(application).run()
        except SystemExit as exc:  # the arbiter always leaves through sys.exit
            return exc.code if isinstance(exc.code, int) else 1
        return 0


def worker_class(launch: Launch) -> type[UvicornWorker]:
    """A uvicorn worker configured like kit's uvicorn runtime (loop, protocol, quiet)."""
    config = {
        "loop": launch.loop,
        "http": http_protocol(launch.http),
        "lifespan": "on",
        "access_log": False,
        "server_header": False,
        "proxy_headers": False,
        "h11_max_incomplete_event_size": header_bound(launch),
        # uvicorn takes whole seconds; rounding up never cuts a drain short.
        "timeout_graceful_shutdown": math.ceil(launch.graceful_timeout),
    }
    return type("KitUvicornWorker", (DrainingUvicornWorker,), {"CONFIG_KWARGS": config})


class DrainingUvicornWorker(UvicornWorker):  # type: ignore[misc]
    """The uvicorn worker, serving with kit's uvicorn server: at shutdown it takes the
    connections the kernel queued before it closes its listening socket (gunicorn's arbiter
    has closed its copy already, so the last worker to close would reset them)."""

    async def _serve(self) -> None:
        self.config.app = self.wsgi
        server = Server(config=self.config)
        self._install_sigquit_handler()
        await server.serve(sockets=self.sockets)
        if not server.started:
            sys.exit(Arbiter.WORKER_BOOT_ERROR)


class _Arbiter(Arbiter):  # type: ignore[misc]
    def handle_int(self) -> None:
        # gunicorn stops at once on SIGINT; kit drains on SIGINT as on SIGTERM everywhere.
        self.handle_term()


class _Application(BaseApplication):  # type: ignore[misc]
    def __init__(self, app: str, options: dict[str, Any]) -> None:
        self.app_path = app
        self.options = options
        super().__init__()

    def load_config(self) -> None:
        for key, value in self.options.items():
            self.cfg.set(key, value)
        # gunicorn >= 25.1 opens a control socket at one fixed path per user: several
        # instances on one host would fight over it.
        if "control_socket_disable" in self.cfg.settings:
            self.cfg.set("control_socket_disable", True)

    def load(self) -> Any:
        return import_from_string(self.app_path)
