"""A forbidden extra field is reported beside the body's other failing fields, not only when
it is the one error (msgspec names only the first error it meets)."""

from __future__ import annotations

import msgspec
import pytest
from starlette.testclient import TestClient

from kit import App
from kit.errors import MAX_ERRORS


class Signup(msgspec.Struct, forbid_unknown_fields=True):
    name: str
    age: int


class Tagged(msgspec.Struct, forbid_unknown_fields=True, tag=True):
    size: int


app = App()


@app.post("/signup")
async def signup(body: Signup) -> Signup:
    return body


@app.post("/tagged")
async def tagged(body: Tagged) -> Tagged:
    return body


@pytest.fixture(scope="module")
def client() -> TestClient:
    return TestClient(app)


def _items(response: object) -> list[tuple[str, list[object]]]:
    return [(i["type"], i["loc"]) for i in response.json()["detail"]]  # type: ignore[attr-defined]


@pytest.mark.parametrize(
    "body",
    [
        b'{"name": "a", "age": "x", "admin": true}',  # the extra field after the bad one
        b'{"admin": true, "name": "a", "age": "x"}',  # and before it
    ],
)
def test_extra_field_is_reported_with_the_others(client: TestClient, body: bytes) -> None:
    response = client.post("/signup", content=body, headers={"content-type": "application/json"})
    assert response.status_code == 422
    assert sorted(_items(response)) == [
        ("extra_forbidden", ["body", "admin"]),
        ("int_parsing", ["body", "age"]),
    ]


def test_a_missing_field_and_two_extra_ones(client: TestClient) -> None:
    response = client.post("/signup", json={"name": "a", "x": 1, "y": 2})
    assert sorted(_items(response)) == [
        ("extra_forbidden", ["body", "x"]),
        ("extra_forbidden", ["body", "y"]),
        ("missing", ["body", "age"]),
    ]


def test_the_tag_field_is_no_extra_field(client: TestClient) -> None:
    response = client.post("/tagged", json={"type": "Tagged", "size": "big"})
    assert _items(response) == [("int_parsing", ["body", "size"])]


def test_many_extra_fields_stay_bounded(client: TestClient) -> None:
    body = {"name": "a", "age": "x", **{f"k{i}": i for i in range(5000)}}
    detail = client.post("/signup", json=body).json()["detail"]
    assert len(detail) == MAX_ERRORS + 1
    assert detail[-1]["type"] == "too_many_errors"
