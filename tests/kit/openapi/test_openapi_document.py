"""The document of the feature app: every construct described, valid OpenAPI 3.1, built once."""

from __future__ import annotations

from typing import Annotated, Any

import msgspec
import pytest
from openapi_spec_validator import validate
from starlette.routing import Mount
from starlette.testclient import TestClient

from kit import APIRoute, App, ErrorItem, Router, Settings
from kit.openapi import build_document
from kit.openapi.schemas import ValidationError
from tests.kit.openapi.app import app as feature_app

SCHEMAS = "#/components/schemas/"


@pytest.fixture(scope="module")
def document() -> dict[str, Any]:
    return build_document(feature_app)


def op(document: dict[str, Any], path: str, method: str = "get") -> dict[str, Any]:
    operation: dict[str, Any] = document["paths"][path][method]
    return operation


def params(operation: dict[str, Any]) -> dict[tuple[str, str], dict[str, Any]]:
    return {(p["in"], p["name"]): p for p in operation.get("parameters", [])}


def component(document: dict[str, Any], name: str) -> dict[str, Any]:
    schema: dict[str, Any] = document["components"]["schemas"][name]
    return schema


def test_document_is_valid_openapi_31(document: dict[str, Any]) -> None:
    validate(document)
    assert document["openapi"] == "3.1.0"
    assert document["info"] == {
        "title": "OpenAPI feature test",
        "version": "2.3.4",
        "description": "Every feature the document generator covers.",
    }
    assert document["servers"] == [{"url": "/", "description": "this server"}]
    assert document["tags"] == [{"name": "items", "description": "Things for sale"}]


def test_every_typed_route_is_listed_once_and_nothing_else(document: dict[str, Any]) -> None:
    listed = {(path, method) for path, item in document["paths"].items() for method in item}
    assert listed == {
        ("/items/{item_id}", "get"),
        ("/items/{item_id}", "delete"),
        ("/items", "get"),
        ("/items", "post"),
        ("/message", "get"),
        ("/categories", "put"),
        ("/pets", "post"),
        ("/plain", "get"),
        ("/page", "get"),
        ("/old", "get"),
        ("/echo", "get"),
        ("/echo", "post"),
        ("/no-annotation", "get"),
    }  # no /hidden, no HEAD, no /openapi.json, /docs, /healthz


def test_operation_ids_are_fastapi_style_and_unique(document: dict[str, Any]) -> None:
    ids = [o["operationId"] for item in document["paths"].values() for o in item.values()]
    assert len(ids) == len(set(ids))
    assert op(document, "/items/{item_id}")["operationId"] == "read_item_items__item_id__get"
    assert op(document, "/echo", "post")["operationId"] == "echo_echo_post"
    assert op(document, "/message")["operationId"] == "get_message"  # given explicitly


def test_same_name_twice_gets_a_unique_id() -> None:
    app = App(settings=Settings(docs=False))

    async def handler() -> None: ...

    app.add_api_route("/a", handler, operation_id="dup")
    app.add_api_route("/b", handler, operation_id="dup")
    document = build_document(app)
    assert [document["paths"][p]["get"]["operationId"] for p in ("/a", "/b")] == ["dup", "dup_2"]


def test_summary_description_tags_deprecated(document: dict[str, Any]) -> None:
    read = op(document, "/items/{item_id}")
    assert read["summary"] == "Read one item."
    assert read["description"] == "Returns the stored item, or 404."
    assert read["tags"] == ["items"]
    assert op(document, "/items", "post")["summary"] == "Create Item"  # from the name
    assert op(document, "/old")["deprecated"] is True
    assert "deprecated" not in read


def test_path_query_header_cookie_parameters(document: dict[str, Any]) -> None:
    read = params(op(document, "/items/{item_id}"))
    assert read["path", "item_id"] == {
        "name": "item_id",
        "in": "path",
        "required": True,
        "description": "the item's id",
        "schema": {"type": "integer", "minimum": 1},
    }
    assert read["query", "verbose"]["schema"] == {"type": "boolean", "default": False}
    # a dependency's header parameter belongs to the operation; None is "absent", not "null"
    assert read["header", "x-api-key"] == {
        "name": "x-api-key",
        "in": "header",
        "required": False,
        "schema": {"type": "string"},
    }
    message = params(op(document, "/message"))
    assert message["header", "accept-language"]["schema"] == {"type": "string", "default": "en"}
    assert message["cookie", "session"]["description"] == "session id"


