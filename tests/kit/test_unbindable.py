"""A handler parameter kit cannot read from a request is refused when the route is registered,
in one line that names the route, the parameter and what would work."""

from __future__ import annotations

import dataclasses
from typing import Annotated, Any, TypedDict

import msgspec
import pytest
from starlette.testclient import TestClient

from kit import App, Body, Depends, Query
from kit.params import UnbindableParameter


class Mailer:
    """A plain class: a service object, not something a request carries."""


class Filters(msgspec.Struct):
    tag: str | None = None


@dataclasses.dataclass
class Note:
    text: str


class NoteDict(TypedDict):
    text: str


def app_() -> App:
    return App()


@pytest.mark.parametrize(
    "annotation", [Mailer, object, Mailer | None, list[Mailer], dict[str, Mailer] | None]
)
def test_a_type_kit_cannot_read_is_refused_in_one_line(annotation: Any) -> None:
    app = app_()

    async def send(mailer) -> None:  # type: ignore[no-untyped-def]
        pass

    send.__annotations__["mailer"] = annotation

    with pytest.raises(UnbindableParameter) as raised:
        app.post("/send")(send)
    message = str(raised.value)
    assert "\n" not in message
    assert "parameter 'mailer' has the type" in message
    assert "which kit cannot read from a request" in message
    assert "Depends(provider)" in message
    assert "msgspec.Struct" in message


def test_an_explicit_body_of_a_plain_class_is_refused_too() -> None:
    app = app_()
    with pytest.raises(UnbindableParameter, match="parameter 'mailer' has the type Mailer"):

        @app.post("/send")
        async def send(mailer: Annotated[Mailer, Body()]) -> None:
            pass


def test_what_kit_can_read_still_works() -> None:
    app = app_()

    @app.post("/notes")
    async def create(note: Note) -> str:
        return note.text

    @app.post("/dicts")
    async def create_dict(note: NoteDict) -> str:
        return note["text"]

    @app.post("/any")
    async def anything(value: Annotated[object, Body()]) -> object:
        return value

    @app.get("/notes")
    async def search(filters: Annotated[Filters, Query()]) -> str | None:
        return filters.tag

    @app.get("/mail")
    async def mail(mailer: Annotated[Mailer, Depends(Mailer)]) -> str:
        return type(mailer).__name__

    with TestClient(app) as client:
        assert client.post("/notes", json={"text": "hi"}).json() == "hi"
        assert client.post("/dicts", json={"text": "yo"}).json() == "yo"
        assert client.post("/any", json=[1, {"a": None}]).json() == [1, {"a": None}]
        assert client.get("/notes", params={"tag": "x"}).json() == "x"
        assert client.get("/mail").json() == "Mailer"
