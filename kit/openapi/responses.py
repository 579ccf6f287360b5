"""The responses of an operation: success from the return annotation, kit's errors, extras."""

from __future__ import annotations

import types
import typing
from http import HTTPStatus
from typing import Any

from starlette.responses import Response

from kit.openapi.schemas import HTTPError, HTTPValidationError, SchemaSet
from kit.params import unwrap_annotated
from kit.routing import APIRoute

_NO_CONTENT = frozenset({204, 304})


def describe_responses(route: APIRoute, schemas: SchemaSet, *, validates: bool) -> dict[str, Any]:
    responses: dict[str, Any] = {}
    success: dict[str, Any] = {"description": route.response_description}
    content = _success_content(route, schemas)
    if content is not None and route.status_code not in _NO_CONTENT:
        success["content"] = content
    responses[str(route.status_code)] = success
    if validates:
        responses["422"] = _error_response(HTTPValidationError, "Validation Error", schemas)
    if route.body_param is not None:
        responses["413"] = _error_response(HTTPError, "Content Too Large", schemas)
        responses["415"] = _error_response(HTTPError, "Unsupported Media Type", schemas)
    for status, extra in route.responses.items():
        responses[str(status)] = _merge_response(responses.get(str(status)), status, extra, schemas)
    return dict(sorted(responses.items()))


def _error_response(model: type, description: str, schemas: SchemaSet) -> dict[str, Any]:
    content = {"application/json": {"schema": schemas.slot(model)}}
    return {"description": description, "content": content}


def _success_content(route: APIRoute, schemas: SchemaSet) -> dict[str, Any] | None:
    """What a successful call returns, from ``response_class`` and the return annotation."""
    annotation = route.response_type
    response_class = route.response_class
    if response_class is None:
        response_class, annotation = _split_response(annotation)
    media_type = "application/json"
    if response_class is not None:
        if response_class.media_type is None:
            return None
        media_type = response_class.media_type
        if not _is_json(media_type):
            return {media_type: {"schema": {"type": "string"}}}
        if _response_type(annotation) is not None:
            annotation = None
    if annotation is None:  # not annotated: any JSON value, as FastAPI documents it
        return {media_type: {"schema": {}}}
    return {media_type: {"schema": schemas.slot(annotation)}}


def _response_type(annotation: Any) -> type[Response] | None:
    base, _ = unwrap_annotated(annotation)
    if isinstance(base, type) and issubclass(base, Response):
        return base
    return None


def _split_response(annotation: Any) -> tuple[type[Response] | None, Any]:
    """``-> HTMLResponse`` names the response class; in ``-> Item | Response`` the data wins."""
    if annotation is None:
        return None, None
    response_type = _response_type(annotation)
    if response_type is not None:
        return response_type, None
    args = typing.get_args(annotation) if _is_union(annotation) else ()
    data = [arg for arg in args if _response_type(arg) is None]
    if args and len(data) < len(args):
        if not data:
            return Response, None
        return None, data[0] if len(data) == 1 else typing.Union[tuple(data)]  # noqa: UP007
    return None, annotation


def _is_union(annotation: Any) -> bool:
    return typing.get_origin(annotation) in (typing.Union, types.UnionType)


def _is_json(media_type: str) -> bool:
    media_type = media_type.split(";", 1)[0].strip().lower()
    return media_type == "application/json" or media_type.endswith("+json")


def _merge_response(
    current: dict[str, Any] | None, status: int | str, extra: Any, schemas: SchemaSet
) -> dict[str, Any]:
    """A ``responses={status: ...}`` entry: a description, a type, or a dict with description,
    model, content, headers. An error status with no body given has kit's ``{"detail": ...}``.
    """
    response = dict(current or {})
    if isinstance(extra, str):
        extra = {"description": extra}
    elif not isinstance(extra, dict):
        extra = {"model": extra}
    model = extra.get("model")
    bodiless = model is None and "content" not in extra and "content" not in response
    if bodiless and _is_error(status):
        response["content"] = {"application/json": {"schema": schemas.slot(HTTPError)}}
    if model is not None:
        content = dict(response.get("content") or {})
        content["application/json"] = {"schema": schemas.slot(model)}
        response["content"] = content
    if "content" in extra:
        response["content"] = {**response.get("content", {}), **extra["content"]}
    for key in ("description", "headers", "links"):
        if key in extra:
            response[key] = extra[key]
    if "description" not in response:
        response["description"] = _phrase(status)
    return response


def _is_error(status: int | str) -> bool:
    text = str(status)
    return text[:1] in ("4", "5") or text == "default"


def _phrase(status: int | str) -> str:
    try:
        return HTTPStatus(int(status)).phrase
    except ValueError:
        return "Response" if status != "default" else "Default Response"
