"""The ASGI servers kit runs on, one adapter module each, chosen by ``KIT_RUNTIME``."""

from runtimes.base import Launch, Runtime, RuntimeUnavailable
from runtimes.registry import NAMES, PACKAGES, RUNTIMES, TABLE, load_runtime

__all__ = [
    "NAMES",
    "PACKAGES",
    "RUNTIMES",
    "TABLE",
    "Launch",
    "Runtime",
    "RuntimeUnavailable",
    "load_runtime",
]
