"""The OpenAPI 3.1 document of an app, built from its typed routes."""

from __future__ import annotations

import re
from collections.abc import Iterator, Sequence
from typing import TYPE_CHECKING, Any

import msgspec
from starlette.routing import BaseRoute, Mount

from kit.forms import spec_for
from kit.openapi.parameters import describe_form_body, describe_parameters, describe_request_body
from kit.openapi.responses import describe_responses
from kit.openapi.schemas import SchemaSet
from kit.openapi.security import SecuritySchemes, describe_security
from kit.routing import APIRoute

if TYPE_CHECKING:
    from kit.app import App

OPENAPI_VERSION = "3.1.0"
METHODS = ("get", "put", "post", "delete", "options", "head", "patch", "trace")
_CONVERTER = re.compile(r"{([^:}]+):[^}]+}")
_PATH_PARAM = re.compile(r"{([^}]+)}")


def build_document(app: App) -> dict[str, Any]:
    """The whole document; call it once, after every route is registered."""
    schemas = SchemaSet()
    schemes = SecuritySchemes()
    paths: dict[str, dict[str, Any]] = {}
    operation_ids: set[str] = set()
    for path, route in api_routes(app.routes):
        item = paths.setdefault(path, {})
        for method in _methods(route):
            if method in item:  # an earlier route with the same path and method wins
                continue
            item[method] = _operation(route, path, method, schemas, operation_ids)
            describe_security(route, item[method], schemes, schemas)
    components = schemas.resolve()
    security_schemes = schemes.resolve()
    info: dict[str, Any] = {"title": app.title, "version": app.version}
    if app.description:
        info["description"] = app.description
    document: dict[str, Any] = {"openapi": OPENAPI_VERSION, "info": info}
    if app.servers:
        document["servers"] = [dict(server) for server in app.servers]
    document["paths"] = {path: item for path, item in paths.items() if item}
    if components or security_schemes:
        document["components"] = {}
        if components:
            document["components"]["schemas"] = components
        if security_schemes:
            document["components"]["securitySchemes"] = security_schemes
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
    parameters = describe_parameters(all_params, schemas)
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
        operation["requestBody"] = describe_request_body(body, schemas)
    form = spec_for(route.endpoint)
    if form is not None and form.fields:
        operation["requestBody"] = describe_form_body(form, schemas)
    validates = bool(all_params) or form is not None
    operation["responses"] = describe_responses(route, schemas, validates=validates)
    if route.deprecated:
        operation["deprecated"] = True
    return operation
