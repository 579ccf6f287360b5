"""``response_model=``: FastAPI's meaning. The declared type, not the return annotation,
decides what is encoded (fields it lacks are dropped) and what /openapi.json documents;
``response_model=None`` turns both off."""

from __future__ import annotations

import dataclasses
from typing import Any

import msgspec
import pytest
from starlette.responses import PlainTextResponse
from starlette.testclient import TestClient

from kit import App, Settings
from kit import _plan as plan_module

SETTINGS = Settings.from_env({}, metrics=False, access_log=False)


class Public(msgspec.Struct):
    name: str
    age: int = 0


class Private(msgspec.Struct):
    name: str
    password: str
    age: int = 0


@dataclasses.dataclass
class Row:
    name: str
    password: str


@pytest.fixture(params=[False, True], ids=["shapes", "general"])
def client(request: pytest.FixtureRequest, monkeypatch: pytest.MonkeyPatch) -> TestClient:
    monkeypatch.setattr(plan_module, "GENERAL", request.param)
    app = App(settings=SETTINGS)

    @app.get("/struct", response_model=Public)
    async def struct() -> Private:
        return Private("ada", "secret", 36)

    @app.get("/dict", response_model=Public)
    async def from_dict() -> dict[str, Any]:
        return {"name": "ada", "password": "secret"}

    @app.get("/object", response_model=Public)
    async def from_object() -> Any:
        return Row("ada", "secret")

    @app.get("/list", response_model=list[Public])
    async def many() -> list[Private]:
        return [Private("a", "x"), Private("b", "y", 2)]

    @app.get("/none", response_model=None)
    async def unfiltered() -> Private:
        return Private("ada", "secret")

    @app.get("/broken", response_model=Public)
    async def broken() -> dict[str, Any]:
        return {"nom": "missing the name"}

    @app.get("/response", response_model=Public)
    async def response() -> Any:
        return PlainTextResponse("as is")

    @app.post("/created", status_code=201, response_model=Public)
    async def created(person: Private) -> Private:
        return person

    return TestClient(app, raise_server_exceptions=False)


def test_the_result_is_converted_to_the_model(client: TestClient) -> None:
    assert client.get("/struct").json() == {"name": "ada", "age": 36}
    assert client.get("/dict").json() == {"name": "ada", "age": 0}
    assert client.get("/object").json() == {"name": "ada", "age": 0}
    assert client.get("/list").json() == [{"name": "a", "age": 0}, {"name": "b", "age": 2}]
    made = client.post("/created", json={"name": "x", "password": "p"})
    assert (made.status_code, made.json()) == (201, {"name": "x", "age": 0})


def test_none_turns_it_off_and_a_response_passes(client: TestClient) -> None:
    assert client.get("/none").json() == {"name": "ada", "password": "secret", "age": 0}
    assert client.get("/response").text == "as is"


def test_a_result_that_does_not_fit_is_a_500_without_the_value(client: TestClient) -> None:
    answer = client.get("/broken")
    assert answer.status_code == 500
    assert "missing the name" not in answer.text


def test_the_docs_show_the_model_not_the_annotation(client: TestClient) -> None:
    paths = client.get("/openapi.json").json()["paths"]

    def schema(path: str, method: str = "get", status: str = "200") -> Any:
        return paths[path][method]["responses"][status]["content"]["application/json"]["schema"]

    assert schema("/struct") == {"$ref": "#/components/schemas/Public"}
    assert schema("/list") == {"type": "array", "items": {"$ref": "#/components/schemas/Public"}}
    assert schema("/created", "post", "201") == {"$ref": "#/components/schemas/Public"}
    assert schema("/none") == {}


def test_a_model_kit_cannot_convert_to_is_refused_at_registration() -> None:
    app = App(settings=SETTINGS)

    class Opaque:
        pass

    with pytest.raises(TypeError, match="response_model"):

        @app.get("/x", response_model=Opaque)
        async def x() -> None: ...
