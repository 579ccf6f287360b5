"""Runtimes by name, imported only when chosen (the uvicorn model for implementations).

``TABLE`` is the one list of runtimes: kit's settings and logs, the bench, the tests and tox
read it from here (tests/runtimes/test_registry.py holds it equal to the adapters' own ``name``
and ``package``, to pyproject's extras and to tox.toml's factors).
"""

from __future__ import annotations

from dataclasses import dataclass
from importlib.util import find_spec

from runtimes.base import Runtime, RuntimeUnavailable
from runtimes.imports import ImportFromStringError, import_from_string


@dataclass(frozen=True)
class Entry:
    name: str  # the KIT_RUNTIME value, the adapter's ``name`` and kit's extra of that name
    adapter: str  # module:attr of the Runtime subclass, imported only when chosen
    package: str  # the server's import package, which the extra installs
    loggers: tuple[str, ...] = ()  # the server's own loggers, which kit's logging takes over


TABLE: tuple[Entry, ...] = (
    Entry("uvicorn", "runtimes.uvicorn:UvicornRuntime", "uvicorn", ("uvicorn", "uvicorn.error")),
    Entry("granian", "runtimes.granian:GranianRuntime", "granian", ("granian", "_granian")),
    Entry("hypercorn", "runtimes.hypercorn:HypercornRuntime", "hypercorn", ("hypercorn.error",)),
    Entry("gunicorn", "runtimes.gunicorn:GunicornRuntime", "gunicorn"),  # uvicorn's workers
)
NAMES: tuple[str, ...] = tuple(entry.name for entry in TABLE)
RUNTIMES: dict[str, str] = {entry.name: entry.adapter for entry in TABLE}
PACKAGES: dict[str, str] = {entry.name: entry.package for entry in TABLE}
SERVER_LOGGERS: tuple[str, ...] = tuple(name for entry in TABLE for name in entry.loggers)
# KIT_RUNTIME's default is the first of these that is installed; reports list runtimes in
# this order, then the rest of the table.
PREFERRED: tuple[str, ...] = ("granian", "uvicorn")
BY_PREFERENCE: tuple[str, ...] = (*PREFERRED, *(n for n in NAMES if n not in PREFERRED))


def installed(name: str) -> bool:
    """Whether the server package of the built-in runtime ``name`` can be imported here."""
    return find_spec(PACKAGES[name]) is not None


def default_name() -> str:
    """KIT_RUNTIME's default: the first of PREFERRED that is installed, else the last of them
    (whose missing package the error then names)."""
    return next((name for name in PREFERRED if installed(name)), PREFERRED[-1])


def load_runtime(name: str) -> Runtime:
    """The adapter for ``name``: a key of RUNTIMES or a custom ``module:attr``."""
    try:
        factory = import_from_string(RUNTIMES.get(name, name))
    except ImportFromStringError as exc:
        if exc.reason == "format":
            allowed = ", ".join(RUNTIMES)
            raise RuntimeUnavailable(
                f"KIT_RUNTIME={name!r} is not allowed; use one of {allowed} or module:attr"
            ) from None
        raise RuntimeUnavailable(f"KIT_RUNTIME={name!r}: {exc}") from None
    except ModuleNotFoundError as exc:
        package = PACKAGES.get(name)
        if package and (exc.name or "").partition(".")[0] == package:
            raise RuntimeUnavailable(
                f"KIT_RUNTIME={name} needs the {package} package: pip install 'kit-asgi[{name}]'"
            ) from None
        raise
    runtime = factory()
    if not isinstance(runtime, Runtime):
        raise RuntimeUnavailable(
            f"KIT_RUNTIME={name!r} is not a runtimes.base.Runtime subclass (got {factory!r})"
        )
    return runtime
