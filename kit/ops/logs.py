"""Logging setup: JSON lines or text, with the request id on every record."""

from __future__ import annotations

import logging
import sys
import threading
import time
import traceback
from collections.abc import Callable
from contextvars import ContextVar
from typing import Any

import msgspec

from runtimes.registry import SERVER_LOGGERS

# The id of the request being handled, None outside one; ObserveMiddleware sets it
# (kit.middleware.observe), and kit.middleware.request_id reads it for handlers.
REQUEST_ID: ContextVar[str | None] = ContextVar("kit.request_id", default=None)
# A trace id (32 hex digits) set for work that runs under a span of its own (kit.tasks.context).
# A request's trace id is not set here: kit.ops.tracing keeps it in the OpenTelemetry context it
# sets anyway, and formats it only when a line asks (``trace_id()``), one context variable set
# per request instead of two.
TRACE_ID: ContextVar[str | None] = ContextVar("kit.trace_id", default=None)
# The trace id (32 hex digits) for log lines, None outside a trace: TRACE_ID's, a C call
# with no Python frame. kit.ops.tracing (KIT_OTEL=1) replaces it by one that falls back on the
# traced request's id (``use_trace_id``): call it as ``logs.trace_id()``, never imported by name.
trace_id: Callable[[], str | None] = TRACE_ID.get


def use_trace_id(reader: Callable[[], str | None]) -> None:
    """Make ``reader`` (TRACE_ID's value first, then the request's) what log lines read."""
    global trace_id
    trace_id = reader


# Attributes every LogRecord has; anything else on a record came from ``extra=``.
_STANDARD = frozenset(logging.makeLogRecord({}).__dict__) | {
    "message",
    "asctime",
    "request_id",
    "trace_id",
    "batch",
}
_LEVELS = {n: logging.getLevelName(n).lower() for n in (10, 20, 30, 40, 50)}
_encode = msgspec.json.Encoder(enc_hook=str).encode
PIPE_BUF = 4096  # POSIX: writes up to this size to a pipe are atomic
FLUSH_INTERVAL = 0.1  # seconds an access line may wait in a batch


# ".000Z" to ".999Z": indexing is several times cheaper than formatting the milliseconds.
_MILLIS = tuple(f".{ms:03d}Z" for ms in range(1000))


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
        return self.prefix + _MILLIS[int((created - second) * 1000)]


def _extras(record: logging.LogRecord) -> dict[str, Any]:
    return {k: v for k, v in record.__dict__.items() if k not in _STANDARD}


class JSONFormatter(logging.Formatter):
    """One JSON object per line: ts, level, logger, msg, request_id, then any extra fields."""

    def __init__(self) -> None:
        super().__init__()
        self.clock = _Clock()

    def format(self, record: logging.LogRecord) -> str:
        out: dict[str, Any] = {
            "ts": self.clock.iso(record.created),
            "level": _LEVELS.get(record.levelno) or record.levelname.lower(),
            "logger": record.name,
            "msg": record.getMessage(),
        }
        rid = getattr(record, "request_id", None)
        if rid is not None:
            out["request_id"] = rid
        tid = getattr(record, "trace_id", None)
        if tid is not None:
            out["trace_id"] = tid
        fields = getattr(record, "fields", None)  # kit's fast path: one dict, no scan
        out.update(fields if isinstance(fields, dict) else _extras(record))
        if record.exc_info:
            out["exc"] = "".join(traceback.format_exception(*record.exc_info)).rstrip()
        if record.stack_info:
            out["stack"] = record.stack_info
        return _encode(out).decode()


# C0 controls, DEL and C1 controls: a CR or LF in a path would forge a line in a text log, an
# ESC would write terminal escapes. Each becomes a visible escape (\r, \n, \t, \x1b...).
_CONTROLS = {c: f"\\x{c:02x}" for c in (*range(0x20), *range(0x7F, 0xA0))}
_CONTROLS.update({0x0A: "\\n", 0x0D: "\\r", 0x09: "\\t"})
_CONTROLS_KEEP_LINES = {c: v for c, v in _CONTROLS.items() if c != 0x0A}


def escape_controls(text: str) -> str:
    """``text`` with every control character written as a visible escape, on one line."""
    return text.translate(_CONTROLS) if not text.isprintable() else text


class TextFormatter(logging.Formatter):
    """Human-oriented: ``time LEVEL logger [request-id] message``.

    Everything but a traceback is one line, control characters escaped: what clients send
    (paths, headers, ids) cannot forge lines or reach a terminal raw. A traceback keeps its
    line breaks, with its other control characters escaped.
    """

    def __init__(self) -> None:
        super().__init__()
        self.clock = _Clock()

    def format(self, record: logging.LogRecord) -> str:
        rid = getattr(record, "request_id", None)
        tid = getattr(record, "trace_id", None)
        line = escape_controls(
            f"{self.clock.iso(record.created)} {record.levelname:<7} {record.name}"
            f"{f' [{rid}]' if rid else ''}{f' [trace {tid}]' if tid else ''} {record.getMessage()}"
        )
        if record.exc_info:
            exc = "".join(traceback.format_exception(*record.exc_info)).rstrip()
            line += "\n" + exc.translate(_CONTROLS_KEEP_LINES)
        if record.stack_info:
            line += "\n" + record.stack_info.translate(_CONTROLS_KEEP_LINES)
        return line


