"""Form fields and file uploads: values, the 422 of every failing field, 413, 415, 400."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Annotated, Any

import msgspec
import pytest
from starlette.testclient import TestClient

from kit import App, File, Form, Settings, UploadFile

opened: list[UploadFile] = []


def make_app(max_body_size: int = 1024) -> App:
    app = App(settings=Settings(max_body_size=max_body_size))

    @app.post("/login")
    async def login(
        username: Annotated[str, Form(max_size=20)],
        age: Annotated[int, msgspec.Meta(ge=0), Form()],
        remember: Annotated[bool, Form()] = False,
        tags: Annotated[list[str] | None, Form()] = None,
    ) -> dict[str, Any]:
        return {"username": username, "age": age, "remember": remember, "tags": tags}

    @app.post("/upload")
    async def upload(
        file: Annotated[UploadFile, File(max_size=2048)],
        note: Annotated[str | None, Form()] = None,
    ) -> dict[str, Any]:
        opened.append(file)
        return {"name": file.filename, "size": len(await file.read()), "note": note}

    @app.post("/many")
    async def many(
        files: Annotated[list[UploadFile], File()], raw: Annotated[bytes, File()]
    ) -> dict[str, Any]:
        return {"names": [f.filename for f in files], "raw": raw.decode()}

    return app


@pytest.fixture
def client() -> Iterator[TestClient]:
    with TestClient(make_app()) as client:
        yield client


def test_urlencoded_fields_convert(client: TestClient) -> None:
    data = {"username": "ada", "age": "36", "remember": "true", "tags": ["a", "b"]}
    response = client.post("/login", data=data)
    assert response.json() == {"username": "ada", "age": 36, "remember": True, "tags": ["a", "b"]}
    # the same fields as multipart
    response = client.post("/login", data={"username": "ada", "age": "1"}, files={"x": ("", b"")})
    assert response.json()["age"] == 1


def test_every_failing_field_is_one_422_item(client: TestClient) -> None:
    response = client.post("/login", data={"age": "-1", "username": "x" * 21})
    assert response.status_code == 422
    items = {tuple(item["loc"]): item["type"] for item in response.json()["detail"]}
    assert items == {("body", "username"): "string_too_long", ("body", "age"): "greater_than_equal"}
    response = client.post("/login", data={"remember": "true"})
    assert [item["loc"] for item in response.json()["detail"]] == [
        ["body", "username"],
        ["body", "age"],
    ]


def test_wrong_content_type_is_415(client: TestClient) -> None:
    assert client.post("/login", json={"username": "a", "age": 1}).status_code == 415
    # files need multipart
    assert client.post("/upload", data={"note": "x"}).status_code == 415


def test_file_upload_and_cleanup(client: TestClient) -> None:
    response = client.post("/upload", files={"file": ("a.txt", b"hello")}, data={"note": "n"})
    assert response.json() == {"name": "a.txt", "size": 5, "note": "n"}
    assert opened[-1].file.closed  # closed once the response was sent


def test_lists_of_files_and_bytes(client: TestClient) -> None:
    files = [("files", ("a", b"1")), ("files", ("b", b"2")), ("raw", ("r", b"raw"))]
    assert client.post("/many", files=files).json() == {"names": ["a", "b"], "raw": "raw"}
    response = client.post("/many", files=[("raw", ("r", b"raw"))], data={"files": "text"})
    assert response.status_code == 422
    assert response.json()["detail"][0]["loc"] == ["body", "files"]


def test_a_file_over_its_limit_is_413(client: TestClient) -> None:
    response = client.post("/upload", files={"file": ("big", b"x" * 2049)})
    assert response.status_code == 413


def test_a_body_over_the_limit_is_413_with_or_without_content_length() -> None:
    # the app's 1 KiB plus the file's declared 2 KiB
    with TestClient(make_app()) as client:
        big = b"x" * 4000
        response = client.post(
            "/login", content=big, headers={"content-type": "application/x-www-form-urlencoded"}
        )
        assert response.status_code == 413

        def chunks() -> Iterator[bytes]:
            for _ in range(10):
                yield b"username=" + b"x" * 500

        response = client.post(
            "/login",
            content=chunks(),
            headers={"content-type": "application/x-www-form-urlencoded"},
        )
        assert response.status_code == 413


def test_malformed_multipart_is_400(client: TestClient) -> None:
    response = client.post(
        "/upload", content=b"--x\r\nnonsense", headers={"content-type": "multipart/form-data"}
    )
    assert response.status_code == 400
    assert "detail" in response.json()


class Login(msgspec.Struct):
    name: str


def test_a_struct_form_field_is_refused_at_registration() -> None:
    app = App()
    with pytest.raises(TypeError, match=r"a JSON body is a msgspec\.Struct parameter"):

        @app.post("/x")
        async def x(login: Annotated[Login, Form()]) -> None: ...


def test_openapi_describes_the_form() -> None:
    with TestClient(make_app()) as client:
        paths = client.get("/openapi.json").json()["paths"]
    login = paths["/login"]["post"]["requestBody"]
    schema = login["content"]["application/x-www-form-urlencoded"]["schema"]
    assert schema["required"] == ["username", "age"]
    assert set(schema["properties"]) == {"username", "age", "remember", "tags"}
    upload = paths["/upload"]["post"]["requestBody"]["content"]["multipart/form-data"]["schema"]
    assert upload["properties"]["file"] == {"type": "string", "format": "binary"}
    assert "422" in paths["/login"]["post"]["responses"]


def test_an_explicit_app_limit_still_makes_room_for_declared_files() -> None:
    app = App(max_body_size=1024)  # Starlette's semantics: it limits every route

    @app.post("/photo")
    async def photo(file: Annotated[UploadFile, File(max_size=8192)]) -> dict[str, int]:
        return {"size": len(await file.read())}

    @app.post("/note")
    async def note(text: Annotated[str, Form()]) -> dict[str, int]:
        return {"size": len(text)}

    with TestClient(app) as client:
        assert client.post("/photo", files={"file": ("p", b"x" * 5000)}).json() == {"size": 5000}
        assert client.post("/photo", files={"file": ("p", b"x" * 9000)}).status_code == 413
        assert client.post("/note", data={"text": "x" * 2000}).status_code == 413
