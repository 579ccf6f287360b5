"""Runtimes by name, imported only when chosen (the uvicorn model for implementations).

This is the one list of runtime names: kit's settings and bench's matrix read it from here.
"""

from __future__ import annotations

from runtimes.base import Runtime, RuntimeUnavailable
from runtimes.imports import ImportFromStringError, import_from_string

RUNTIMES: dict[str, str] = {
    "uvicorn": "runtimes.uvicorn:UvicornRuntime",
    "granian": "runtimes.granian:GranianRuntime",
    "hypercorn": "runtimes.hypercorn:HypercornRuntime",
    "gunicorn": "runtimes.gunicorn:GunicornRuntime",
}
NAMES: tuple[str, ...] = tuple(RUNTIMES)

# Each built-in runtime needs one server package; kit's extra of the same name installs it.
PACKAGES: dict[str, str] = {
    "uvicorn": "uvicorn",
    "granian": "granian",
    "hypercorn": "hypercorn",
    "gunicorn": "gunicorn",
}


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
