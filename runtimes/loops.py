"""``KIT_LOOP``: ``auto`` picks uvloop when it imports, else asyncio."""

from __future__ import annotations

from runtimes.base import RuntimeUnavailable


def uvloop_available() -> bool:
    try:
        import uvloop  # noqa: F401
    except ImportError:
        return False
    return True


def resolve_loop(requested: str, *, uvloop_installed: bool | None = None) -> str:
    """``auto`` | ``uvloop`` | ``asyncio`` -> the loop that will actually run."""
    if requested == "asyncio":
        return "asyncio"
    installed = uvloop_available() if uvloop_installed is None else uvloop_installed
    if installed:
        return "uvloop"
    if requested == "uvloop":
        raise RuntimeUnavailable("KIT_LOOP=uvloop needs the uvloop package: pip install uvloop")
    return "asyncio"
