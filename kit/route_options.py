"""What a route declares besides its path, methods and handler: ``RouteOptions``, and the
decorators' keywords (``RouteKeywords``) that a test keeps field for field the same."""

from __future__ import annotations

import dataclasses
from collections.abc import Mapping, Sequence
from typing import Any, TypedDict

from starlette.responses import Response

from kit.di import Depends


class _Unset:
    """``response_model`` not given: the return annotation decides (None means "none")."""

    def __repr__(self) -> str:
        return "UNSET"


UNSET: Any = _Unset()


@dataclasses.dataclass(frozen=True)
class RouteOptions:
    """Everything a route declares besides its path, methods and handler.

    The decorators' keywords (``app.get(path, status_code=201, tags=[...])``) become one of
    these; ``include_router`` copies it with the including router's tags and dependencies.
    """

    status_code: int | None = None
    name: str | None = None
    include_in_schema: bool = True
    tags: Sequence[str] = ()
    summary: str | None = None
    description: str | None = None
    deprecated: bool = False
    operation_id: str | None = None
    response_description: str = "Successful Response"
    responses: Mapping[int, Any] | None = None
    dependencies: Sequence[Depends] = ()
    # resolved before the body is read; a failure answers without touching the body
    guards: Sequence[Depends] = ()
    max_body_size: int | None = None
    response_class: type[Response] | None = None
    # the type a returned value is converted to, encoded as and documented as; None: none
    response_model: Any = UNSET

    @classmethod
    def from_keywords(cls, keywords: Mapping[str, Any]) -> RouteOptions:
        """The decorators' keywords; None means "not given", except for ``response_model``."""
        given = {k: v for k, v in keywords.items() if v is not None or k == "response_model"}
        return cls(**given)

    def including(
        self, *, tags: Sequence[str] = (), dependencies: Sequence[Depends] = ()
    ) -> RouteOptions:
        """These options under a router: its tags after ours, its dependencies before ours."""
        return dataclasses.replace(
            self,
            tags=(*self.tags, *tags),
            dependencies=(*dependencies, *self.dependencies),
        )


class RouteKeywords(TypedDict, total=False):
    """The keywords of ``get``, ``post``, ``put``, ``patch``, ``delete`` and ``api_route``:
    ``RouteOptions``' fields, typed so that editors complete them and mypy checks them.

    - ``status_code``: the status of a returned value (default 200; 204 sends no body)
    - ``tags``, ``summary``, ``description``, ``deprecated``, ``operation_id``,
      ``response_description``: how /docs shows the operation (summary and description
      default to the handler's docstring: first paragraph, then the rest)
    - ``responses``: other answers to document, ``{404: "Not found"}``, ``{409: Model}`` or
      ``{201: {"description": ..., "headers": {...}}}``
    - ``dependencies``: ``Depends`` run for their effect (auth, rate limits), values unused
    - ``guards``: ``Depends`` run before the body is read; a failure answers at once
    - ``max_body_size``: bytes of body accepted (413 above; default ``App(max_body_size=)``)
    - ``response_class``: a Starlette ``Response`` class that renders the returned value
    - ``response_model``: the type the returned value is converted to (extra fields dropped),
      encoded as and documented as, instead of the return annotation; None documents no schema
    - ``name``: for ``url_path_for`` (default: the handler's name);
      ``include_in_schema=False`` leaves the route out of /openapi.json
    """

    status_code: int
    name: str
    include_in_schema: bool
    tags: Sequence[str]
    summary: str
    description: str
    deprecated: bool
    operation_id: str
    response_description: str
    responses: Mapping[int, Any]
    dependencies: Sequence[Depends]
    guards: Sequence[Depends]
    max_body_size: int
    response_class: type[Response]
    response_model: Any
