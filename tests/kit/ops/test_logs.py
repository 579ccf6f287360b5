"""kit.ops.logs: JSON and text formatters, the request id on every record, idempotent setup."""

from __future__ import annotations

import io
import json
import logging
import logging.config
import sys
from collections.abc import Iterator

import pytest

from kit.middleware.access_log import AccessLog
from kit.ops.logs import (
    PIPE_BUF,
    REQUEST_ID,
    JSONFormatter,
    KitHandler,
    TextFormatter,
    _Clock,
    configure_logging,
    direct_json_handler,
)


def record(
    msg: str = "hello %s", args: tuple[object, ...] = ("world",), **extra: object
) -> logging.LogRecord:
    token = REQUEST_ID.set("rid-1")
    try:
        return logging.getLogger("t").makeRecord(
            "t", logging.INFO, "f.py", 1, msg, args, None, extra=extra
        )
    finally:
        REQUEST_ID.reset(token)


def kit_handler_only(log_format: str) -> None:
    """Configure, then drop pytest's capture handlers (they turn kit's direct path off)."""
    configure_logging(log_format, "info")
    root = logging.getLogger()
    root.handlers[:] = [h for h in root.handlers if isinstance(h, KitHandler)]


def test_json_line_has_the_fields_and_the_extras() -> None:
    line = JSONFormatter().format(record(user=7, obj=object()))
    data = json.loads(line)
    assert data["level"] == "info"
    assert data["logger"] == "t"
    assert data["msg"] == "hello world"
    assert data["request_id"] == "rid-1"
    assert data["user"] == 7
    assert data["obj"].startswith("<object object")  # unencodable values become strings
    assert data["ts"].endswith("Z")
    assert "\n" not in line


def test_json_line_carries_exceptions_on_one_line() -> None:
    try:
        raise ValueError("boom")
    except ValueError:
        exc = sys.exc_info()
    rec = logging.getLogger("t").makeRecord("t", logging.ERROR, "f.py", 1, "failed", (), exc)
    data = json.loads(JSONFormatter().format(rec))
    assert "ValueError: boom" in data["exc"]
    assert "request_id" not in data  # outside a request


def test_text_line_is_for_people() -> None:
    line = TextFormatter().format(record())
    assert line.endswith("INFO    t [rid-1] hello world")


@pytest.fixture
def restore_logging() -> Iterator[None]:
    root = logging.getLogger()
    handlers, level = list(root.handlers), root.level
    try:
        yield
    finally:
        root.handlers[:] = handlers
        root.setLevel(level)


@pytest.mark.usefixtures("restore_logging")
def test_configure_is_idempotent_and_switches_format(monkeypatch: pytest.MonkeyPatch) -> None:
    stream = io.StringIO()
    monkeypatch.setattr(sys, "stderr", stream)
    configure_logging("json", "info")
    configure_logging("text", "warning")
    root = logging.getLogger()
    ours = [h for h in root.handlers if isinstance(h, KitHandler)]
    assert len(ours) == 1
    assert isinstance(ours[0].formatter, TextFormatter)
    assert root.level == logging.WARNING
    logging.getLogger("uvicorn.error").warning("from the server")
    assert "WARNING uvicorn.error from the server" in stream.getvalue()


def json_stderr(monkeypatch: pytest.MonkeyPatch) -> io.StringIO:
    """kit's JSON handler alone, writing to the returned stream (in the test's body: pytest
    adds its capture handlers after the fixtures)."""
    stream = io.StringIO()
    monkeypatch.setattr(sys, "stderr", stream)
    kit_handler_only("json")
    return stream