def test_gathered_struct_lists_aliases_and_constraints(document: dict[str, Any]) -> None:
    listed = params(op(document, "/items"))
    assert list(listed) == [
        ("query", "offset"),
        ("query", "limit"),
        ("query", "color"),
        ("query", "q"),
        ("query", "max_price"),
    ]
    assert listed["query", "max_price"]["schema"] == {"type": "number", "minimum": 0}
    assert listed["query", "limit"]["schema"] == {
        "type": "integer",
        "minimum": 1,
        "maximum": 100,
        "default": 10,
    }
    assert listed["query", "color"]["schema"] == {
        "type": "array",
        "items": {"$ref": SCHEMAS + "Color"},
    }
    assert listed["query", "color"]["explode"] is True
    assert listed["query", "q"]["schema"] == {
        "type": "string",
        "maxLength": 20,
        "examples": ["lamp"],
    }
    assert params(op(document, "/old"))["query", "kind"]["schema"] == {
        "enum": ["a", "b"],
        "default": "a",
    }


def test_request_bodies(document: dict[str, Any]) -> None:
    create = op(document, "/items", "post")["requestBody"]
    assert create == {
        "content": {"application/json": {"schema": {"$ref": SCHEMAS + "Item"}}},
        "required": True,
    }
    assert op(document, "/categories", "put")["requestBody"]["description"] == (
        "a tree of categories"
    )
    assert "requestBody" not in op(document, "/echo", "post")


def test_struct_schemas_keep_constraints_renames_enums_and_optionals(
    document: dict[str, Any],
) -> None:
    item = component(document, "Item")
    assert item["description"] == "An item for sale."
    assert item["required"] == ["name", "price"]
    assert item["properties"]["name"] == {
        "description": "display name",
        "type": "string",
        "minLength": 1,
        "maxLength": 50,
    }
    assert item["properties"]["price"] == {"type": "number", "minimum": 0, "maximum": 1_000_000}
    assert item["properties"]["tags"]["maxItems"] == 5
    assert item["properties"]["color"] == {"$ref": SCHEMAS + "Color", "default": "red"}
    assert item["properties"]["address"]["anyOf"] == [
        {"$ref": SCHEMAS + "Address"},
        {"type": "null"},
    ]
    assert component(document, "Color")["enum"] == ["green", "red"]
    address = component(document, "Address")
    assert address["required"] == ["streetName", "zipCode"]  # rename="camel"
    assert address["properties"]["zipCode"]["pattern"] == "^[0-9]{5}$"


def test_recursive_struct_refers_to_itself(document: dict[str, Any]) -> None:
    children = component(document, "Category")["properties"]["children"]
    assert children["items"] == {"$ref": SCHEMAS + "Category"}


def test_tagged_union_has_a_discriminator(document: dict[str, Any]) -> None:
    body = op(document, "/pets", "post")["requestBody"]["content"]["application/json"]["schema"]
    assert body["discriminator"] == {
        "propertyName": "type",
        "mapping": {"cat": SCHEMAS + "Cat", "dog": SCHEMAS + "Dog"},
    }
    assert component(document, "Cat")["properties"]["type"] == {"enum": ["cat"]}


def test_responses_by_annotation_status_and_class(document: dict[str, Any]) -> None:
    def content(path: str, method: str = "get", status: str = "200") -> Any:
        return op(document, path, method)["responses"][status].get("content")

    assert content("/items", "post", "201") == {
        "application/json": {"schema": {"$ref": SCHEMAS + "StoredItem"}}
    }
    assert content("/items")["application/json"]["schema"]["type"] == "array"
    assert content("/plain") == {"text/plain": {"schema": {"type": "string"}}}
    assert content("/page") == {"text/html": {"schema": {"type": "string"}}}
    assert content("/no-annotation") == {"application/json": {"schema": {}}}
    deleted = op(document, "/items/{item_id}", "delete")["responses"]
    assert deleted["204"] == {"description": "Successful Response"}  # no content
    # responses={...} adds documented statuses
    assert op(document, "/items/{item_id}")["responses"]["404"] == {
        "description": "No such item",
        "content": {"application/json": {"schema": {"$ref": SCHEMAS + "NotFound"}}},
    }
    # an error status given only a description answers kit's {"detail": ...}
    assert op(document, "/items", "post")["responses"]["409"] == {
        "description": "Duplicate name",
        "content": {"application/json": {"schema": {"$ref": SCHEMAS + "HTTPError"}}},
    }


