"""One access-log line per request, written by kit so it reads the same on every server."""

from __future__ import annotations

import logging
import time
from typing import Any

from starlette.types import Scope

from kit.ops.logs import (
    REQUEST_ID,
    TRACE_ID,
    AccessLine,
    KitHandler,
    direct_json_handler,
)

ACCESS_LOGGER = logging.getLogger("kit.access")
RECHECK = 0.5  # seconds between checks that kit's handler alone writes access lines


class AccessLog:
    """Writes the access line; ``ObserveMiddleware`` calls ``emit`` once per request."""

    def __init__(self, logger: logging.Logger = ACCESS_LOGGER) -> None:
        self.logger = logger
        self._template: dict[str, Any] | None = None
        self._direct: KitHandler | None = None
        self._checked = -RECHECK  # when _direct was last decided

    def _direct_handler(self, now: float) -> KitHandler | None:
        # Deciding walks the logger tree; logging config changes are rare, so emit decides at
        # most every RECHECK seconds: a handler added at run time gets access lines within that.
        self._direct = direct_json_handler(self.logger)
        self._checked = now
        return self._direct

    def emit(self, scope: Scope, status: int, size: int, seconds: float) -> None:
        logger = self.logger
        if not logger.isEnabledFor(logging.INFO):
            return
        duration_ms = int(seconds * 1_000_000) / 1000
        method = scope["method"]
        route = scope.get("kit.route")
        path = scope["path"]
        msg = f"{method} {route or path} {status} {duration_ms}ms"
        rid = REQUEST_ID.get()
        peer = scope.get("client")
        client = peer[0] if peer else None
        now = time.time()
        handler = self._direct if now - self._checked <= RECHECK else self._direct_handler(now)
        if handler is not None:  # the same line JSONFormatter would write, without a LogRecord
            handler.write_access(
                AccessLine(
                    ts=handler.formatter.clock.iso(now),  # type: ignore[union-attr]
                    level="info",
                    logger=logger.name,
                    msg=msg,
                    request_id=rid,
                    trace_id=TRACE_ID.get(),
                    method=method,
                    route=route,
                    path=path,
                    status=status,
                    duration_ms=duration_ms,
                    bytes=size,
                    client=client,
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
        logger.handle(self._record(msg, rid, fields))

    def _record(self, msg: str, rid: str | None, fields: dict[str, Any]) -> logging.LogRecord:
        # From a per-process template: makeRecord would look up the thread, process and caller
        # on every request, and here they never change.
        template = self._template
        if template is None:
            base = self.logger.makeRecord(self.logger.name, logging.INFO, "", 0, "", (), None)
            template = self._template = dict(base.__dict__, batch=True)  # see KitHandler
        record = logging.LogRecord.__new__(logging.LogRecord)
        values = template.copy()
        created = time.time()
        values["created"] = created
        values["msecs"] = (created - int(created)) * 1000
        values["msg"] = msg
        values["request_id"] = rid
        values["trace_id"] = TRACE_ID.get()
        values["fields"] = fields
        record.__dict__ = values
        return record