@pytest.mark.usefixtures("restore_logging")
def test_access_line_written_directly_equals_the_formatted_record(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    stream = json_stderr(monkeypatch)
    handler = direct_json_handler(logging.getLogger("kit.access"))
    assert handler is not None
    scope = {
        "method": "GET",
        "path": "/items/3",
        "kit.route": "/items/{item_id}",
        "client": ("192.0.2.4", 5000),
    }
    token = REQUEST_ID.set("rid-9")
    try:
        AccessLog().emit(scope, 200, 42, 0.0012345)  # direct
        extra = logging.NullHandler()  # any other handler: the LogRecord path
        logging.getLogger().addHandler(extra)
        assert direct_json_handler(logging.getLogger("kit.access")) is None
        AccessLog().emit(scope, 200, 42, 0.0012345)
    finally:
        REQUEST_ID.reset(token)
    handler.flush()
    direct, formatted = (json.loads(line) for line in stream.getvalue().splitlines())
    assert direct.pop("ts")[:19] == formatted.pop("ts")[:19]
    assert direct == formatted
    assert list(direct) == list(formatted)
    assert direct == {
        "level": "info",
        "logger": "kit.access",
        "msg": "GET /items/{item_id} 200 1.234ms",
        "request_id": "rid-9",
        "method": "GET",
        "route": "/items/{item_id}",
        "path": "/items/3",
        "status": 200,
        "duration_ms": 1.234,
        "bytes": 42,
        "client": "192.0.2.4",
    }


@pytest.mark.usefixtures("restore_logging")
def test_the_access_message_writes_the_duration_as_its_json_field_does(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    stream = json_stderr(monkeypatch)
    scope = {"method": "GET", "path": "/p", "client": None}
    durations = [0.0, 1e-6, 1e-5, 0.00012, 0.001, 0.0010005, 0.0123, 1.0, 59.999999, 86400.5]
    durations += [10**12, -0.5]  # past where the text is built from integers; a clock step
    log = AccessLog()
    for seconds in durations:
        log.write(scope, None, None, 200, 0, 100.0, 100.0 + seconds)
    logging.getLogger().handlers[0].flush()
    lines = [json.loads(line) for line in stream.getvalue().splitlines()]
    assert len(lines) == len(durations)
    for line in lines:
        assert "request_id" not in line
        assert "trace_id" not in line
        assert line["msg"] == f"GET /p 200 {line['duration_ms']!r}ms"
        assert line["client"] is None
        assert line["route"] is None


@pytest.mark.usefixtures("restore_logging")
def test_no_direct_path_for_text_filters_or_a_propagation_stop() -> None:
    kit_handler_only("text")
    access = logging.getLogger("kit.access")
    assert direct_json_handler(access) is None
    kit_handler_only("json")
    assert direct_json_handler(access) is not None
    access.addFilter(lambda record: True)
    try:
        assert direct_json_handler(access) is None
    finally:
        access.filters.clear()
    access.propagate = False
    try:
        assert direct_json_handler(access) is None
    finally:
        access.propagate = True


def test_batched_lines_wait_at_most_until_the_next_unbatched_line() -> None:
    stream = io.StringIO()
    handler = KitHandler(stream)
    try:
        handler.write_batched("a\n")
        handler.write_batched("b\n")
        assert stream.getvalue() == ""
        handler.emit(logging.makeLogRecord({"msg": "c"}))
        assert stream.getvalue() == "a\nb\nc\n"
        handler.write_batched("x" * 5000 + "\n")  # longer than a batch: alone
        handler.write_batched("d\n")
        handler.flush()
        assert stream.getvalue().splitlines()[3:] == ["x" * 5000, "d"]
    finally:
        handler.close()


@pytest.mark.usefixtures("restore_logging")
def test_reconfiguring_after_logging_closed_our_handler(monkeypatch: pytest.MonkeyPatch) -> None:
    # dictConfig (servers call it) closes every handler; kit must still configure again.
    monkeypatch.setattr(sys, "stderr", io.StringIO())
    configure_logging("json", "info")
    logging.config.dictConfig({"version": 1, "disable_existing_loggers": False})
    configure_logging("json", "info")
    assert sum(isinstance(h, KitHandler) for h in logging.getLogger().handlers) == 1


def test_clock_formats_each_millisecond_and_moves_across_a_second_boundary() -> None:
    clock = _Clock()
    second = 1_767_225_599  # 2025-12-31T23:59:59Z, the next second is in another year
    assert clock.iso(second + 0.0) == "2025-12-31T23:59:59.000Z"
    assert clock.iso(second + 0.0421) == "2025-12-31T23:59:59.042Z"
    assert clock.iso(second + 0.9999) == "2025-12-31T23:59:59.999Z"
    assert clock.iso(second + 1.25) == "2026-01-01T00:00:00.250Z"
    assert clock.iso(second + 0.5) == "2025-12-31T23:59:59.500Z"  # back again: re-formatted


def test_batches_are_bounded_in_bytes_and_keep_the_order() -> None:
    stream = io.StringIO()
    handler = KitHandler(stream)
    writes: list[str] = []
    write = stream.write

    def counting_write(text: str) -> int:
        writes.append(text)
        return write(text)

    stream.write = counting_write  # type: ignore[method-assign]
    try:
        lines = [f"{i:03d} {'é' * 100}\n" for i in range(100)]  # 206 bytes, 105 characters
        for line in lines:
            handler.write_batched(line)
        handler.flush()
        assert stream.getvalue() == "".join(lines)
        assert all(len(text.encode()) <= PIPE_BUF for text in writes)
        assert len(writes) == -(-len("".join(lines).encode()) // PIPE_BUF)  # full batches
    finally:
        handler.close()
