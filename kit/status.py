"""HTTP status codes by name (``status.HTTP_404_NOT_FOUND``): Starlette's, as FastAPI's are."""

from starlette.status import *  # noqa: F403
from starlette.status import __all__ as __all__
