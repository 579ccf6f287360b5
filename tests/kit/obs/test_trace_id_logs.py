"""The trace id on log records, in both formats; absent when tracing is off."""

from __future__ import annotations

import json
import logging

from kit.ops.logs import TRACE_ID, JSONFormatter, TextFormatter

TID = "4bf92f3577b34da6a3ce929d0e0e4736"


def record() -> logging.LogRecord:
    return logging.getLogger("t").makeRecord("t", logging.INFO, __file__, 1, "hello", (), None)


def test_trace_id_in_json_and_text_lines() -> None:
    token = TRACE_ID.set(TID)
    try:
        traced = record()
    finally:
        TRACE_ID.reset(token)
    assert json.loads(JSONFormatter().format(traced))["trace_id"] == TID
    assert f"[trace {TID}] hello" in TextFormatter().format(traced)


def test_no_trace_id_when_none_is_set() -> None:
    plain = record()
    assert "trace_id" not in json.loads(JSONFormatter().format(plain))
    assert "trace" not in TextFormatter().format(plain)
