"""The OpenAPI 3.1 document of an app, built from its typed routes."""

from __future__ import annotations

import re
import types
import typing
from collections.abc import Iterator, Sequence
from http import HTTPStatus
from typing import TYPE_CHECKING, Any

import msgspec
from starlette.responses import Response
from starlette.routing import BaseRoute, Mount

from kit.openapi.schemas import HTTPError, HTTPValidationError, SchemaSet
from kit.params import ParamInfo, is_sequence_of_scalars, unwrap_annotated
from kit.routing import APIRoute

if TYPE_CHECKING:
    from kit.app import App

OPENAPI_VERSION = "3.1.0"
METHODS = ("get", "put", "post", "delete", "options", "head", "patch", "trace")
_NO_CONTENT = frozenset({204, 304})
_NULL = {"type": "null"}
_CONVERTER = re.compile(r"{([^:}]+):[^}]+}")
_PATH_PARAM = re.compile(r"{([^}]+)}")


def build_document(app: App) -> dict[str, Any]:
    """The whole document; call it once, after every route is registered."""
    schemas = SchemaSet()
    paths: dict[str, dict[str, Any]] = {}
    operation_ids: set[str] = set()
    for path, route in api_routes(app.routes):
        item = paths.setdefault(path, {})
        for method in _methods(route):
            if method in item:  # an earlier route with the same path and method wins
                continue
            item[method] = _operation(route, path, method, schemas, operation_ids)
    components = schemas.resolve()
    info: dict[str, Any] = {"title": app.title, "version": app.version}
    if app.description:
        info["description"] = app.description
    document: dict[str, Any] = {"openapi": OPENAPI_VERSION, "info": info}
    if app.servers:
        document["servers"] = [dict(server) for server in app.servers]
    document["paths"] = {path: item for path, item in paths.items() if item}
    if components:
        document["components"] = {"schemas": components}
    if app.openapi_tags:
        document["tags"] = [dict(tag) for tag in app.openapi_tags]
    return document


def encode_document(document: dict[str, Any]) -> bytes:
    return msgspec.json.encode(document)


def api_routes(routes: Sequence[BaseRoute], prefix: str = "") -> Iterator[tuple[str, APIRoute]]:
    """Every documented typed route with its full path template, mounted routers included."""
    for route in routes:
        if isinstance(route, APIRoute):
            if route.include_in_schema:
                yield prefix + route.path_format, route
        elif isinstance(route, Mount):  # its path_format ends in "/{path}"; path is the prefix
            yield from api_routes(route.routes, prefix + _CONVERTER.sub(r"{\1}", route.path))


def _methods(route: APIRoute) -> list[str]:
    methods = {m.lower() for m in route.methods or ()}
    if "get" in methods:
        methods.discard("head")  # Starlette adds HEAD to every GET route
    return [m for m in METHODS if m in methods]


def operation_id(route: APIRoute, path: str, method: str, taken: set[str]) -> str:
    """FastAPI's scheme, ``{name}{path}_{method}`` with non-word characters as ``_``, unique."""
    if route.operation_id and len(_methods(route)) == 1:
        base = route.operation_id
    else:
        base = re.sub(r"\W", "_", f"{route.operation_id or route.name}{path}") + f"_{method}"
    candidate, n = base, 1
    while candidate in taken:
        n += 1
        candidate = f"{base}_{n}"
    taken.add(candidate)
    return candidate


def _operation(
    route: APIRoute, path: str, method: str, schemas: SchemaSet, taken: set[str]
) -> dict[str, Any]:
    operation: dict[str, Any] = {}
    if route.tags:
        operation["tags"] = list(dict.fromkeys(route.tags))
    operation["summary"] = route.summary or route.name.replace("_", " ").title()
    if route.description:
        operation["description"] = route.description
    operation["operationId"] = operation_id(route, path, method, taken)
    all_params = route.plan.all_params
    parameters = _parameters(all_params, schemas)
    declared = {p["name"] for p in parameters if p["in"] == "path"}
    for name in _PATH_PARAM.findall(path):
        if name not in declared:  # a Mount's own path parameter: the route never reads it
            parameters.append(
                {"name": name, "in": "path", "required": True, "schema": {"type": "string"}}
            )
    if parameters:
        operation["parameters"] = parameters
    body = route.body_param
    if body is not None and body.marker.include_in_schema:
        operation["requestBody"] = _request_body(body, schemas)
    operation["responses"] = _responses(route, schemas, validates=bool(all_params))
    if route.deprecated:
        operation["deprecated"] = True
    return operation


