"""The ASGI servers kit runs on, one adapter module each, chosen by ``KIT_RUNTIME``."""

from runtimes.base import Launch, Runtime, RuntimeUnavailable
from runtimes.registry import PACKAGES, RUNTIMES, load_runtime

__all__ = ["PACKAGES", "RUNTIMES", "Launch", "Runtime", "RuntimeUnavailable", "load_runtime"]
