"""``module:attr`` strings to objects: the one loader for apps, runtimes, commands and migrations.

It lives in runtimes/ because runtimes must import nothing from kit; kit imports it from here.
"""

from __future__ import annotations

from importlib import import_module
from typing import Any


class ImportFromStringError(ImportError):
    """The string is malformed, its module does not exist, or the module lacks the attribute.

    The message is one line without the string itself, so callers can prefix what it names
    ("cannot import APP 'x': ..."). An ImportError raised *inside* an existing module is not
    this: it propagates with its traceback.
    """

    def __init__(self, message: str, reason: str) -> None:
        super().__init__(message)
        self.reason = reason  # "format", "module" or "attribute"


def import_from_string(path: str) -> Any:
    """The object ``path`` names: ``package.module:attr``, where attr may be dotted."""
    module_name, _, attr = path.partition(":")
    if not module_name or not attr:
        raise ImportFromStringError("must be module:attr", "format")
    try:
        target: Any = import_module(module_name)
    except ModuleNotFoundError as exc:
        missing = exc.name or ""
        if (module_name + ".").startswith(missing + "."):
            raise ImportFromStringError(f"no module named {missing!r}", "module") from None
        raise
    for part in attr.split("."):
        if not hasattr(target, part):
            raise ImportFromStringError(
                f"{module_name!r} has no attribute {attr!r}", "attribute"
            ) from None
        target = getattr(target, part)
    return target
