"""kit's document and FastAPI's, for the same handlers, describe the same API."""

from __future__ import annotations

from typing import Any

import pytest

from kit.openapi import build_document
from tests.kit.openapi.conftest import load_app

pytest.importorskip("fastapi", reason="the FastAPI peers need fastapi")

# kit service -> the same handlers written with FastAPI
PEERS = [
    ("services.bench.app:app", "bench.apps.fastapi:app"),
    ("services.bench.app:app", "bench.apps.fastapi_tuned:app"),
]
# The tuned peer returns Response objects, so FastAPI cannot describe its response bodies.
DESCRIBED_RESPONSES = PEERS[:1]
# JSON Schema keywords that carry the validation rules; titles and the like are presentation.
RULES = ("type", "minLength", "maxLength", "minimum", "maximum", "pattern", "maxItems", "enum")


def documents(kit_app: str, fastapi_app: str) -> tuple[dict[str, Any], dict[str, Any]]:
    return build_document(load_app(kit_app)), load_app(fastapi_app).openapi()


def operations(document: dict[str, Any]) -> dict[tuple[str, str], dict[str, Any]]:
    return {
        (path, method): operation
        for path, item in document["paths"].items()
        for method, operation in item.items()
    }


def resolve(document: dict[str, Any], schema: dict[str, Any]) -> dict[str, Any]:
    while "$ref" in schema:
        schema = document["components"]["schemas"][schema["$ref"].rsplit("/", 1)[1]]
    return schema


def rules(document: dict[str, Any], schema: dict[str, Any]) -> dict[str, Any]:
    """The validation rules of an object schema's properties, refs followed."""
    schema = resolve(document, schema)
    out: dict[str, Any] = {"required": sorted(schema.get("required", []))}
    for name, prop in schema.get("properties", {}).items():
        prop = resolve(document, prop)
        out[name] = {key: prop[key] for key in RULES if key in prop}
        if "items" in prop:
            items = resolve(document, prop["items"])
            nested = "properties" in items
            out[name]["items"] = (
                rules(document, items) if nested else {k: items[k] for k in RULES if k in items}
            )
    return out


@pytest.mark.parametrize(("kit_app", "fastapi_app"), PEERS)
def test_same_operations_and_operation_ids(kit_app: str, fastapi_app: str) -> None:
    kit, fastapi = documents(kit_app, fastapi_app)
    assert operations(kit).keys() == operations(fastapi).keys()
    for key, operation in operations(kit).items():
        assert operation["operationId"] == operations(fastapi)[key]["operationId"], key


@pytest.mark.parametrize(("kit_app", "fastapi_app"), PEERS)
def test_same_parameters(kit_app: str, fastapi_app: str) -> None:
    kit, fastapi = documents(kit_app, fastapi_app)
    for key, operation in operations(kit).items():
        peer = operations(fastapi)[key]

        def names(op: dict[str, Any]) -> set[tuple[str, str, bool]]:
            return {(p["in"], p["name"], p["required"]) for p in op.get("parameters", [])}

        assert names(operation) == names(peer), key


@pytest.mark.parametrize(("kit_app", "fastapi_app"), PEERS)
def test_same_bodies_and_rules(kit_app: str, fastapi_app: str) -> None:
    kit, fastapi = documents(kit_app, fastapi_app)
    for key, operation in operations(kit).items():
        peer = operations(fastapi)[key]
        assert ("requestBody" in operation) == ("requestBody" in peer), key
        if "requestBody" not in operation:
            continue
        assert operation["requestBody"]["required"] == peer["requestBody"]["required"]
        ours = operation["requestBody"]["content"]["application/json"]["schema"]
        theirs = peer["requestBody"]["content"]["application/json"]["schema"]
        assert rules(kit, ours) == rules(fastapi, theirs), key


@pytest.mark.parametrize(("kit_app", "fastapi_app"), DESCRIBED_RESPONSES)
def test_same_success_responses(kit_app: str, fastapi_app: str) -> None:
    kit, fastapi = documents(kit_app, fastapi_app)
    for key, operation in operations(kit).items():
        peer = operations(fastapi)[key]
        successes = {code for code in operation["responses"] if code.startswith("2")}
        assert successes == {code for code in peer["responses"] if code.startswith("2")}, key
        for code in successes:
            ours = operation["responses"][code].get("content", {})
            theirs = peer["responses"][code].get("content", {})
            assert ours.keys() == theirs.keys(), key
            if "application/json" in ours:
                mine = resolve(kit, ours["application/json"]["schema"])
                peer_schema = resolve(fastapi, theirs["application/json"]["schema"])
                assert rules(kit, mine) == rules(fastapi, peer_schema), key
        # 422 wherever FastAPI validates something
        assert ("422" in operation["responses"]) == ("422" in peer["responses"]), key
