"""The free-threading decisions, as pure functions: no free-threaded interpreter needed."""

from __future__ import annotations

import sys
import sysconfig

import pytest

from runtimes.gil import describe_gil, free_threaded_build, gil_enabled, gil_refusal, thread_workers


def test_this_interpreter_is_detected_consistently() -> None:
    assert free_threaded_build() == bool(sysconfig.get_config_var("Py_GIL_DISABLED"))
    if not free_threaded_build():
        assert gil_enabled()  # a default build cannot turn the GIL off
    check = getattr(sys, "_is_gil_enabled", None)
    assert gil_enabled() == (True if check is None else check())


@pytest.mark.parametrize(
    ("free_threaded", "gil_on", "allow_gil", "refused"),
    [
        (False, True, False, False),  # a default build always has the GIL: nothing to refuse
        (False, True, True, False),
        (True, False, False, False),  # free-threaded and the GIL stayed off
        (True, True, False, True),  # an extension re-enabled it: refuse
        (True, True, True, False),  # ...unless KIT_ALLOW_GIL=1 / --allow-gil
    ],
)
def test_gil_refusal(free_threaded: bool, gil_on: bool, allow_gil: bool, refused: bool) -> None:
    message = gil_refusal(free_threaded=free_threaded, gil_on=gil_on, allow_gil=allow_gil)
    assert (message is not None) == refused
    if message:
        assert "KIT_ALLOW_GIL=1" in message
        assert "--allow-gil" in message
        assert "\n" not in message


@pytest.mark.parametrize(
    ("free_threaded", "gil_on", "supports", "threads"),
    [
        (True, False, True, True),  # only here do threads run Python in parallel
        (True, False, False, False),  # uvicorn/hypercorn: processes even on free-threaded
        (True, True, True, False),  # GIL back on (allowed): threads would serialise
        (False, True, True, False),
        (False, True, False, False),
    ],
)
def test_thread_workers(free_threaded: bool, gil_on: bool, supports: bool, threads: bool) -> None:
    decided = thread_workers(
        free_threaded=free_threaded, gil_on=gil_on, server_supports_threads=supports
    )
    assert decided == threads


def test_describe_gil() -> None:
    assert describe_gil(True) == "GIL on"
    assert describe_gil(False) == "GIL off"
