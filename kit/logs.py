"""Logging setup: JSON lines or text, with the request id on every record."""

from __future__ import annotations

import logging
import sys
import time
import traceback
from typing import Any

import msgspec

from kit.middleware.request_id import REQUEST_ID

# Attributes every LogRecord has; anything else on a record came from ``extra=``.
_STANDARD = frozenset(logging.makeLogRecord({}).__dict__) | {"message", "asctime", "request_id"}
# Servers' own loggers: routed through kit's handler so their lines share the format.
SERVER_LOGGERS = ("uvicorn", "uvicorn.error", "granian", "_granian", "hypercorn.error")
_encode = msgspec.json.Encoder(enc_hook=str).encode


class _Clock:
    """ISO-8601 UTC timestamps; the seconds part is formatted once per second."""

    __slots__ = ("prefix", "second")

    def __init__(self) -> None:
        self.second = -1
        self.prefix = ""

    def iso(self, created: float) -> str:
        second = int(created)
        if second != self.second:
            self.prefix = time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime(second))
            self.second = second
        return f"{self.prefix}.{int((created - second) * 1000):03d}Z"


def _extras(record: logging.LogRecord) -> dict[str, Any]:
    return {k: v for k, v in record.__dict__.items() if k not in _STANDARD}


class JSONFormatter(logging.Formatter):
    """One JSON object per line: ts, level, logger, msg, request_id, then any extra fields."""

    def __init__(self) -> None:
        super().__init__()
        self._clock = _Clock()

    def format(self, record: logging.LogRecord) -> str:
        out: dict[str, Any] = {
            "ts": self._clock.iso(record.created),
            "level": record.levelname.lower(),
            "logger": record.name,
            "msg": record.getMessage(),
        }
        rid = getattr(record, "request_id", None)
        if rid is not None:
            out["request_id"] = rid
        fields = getattr(record, "fields", None)  # kit's fast path: one dict, no scan
        out.update(fields if isinstance(fields, dict) else _extras(record))
        if record.exc_info:
            out["exc"] = "".join(traceback.format_exception(*record.exc_info)).rstrip()
        if record.stack_info:
            out["stack"] = record.stack_info
        return _encode(out).decode()


class TextFormatter(logging.Formatter):
    """Human-oriented: ``time LEVEL logger [request-id] message``."""

    def __init__(self) -> None:
        super().__init__()
        self._clock = _Clock()

    def format(self, record: logging.LogRecord) -> str:
        rid = getattr(record, "request_id", None)
        line = (
            f"{self._clock.iso(record.created)} {record.levelname:<7} {record.name}"
            f"{f' [{rid}]' if rid else ''} {record.getMessage()}"
        )
        if record.exc_info:
            line += "\n" + "".join(traceback.format_exception(*record.exc_info)).rstrip()
        if record.stack_info:
            line += "\n" + record.stack_info
        return line


class KitHandler(logging.StreamHandler):  # type: ignore[type-arg]
    """Marks the handler kit installed, so configuring again replaces it instead of adding one."""


def _install_record_factory() -> None:
    base = logging.getLogRecordFactory()
    if getattr(base, "_kit", False):
        return

    def factory(*args: Any, **kwargs: Any) -> logging.LogRecord:
        record = base(*args, **kwargs)
        record.request_id = REQUEST_ID.get()
        return record

    factory._kit = True  # type: ignore[attr-defined]
    logging.setLogRecordFactory(factory)


# Every record gets the request id, whichever handlers the application configures.
_install_record_factory()


def configure_logging(log_format: str = "json", level: str = "info") -> None:
    """Install kit's handler on the root logger (idempotent) and route server loggers to it."""
    root = logging.getLogger()
    for old in [h for h in root.handlers if isinstance(h, KitHandler)]:
        root.removeHandler(old)
    handler = KitHandler(sys.stderr)
    handler.setFormatter(JSONFormatter() if log_format == "json" else TextFormatter())
    root.addHandler(handler)
    root.setLevel(level.upper())
    for name in SERVER_LOGGERS:
        server_logger = logging.getLogger(name)
        server_logger.handlers.clear()
        server_logger.propagate = True
