"""The parameters and request body of an operation, from a route's compiled plan."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import msgspec

from kit.forms import MULTIPART, URLENCODED, FormSpec
from kit.openapi.schemas import SchemaSet
from kit.params import ParamInfo, is_sequence_of_scalars, unwrap_annotated

_NULL = {"type": "null"}


def describe_parameters(params: list[ParamInfo], schemas: SchemaSet) -> list[dict[str, Any]]:
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


def describe_request_body(body: ParamInfo, schemas: SchemaSet) -> dict[str, Any]:
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


def describe_form_body(spec: FormSpec, schemas: SchemaSet) -> dict[str, Any]:
    """The request body of a handler with ``Form``/``File`` parameters, as FastAPI writes it."""
    properties: dict[str, Any] = {}
    required: list[str] = []
    for field in spec.fields:
        description = field.description

        def finish(schema: dict[str, Any], description: str | None = description) -> dict[str, Any]:
            return {**schema, "description": description} if description else schema

        if field.is_file:
            one = finish({"type": "string", "format": "binary"})
            properties[field.alias] = {"type": "array", "items": one} if field.many else one
        else:
            properties[field.alias] = schemas.slot(field.annotation, finish)
        if field.required:
            required.append(field.alias)
    schema: dict[str, Any] = {"type": "object", "properties": properties}
    if required:
        schema["required"] = required
    media_type = MULTIPART if spec.has_files else URLENCODED
    return {"content": {media_type: {"schema": schema}}, "required": bool(required)}
