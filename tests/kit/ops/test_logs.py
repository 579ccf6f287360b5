"""kit.logs: JSON and text formatters, the request id on every record, idempotent setup."""

from __future__ import annotations

import io
import json
import logging
import sys
from collections.abc import Iterator

import pytest

from kit.logs import JSONFormatter, KitHandler, TextFormatter, configure_logging
from kit.middleware.request_id import REQUEST_ID


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
