"""What the document promises, the app does (the cases schemathesis first found broken)."""

from __future__ import annotations

from typing import Any

import pytest
from starlette.testclient import TestClient

from kit.openapi import build_document
from tests.kit.openapi.app import app


@pytest.fixture(scope="module")
def client() -> TestClient:
    return TestClient(app)


@pytest.mark.parametrize(
    ("url", "loc", "error"),
    [
        ("/echo?text=", ["query", "text"], "string_too_short"),  # Meta on a str query param
        ("/items?q=" + "x" * 21, ["query", "q"], "string_too_long"),
        ("/items?limit=0", ["query", "limit"], "greater_than_equal"),
        ("/items?color=blue", ["query", "color", 0], "enum"),
        ("/items/0", ["path", "item_id"], "greater_than_equal"),
        ("/old?kind=c", ["query", "kind"], "enum"),
        ("/items?max_price=null", ["query", "max_price"], "float_parsing"),  # not None
    ],
)
def test_documented_parameter_constraints_are_enforced(
    client: TestClient, url: str, loc: list[Any], error: str
) -> None:
    response = client.get(url)
    assert response.status_code == 422
    assert [(e["loc"], e["type"]) for e in response.json()["detail"]] == [(loc, error)]


def test_405_allows_every_documented_method_of_the_path(client: TestClient) -> None:
    document = build_document(app)
    for path, methods in (("/items", {"GET", "POST"}), ("/items/1", {"GET", "DELETE"})):
        response = client.request("OPTIONS", path)
        assert response.status_code == 405
        allowed = set(response.headers["allow"].split(", "))
        template = "/items/{item_id}" if path != "/items" else path
        assert {m.upper() for m in document["paths"][template]} == methods
        assert allowed == methods | {"HEAD"}
