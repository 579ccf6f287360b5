"""What every runtime adapter gets and must provide."""

from __future__ import annotations

from dataclasses import dataclass
from importlib.metadata import PackageNotFoundError, version
from typing import ClassVar


class RuntimeUnavailable(Exception):
    """The runtime cannot serve with these settings; the message is one line for the user."""


@dataclass(frozen=True)
class Launch:
    """Everything decided before the hand-off: the adapter only maps it onto server options.

    runtimes/ knows nothing of kit: ``kit serve`` fills this in from its Settings.
    """

    app: str  # "module:attr", importable in fresh worker processes
    loop: str  # resolved: "uvloop" or "asyncio"
    threads: bool  # workers are threads (free-threaded build and the server supports it)
    host: str = "127.0.0.1"
    port: int = 8000
    workers: int = 1
    http: str = "auto"  # "auto" | "1" | "2"
    graceful_timeout: float = 30.0  # seconds to drain in-flight requests
    # seconds the app keeps serving after SIGTERM before the server gets it (kit's readiness
    # holds it back): every kill timeout comes after drain_delay + graceful_timeout
    drain_delay: float = 0.0
    log_level: str = "info"  # kit's level; adapters map it with quiet_level()
    # Request line plus headers of one request, in bytes: past it the server answers 431 (or
    # closes the connection). The servers' own defaults range from 16 KiB to unbounded.
    max_header_size: int = 64 * 1024

    @property
    def url(self) -> str:
        host = f"[{self.host}]" if ":" in self.host else self.host
        return f"http://{host}:{self.port}"


def quiet_level(log_level: str) -> str:
    """The server's own log level: kit prints the startup line and the access log itself,
    so server chatter below warning is hidden unless the user asked for debug."""
    return "debug" if log_level == "debug" else max(log_level, "warning", key=_LEVELS.index)


_LEVELS = ["debug", "info", "warning", "error", "critical"]


class Runtime:
    """Base class for adapters; a custom ``KIT_RUNTIME=module:attr`` names a subclass."""

    name: ClassVar[str] = "custom"
    package: ClassVar[str] = ""  # distribution whose version the startup line shows
    thread_workers: ClassVar[bool] = False  # can run workers as threads on a free-threaded build

    def version(self) -> str:
        try:
            return version(self.package) if self.package else "?"
        except PackageNotFoundError:
            return "?"

    def check(self, launch: Launch) -> None:
        """Raise RuntimeUnavailable for settings this server cannot honour."""

    def shares_port(self, launch: Launch) -> bool:
        """Whether this server binds with SO_REUSEPORT, so that several can share a port."""
        return False

    def serve(self, launch: Launch) -> int:
        """Serve until SIGTERM/SIGINT, drain in-flight requests, return the exit code."""
        raise NotImplementedError
