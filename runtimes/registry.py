"""Runtimes by name, imported only when chosen (the uvicorn model for implementations)."""

from __future__ import annotations

from importlib import import_module

from runtimes.base import Runtime, RuntimeUnavailable

RUNTIMES: dict[str, str] = {
    "uvicorn": "runtimes.uvicorn:UvicornRuntime",
    "granian": "runtimes.granian:GranianRuntime",
    "hypercorn": "runtimes.hypercorn:HypercornRuntime",
}

# Each built-in runtime needs one server package; kit's extra of the same name installs it.
PACKAGES: dict[str, str] = {"uvicorn": "uvicorn", "granian": "granian", "hypercorn": "hypercorn"}


def load_runtime(name: str) -> Runtime:
    """The adapter for ``name``: a key of RUNTIMES or a custom ``module:attr``."""
    target = RUNTIMES.get(name, name)
    module_name, _, attr = target.partition(":")
    if not module_name or not attr:
        allowed = ", ".join(RUNTIMES)
        raise RuntimeUnavailable(
            f"KIT_RUNTIME={name!r} is not allowed; use one of {allowed} or module:attr"
        )
    try:
        module = import_module(module_name)
    except ModuleNotFoundError as exc:
        missing = exc.name or ""
        package = PACKAGES.get(name)
        if package and missing.partition(".")[0] == package:
            raise RuntimeUnavailable(
                f"KIT_RUNTIME={name} needs the {package} package: pip install 'kit[{name}]'"
            ) from None
        if name not in RUNTIMES and (module_name + ".").startswith(missing + "."):
            raise RuntimeUnavailable(f"KIT_RUNTIME={name!r}: no module named {missing!r}") from None
        raise
    factory = getattr(module, attr, None)
    if factory is None:
        raise RuntimeUnavailable(f"KIT_RUNTIME={name!r}: {module_name!r} has no attribute {attr!r}")
    runtime = factory()
    if not isinstance(runtime, Runtime):
        raise RuntimeUnavailable(
            f"KIT_RUNTIME={name!r} is not a runtimes.base.Runtime subclass (got {factory!r})"
        )
    return runtime
