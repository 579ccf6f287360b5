"""kit's ``module:attr`` loader; it lives in runtimes/ so that runtimes depend on nothing in kit."""

from runtimes.imports import ImportFromStringError, import_from_string

__all__ = ["ImportFromStringError", "import_from_string"]