def _parameters(params: list[ParamInfo], schemas: SchemaSet) -> list[dict[str, Any]]:
    found: dict[tuple[str, str], dict[str, Any]] = {}
    for info in params:
        if info.location == "body" or not info.marker.include_in_schema:
            continue
        for parameter in _expand(info, schemas):
            found.setdefault((parameter["in"], parameter["name"]), parameter)
    return list(found.values())


def _expand(info: ParamInfo, schemas: SchemaSet) -> Iterator[dict[str, Any]]:
    marker = info.marker
    if not info.gathers:
        yield _parameter(
            info.alias,
            info.location,
            info.annotation,
            required=info.required or info.location == "path",
            default=info.default,
            schemas=schemas,
            description=marker.description,
            examples=marker.examples,
            deprecated=marker.deprecated,
        )
        return
    # A Struct gathering several values: one parameter per field, named as the extractor reads it.
    struct_type, _ = unwrap_annotated(info.annotation)
    for field in msgspec.structs.fields(struct_type):
        name = field.encode_name
        if info.location == "header":
            name = name.replace("_", "-").lower()
        default = field.default
        if default is msgspec.NODEFAULT and field.default_factory is not msgspec.NODEFAULT:
            default = field.default_factory()
        yield _parameter(
            name,
            info.location,
            field.type,
            required=field.required,
            default=None if default is msgspec.NODEFAULT else default,
            schemas=schemas,
            deprecated=marker.deprecated,
        )


def _parameter(
    name: str,
    location: str,
    annotation: Any,
    *,
    required: bool,
    default: Any,
    schemas: SchemaSet,
    description: str | None = None,
    examples: list[Any] | None = None,
    deprecated: bool = False,
) -> dict[str, Any]:
    extra: dict[str, Any] = {}
    if not required and default is not None:
        encoded = _encodable(default)
        if encoded is not None:
            extra["default"] = encoded
    if examples:
        extra["examples"] = examples

    def finish(schema: dict[str, Any]) -> dict[str, Any]:
        # An absent parameter is how a client sends None; "null" cannot be written in a URL.
        return {**_without_null(schema), **extra}

    parameter: dict[str, Any] = {"name": name, "in": location, "required": required}
    if description:
        parameter["description"] = description
    if deprecated:
        parameter["deprecated"] = True
    parameter["schema"] = schemas.slot(annotation, finish)
    if location in ("query", "header") and is_sequence_of_scalars(annotation):
        parameter["style"] = "form" if location == "query" else "simple"
        parameter["explode"] = location == "query"
    return parameter


def _encodable(value: Any) -> Any:
    try:
        return msgspec.to_builtins(value)
    except (TypeError, msgspec.EncodeError):
        return None


def _without_null(schema: dict[str, Any]) -> dict[str, Any]:
    options = schema.get("anyOf")
    if not isinstance(options, list) or _NULL not in options:
        return schema
    rest = [option for option in options if option != _NULL]
    stripped = {key: value for key, value in schema.items() if key != "anyOf"}
    if len(rest) == 1:
        return {**rest[0], **stripped}
    return {**stripped, "anyOf": rest}


def _request_body(body: ParamInfo, schemas: SchemaSet) -> dict[str, Any]:
    marker = body.marker
    examples = marker.examples

    def finish(schema: dict[str, Any]) -> dict[str, Any]:
        return {**schema, "examples": examples} if examples else schema

    media_type = getattr(marker, "media_type", "application/json")
    request_body: dict[str, Any] = {}
    if marker.description:
        request_body["description"] = marker.description
    request_body["content"] = {media_type: {"schema": schemas.slot(body.annotation, finish)}}
    request_body["required"] = body.required
    return request_body


def _responses(route: APIRoute, schemas: SchemaSet, *, validates: bool) -> dict[str, Any]:
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
    annotation = route.return_annotation
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
