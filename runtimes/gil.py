"""Free-threaded builds: detect them and decide how workers run, as pure functions."""

from __future__ import annotations

import sys
import sysconfig


def free_threaded_build() -> bool:
    return bool(sysconfig.get_config_var("Py_GIL_DISABLED"))


def gil_enabled() -> bool:
    # Before 3.13 there is no way to turn the GIL off, so it is always on.
    check = getattr(sys, "_is_gil_enabled", None)
    return True if check is None else bool(check())


def gil_refusal(*, free_threaded: bool, gil_on: bool, allow_gil: bool) -> str | None:
    """Why a free-threaded build must not start, or None.

    On a free-threaded build the GIL comes back when an imported extension does not declare
    free-threading support (or PYTHON_GIL=1); the service would then silently run serialised.
    """
    if free_threaded and gil_on and not allow_gil:
        return (
            "this free-threaded Python runs with the GIL enabled (an imported extension "
            "re-enabled it, or PYTHON_GIL=1); set KIT_ALLOW_GIL=1 or pass --allow-gil to "
            "run anyway, or PYTHON_GIL=0 to force it off"
        )
    return None


def thread_workers(*, free_threaded: bool, gil_on: bool, server_supports_threads: bool) -> bool:
    """Workers are threads only when they can run Python in parallel and the server can."""
    return free_threaded and not gil_on and server_supports_threads


def describe_gil(gil_on: bool) -> str:
    return "GIL on" if gil_on else "GIL off"
