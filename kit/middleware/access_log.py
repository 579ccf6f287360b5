"""One access-log line per request, written by kit so it reads the same on every server."""

from __future__ import annotations

import logging
import time
from typing import Any

from msgspec import UNSET
from starlette.types import Scope

from kit.ops import logs
from kit.ops.logs import (
    REQUEST_ID,
    AccessLine,
    KitHandler,
    direct_json_handler,
)

ACCESS_LOGGER = logging.getLogger("kit.access")
RECHECK = 0.5  # seconds between checks that kit's handler alone writes access lines
# The milliseconds of a duration of N microseconds as repr(N / 1000) writes them: the integral
# part, then these (trailing zeros dropped, at least one digit); exact below 10**15 us, where
# a float holds every such decimal. Formatting a float per line costs several times more.
_FRACTIONS = tuple((f"{n:03d}".rstrip("0") or "0") for n in range(1000))
_EXACT = 10**15


class AccessLog:
    """Writes the access line; ``ObserveMiddleware`` calls ``write`` once per request."""

    def __init__(self, logger: logging.Logger = ACCESS_LOGGER) -> None:
        self.logger = logger
        self._template: dict[str, Any] | None = None
        # Decided at most every RECHECK seconds (they walk the logger tree, and logging config
        # changes are rare): a level or handler changed at run time applies within that.
        self._enabled = False
        self._direct: KitHandler | None = None
        self._checked = float("-inf")  # perf_counter() when they were last decided
        self._offset = 0.0  # time.time() - perf_counter(), taken then: no wall clock read per line
        self._millisecond = -1  # the line timestamp's millisecond, and its text
        self._ts = ""

    def _recheck(self, now: float) -> None:
        self._enabled = self.logger.isEnabledFor(logging.INFO)
        self._direct = direct_json_handler(self.logger)
        self._offset = time.time() - time.perf_counter()
        self._checked = now

    def emit(self, scope: Scope, status: int, size: int, seconds: float) -> None:
        """The line of a request that took ``seconds`` and ended now."""
        end = time.perf_counter()
        self.write(
            scope, scope.get("kit.route"), REQUEST_ID.get(), status, size, end - seconds, end
        )

    def write(
        self,
        scope: Scope,
        route: str | None,
        rid: str | None,
        status: int,
        size: int,
        start: float,
        end: float,
    ) -> None:
        """The line of a request that ran from ``start`` to ``end`` (``time.perf_counter()``)."""
        if end - self._checked > RECHECK:
            self._recheck(end)
        if not self._enabled:
            return
        micros = int((end - start) * 1_000_000)
        duration_ms = micros / 1000
        method = scope["method"]
        path = scope["path"]
        if 0 <= micros < _EXACT:
            msg = (
                f"{method} {route or path} {status} {micros // 1000}.{_FRACTIONS[micros % 1000]}ms"
            )
        else:
            msg = f"{method} {route or path} {status} {duration_ms}ms"
        peer = scope.get("client")
        client = peer[0] if peer else None
        created = end + self._offset
        handler = self._direct
        if handler is not None:  # the same line JSONFormatter would write, without a LogRecord
            millisecond = int(created * 1000)
            if millisecond != self._millisecond:  # many lines share one at any real rate
                self._ts = handler.formatter.clock.iso(created)  # type: ignore[union-attr]
                self._millisecond = millisecond
            tid = logs.trace_id()
            handler.write_access(
                AccessLine(
                    self._ts,
                    "info",
                    self.logger.name,
                    msg,
                    UNSET if rid is None else rid,
                    UNSET if tid is None else tid,
                    method,
                    route,
                    path,
                    status,
                    duration_ms,
                    size,
                    client,
                )
            )
            return
        fields = {
            "method": method,
            "route": route,
            "path": path,
            "status": status,
            "duration_ms": duration_ms,
            "bytes": size,
            "client": client,
        }
        self.logger.handle(self._record(msg, rid, fields, created))

    def _record(
        self, msg: str, rid: str | None, fields: dict[str, Any], created: float
    ) -> logging.LogRecord:
        # From a per-process template: makeRecord would look up the thread, process and caller
        # on every request, and here they never change.
        template = self._template
        if template is None:
            base = self.logger.makeRecord(self.logger.name, logging.INFO, "", 0, "", (), None)
            template = self._template = dict(base.__dict__, batch=True)  # see KitHandler
        record = logging.LogRecord.__new__(logging.LogRecord)
        values = template.copy()
        values["created"] = created
        values["msecs"] = (created - int(created)) * 1000
        values["msg"] = msg
        values["request_id"] = rid
        values["trace_id"] = logs.trace_id()
        values["fields"] = fields
        record.__dict__ = values
        return record
