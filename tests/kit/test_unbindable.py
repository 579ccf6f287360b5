"""A handler parameter kit cannot read from a request is refused when the route is registered,
in one line that names the route, the parameter and what would work."""

from __future__ import annotations

import dataclasses
import os
import subprocess
import sys
from pathlib import Path
from typing import Annotated, Any, TypedDict

import msgspec
import pytest
from starlette.testclient import TestClient

from kit import App, Body, Depends, Query
from kit.params import UnbindableParameter
from kit.testing import free_port


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
    assert message.startswith("POST /send (")
    assert "send): parameter 'mailer' has the type" in message
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


@pytest.mark.parametrize("method", ["get", "delete"])
def test_a_body_on_get_or_delete_must_be_asked_for(method: str) -> None:
    app = app_()

    async def list_notes(filters: Filters) -> None:
        pass

    with pytest.raises(UnbindableParameter) as raised:
        getattr(app, method)("/notes")(list_notes)
    verb = method.upper()
    assert str(raised.value) == (
        f"{verb} /notes (test_a_body_on_get_or_delete_must_be_asked_for.<locals>.list_notes): "
        f"parameter 'filters' (Filters) would be read from a JSON body, which {verb} requests "
        "do not carry; read it from the query with Annotated[Filters, Query()], or say "
        "Annotated[Filters, Body()] if a body is meant"
    )


def test_an_explicit_body_on_delete_is_kept() -> None:
    app = app_()

    @app.delete("/notes")
    async def delete_notes(filters: Annotated[Filters, Body()]) -> str | None:
        return filters.tag

    with TestClient(app) as client:
        response = client.request("DELETE", "/notes", json={"tag": "old"})
        assert response.json() == "old"


def test_kit_serve_names_the_route_in_one_line(tmp_path: Path) -> None:
    (tmp_path / "unbindable_app.py").write_text(
        "from kit import App\n"
        "class Mailer: ...\n"
        "app = App()\n"
        "@app.get('/mail')\n"
        "async def mail(mailer: Mailer) -> None: ...\n"
    )
    result = subprocess.run(
        [sys.executable, "-m", "kit.cli", "serve", "unbindable_app:app"],
        cwd=tmp_path,
        env={**os.environ, "KIT_PORT": str(free_port())},
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert result.returncode == 2
    assert result.stderr.strip().splitlines() == [
        "kit serve: GET /mail (mail): parameter 'mailer' has the type Mailer, which kit cannot "
        "read from a request: use a msgspec.Struct for a JSON body, a scalar or a list for the "
        "query, Annotated[Mailer, Depends(provider)] to inject an object, or Request"
    ]