class KitHandler(logging.StreamHandler):  # type: ignore[type-arg]
    """kit's handler: one write per line, except access lines, which are batched.

    Batches stay under PIPE_BUF, so lines from several workers sharing a pipe never interleave
    mid-line; they are written at least every ``FLUSH_INTERVAL`` and before any other record, so
    the order holds. Saving a write per request is most of the access log's cost.
    """

    def __init__(self, stream: Any) -> None:
        super().__init__(stream)
        # UTF-8 of the batched lines: access lines are encoded straight into it, with no
        # bytes or str object per line.
        self._batch = bytearray()
        self._stop_flushing = threading.Event()
        threading.Thread(target=self._flush_periodically, name="kit-log-flush", daemon=True).start()

    def emit(self, record: logging.LogRecord) -> None:
        try:
            line = self.format(record) + "\n"
            if getattr(record, "batch", False):
                self._add_batched(line.encode())
            else:
                self._write_batch()
                self.stream.write(line)
                self.stream.flush()
        except Exception:
            self.handleError(record)

    def write_batched(self, line: str) -> None:
        """Write an already formatted line, as emit would for a record marked ``batch``."""
        with self.lock:  # type: ignore[union-attr]
            self._add_batched(line.encode())

    def write_access(self, line: AccessLine) -> None:
        """Batch ``line`` as JSON, encoded once, straight into the batch."""
        with self.lock:  # type: ignore[union-attr]
            batch = self._batch
            start = len(batch)
            _encode_access_into(line, batch, -1)
            batch.append(10)  # "\n"
            if len(batch) > PIPE_BUF:
                self._overflow(start)

    def _add_batched(self, line: bytes) -> None:
        batch = self._batch
        start = len(batch)
        batch += line
        if len(batch) > PIPE_BUF:
            self._overflow(start)

    def _overflow(self, start: int) -> None:
        # The line starting at ``start`` made the batch too long for one atomic write: write
        # the lines before it, and it too if it alone is longer.
        batch = self._batch
        if start:
            self.stream.write(batch[:start].decode())
            del batch[:start]
        if len(batch) > PIPE_BUF:
            self.stream.write(batch.decode())
            batch.clear()
        self.stream.flush()

    def _write_batch(self) -> None:
        if self._batch:
            self.stream.write(self._batch.decode())
            self.stream.flush()
            self._batch.clear()

    def flush(self) -> None:
        with self.lock:  # type: ignore[union-attr]
            try:
                self._write_batch()
            except (OSError, ValueError):  # stream closed at exit
                self._batch.clear()

    def _flush_periodically(self) -> None:
        while not self._stop_flushing.wait(FLUSH_INTERVAL):
            self.flush()

    def close(self) -> None:
        self._stop_flushing.set()
        self.flush()
        super().close()


class AccessLine(msgspec.Struct, gc=False):
    """kit's access record as JSONFormatter writes it, key for key, encoded without a record.

    Built positionally (cheaper than by keyword); ``request_id`` and ``trace_id`` are UNSET,
    so left out of the line, when the request has none. The other defaults are never used:
    they only let the optional fields sit where JSONFormatter writes them."""

    ts: str
    level: str
    logger: str
    msg: str
    request_id: str | msgspec.UnsetType = msgspec.UNSET
    trace_id: str | msgspec.UnsetType = msgspec.UNSET
    method: str = ""
    route: str | None = None
    path: str = ""
    status: int = 0
    duration_ms: float = 0.0
    bytes: int = 0
    client: str | None = None


_access_encoder = msgspec.json.Encoder()
encode_access_line = _access_encoder.encode
_encode_access_into = _access_encoder.encode_into


def direct_json_handler(logger: logging.Logger) -> KitHandler | None:
    """kit's JSON handler if it alone gets ``logger``'s records, unfiltered; else None.

    Then a caller may write a line itself instead of building a LogRecord: the access log
    does, which halves its cost. Any other handler or filter on the way disables this.
    """
    if logger.handlers or logger.filters or logger.disabled:
        return None
    current = logger
    while current.propagate and current.parent is not None:
        current = current.parent
        if current.handlers:
            break
    handlers = current.handlers
    if current.parent is not None or len(handlers) != 1:
        return None
    handler = handlers[0]
    if (
        type(handler) is not KitHandler
        or handler.filters
        or handler.level > logging.INFO
        or type(handler.formatter) is not JSONFormatter
    ):
        return None
    return handler


def flush_logs() -> None:
    """Write batched lines now (at shutdown: worker processes may exit without atexit)."""
    for handler in logging.getLogger().handlers:
        if isinstance(handler, KitHandler):
            handler.flush()


def _install_record_factory() -> None:
    base = logging.getLogRecordFactory()
    if getattr(base, "_kit", False):
        return

    def factory(*args: Any, **kwargs: Any) -> logging.LogRecord:
        record = base(*args, **kwargs)
        record.request_id = REQUEST_ID.get()
        record.trace_id = trace_id()
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
        old.close()
    handler = KitHandler(sys.stderr)
    handler.setFormatter(JSONFormatter() if log_format == "json" else TextFormatter())
    root.addHandler(handler)
    root.setLevel(level.upper())
    # Servers' own loggers: routed through kit's handler so their lines share the format.
    for name in SERVER_LOGGERS:
        server_logger = logging.getLogger(name)
        server_logger.handlers.clear()
        server_logger.propagate = True