def test_responses_shorthands() -> None:
    app = App(settings=Settings(docs=False))

    @app.get("/x", responses={404: "Not here", 202: Pong, "default": {"description": "Other"}})
    async def x() -> None: ...

    responses = build_document(app)["paths"]["/x"]["get"]["responses"]
    error = {"application/json": {"schema": {"$ref": SCHEMAS + "HTTPError"}}}
    assert responses["404"] == {"description": "Not here", "content": error}
    assert responses["202"] == {
        "content": {"application/json": {"schema": {"$ref": SCHEMAS + "Pong"}}},
        "description": "Accepted",
    }
    assert responses["default"] == {"description": "Other", "content": error}
    assert responses["200"] == {
        "description": "Successful Response",
        "content": {"application/json": {"schema": {"type": "null"}}},
    }


def test_errors_422_413_415_where_they_apply(document: dict[str, Any]) -> None:
    validation = {"application/json": {"schema": {"$ref": SCHEMAS + "HTTPValidationError"}}}
    too_large = {"application/json": {"schema": {"$ref": SCHEMAS + "HTTPError"}}}
    create = op(document, "/items", "post")["responses"]
    assert create["422"]["content"] == validation
    assert create["413"]["content"] == create["415"]["content"] == too_large
    read = op(document, "/items/{item_id}")["responses"]
    assert read["422"]["content"] == validation
    assert "413" not in read
    assert "415" not in read
    assert set(op(document, "/plain")["responses"]) == {"200"}  # nothing to validate
    detail = component(document, "HTTPValidationError")["properties"]["detail"]
    assert detail["items"] == {"$ref": SCHEMAS + "ValidationError"}


def test_validation_error_schema_mirrors_error_item() -> None:
    ours = msgspec.structs.fields(ValidationError)
    theirs = msgspec.structs.fields(ErrorItem)
    assert [(f.encode_name, f.required) for f in ours] == [
        (f.encode_name, f.required) for f in theirs
    ]


def test_error_schemas_keep_apart_from_user_types_of_the_same_name() -> None:
    app = App(settings=Settings(docs=False))

    @app.post("/check")
    async def check(body: UserValidationError) -> UserValidationError:
        return body

    document = build_document(app)
    validate(document)
    operation = document["paths"]["/check"]["post"]
    ours = operation["responses"]["422"]["content"]["application/json"]["schema"]["$ref"]
    theirs = operation["requestBody"]["content"]["application/json"]["schema"]["$ref"]
    assert ours != theirs
    schemas = document["components"]["schemas"]
    assert "field" in schemas[theirs.rsplit("/", 1)[1]]["properties"]
    assert "detail" in schemas[ours.rsplit("/", 1)[1]]["properties"]


def test_422_body_of_a_real_request_matches_its_schema(document: dict[str, Any]) -> None:
    client = TestClient(feature_app)
    response = client.post("/items", json={"name": "", "price": -1})
    assert response.status_code == 422
    required = set(component(document, "ValidationError")["required"])
    for item in response.json()["detail"]:
        assert required <= set(item)
        assert all(isinstance(part, (str, int)) for part in item["loc"])


def test_mounted_and_included_routers_carry_prefixes() -> None:
    app = App(settings=Settings(docs=False))
    inner = Router(prefix="/inner", tags=["inner"])

    @inner.get("/{name:str}")
    async def greet(name: Annotated[str, msgspec.Meta(max_length=5)]) -> str:
        return name

    app.include_router(inner, prefix="/v1")

    async def legacy(n: int) -> Pong:
        return Pong(n > 0)

    mount = Mount("/old/{v:int}", routes=[APIRoute("/ping/{n:int}", legacy)])
    app.router.routes.append(mount)
    document = build_document(app)
    assert (
        document["paths"]["/old/{v}/ping/{n}"]["get"]["operationId"]
        == "legacy_old__v__ping__n__get"
    )
    operation = document["paths"]["/v1/inner/{name}"]["get"]  # the converter is not in the path
    assert operation["tags"] == ["inner"]
    assert operation["parameters"][0]["schema"] == {"type": "string", "maxLength": 5}
    validate(document)


class HTTPValidationError(msgspec.Struct):
    """A user type that happens to have the name of kit's 422 schema."""

    field: str


UserValidationError = HTTPValidationError


class Pong(msgspec.Struct):
    pong: bool


class Opaque:
    """Not a type msgspec knows how to describe."""


def test_a_type_msgspec_cannot_describe_is_any_value() -> None:
    app = App(settings=Settings(docs=False))

    @app.get("/opaque")
    async def opaque() -> Opaque:
        return Opaque()

    document = build_document(app)
    schema = document["paths"]["/opaque"]["get"]["responses"]["200"]["content"]
    assert schema == {"application/json": {"schema": {"title": "Opaque"}}}
    validate(document)


def test_empty_app_is_a_valid_document() -> None:
    document = build_document(App(settings=Settings(docs=False)))
    assert document["paths"] == {}
    assert "components" not in document
    validate(document)
