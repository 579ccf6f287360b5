"""Parameters bound from annotations: path, query, headers, cookies, bodies."""

import enum
import uuid
from typing import Annotated, Any, Literal

import hypothesis
import hypothesis.strategies
import msgspec
import pytest
from starlette.datastructures import QueryParams
from starlette.testclient import TestClient

from kit import App, Body, Cookie, Header, Path, Query, Request, Router
from kit.params import query_values


class Color(enum.Enum):
    red = "red"
    blue = "blue"


class Filters(msgspec.Struct):
    limit: Annotated[int, msgspec.Meta(ge=1, le=100)] = 10
    tag: list[str] = []
    order: Literal["asc", "desc"] = "asc"


class Item(msgspec.Struct):
    name: str
    price: Annotated[float, msgspec.Meta(gt=0)]
    tags: list[str] = []


def make_app() -> App:
    app = App()

    @app.get("/path/{item_id}/{slug}")
    async def path(item_id: int, slug: str) -> dict[str, Any]:
        return {"item_id": item_id, "slug": slug}

    @app.get("/uuid/{key}")
    async def by_uuid(key: uuid.UUID) -> dict[str, Any]:
        return {"key": key}

    @app.get("/query")
    async def query(
        q: str,
        page: int = 1,
        ratio: float | None = None,
        flag: bool = False,
        color: Color = Color.red,
        ids: list[int] = [],  # noqa: B006 - defaults are copied by msgspec conversion
        size: Annotated[int, Query(alias="page-size"), msgspec.Meta(le=50)] = 20,
    ) -> dict[str, Any]:
        return {
            "q": q,
            "page": page,
            "ratio": ratio,
            "flag": flag,
            "color": color,
            "ids": ids,
            "size": size,
        }

    @app.get("/filters")
    async def filters(f: Annotated[Filters, Query()]) -> Filters:
        return f

    @app.get("/headers")
    async def headers(
        x_token: Annotated[str, Header()],
        x_count: Annotated[int | None, Header()] = None,
        session: Annotated[str | None, Cookie()] = None,
    ) -> dict[str, Any]:
        return {"token": x_token, "count": x_count, "session": session}

    @app.post("/items", status_code=201)
    async def create(item: Item) -> Item:
        return item

    @app.post("/list")
    async def create_many(items: list[Item]) -> int:
        return len(items)

    @app.post("/dict")
    async def mapping(body: Annotated[dict[str, int], Body()]) -> dict[str, int]:
        return body

    @app.post("/union")
    async def union(body: Annotated[int | list[int], Body()]) -> Any:
        return body

    @app.post("/optional")
    async def optional(item: Item | None = None) -> dict[str, bool]:
        return {"present": item is not None}

    @app.post("/small", max_body_size=16)
    async def small(body: Annotated[dict[str, Any], Body()]) -> dict[str, Any]:
        return body

    @app.get("/request")
    async def with_request(request: Request, q: str = "x") -> dict[str, str]:
        return {"path": request.url.path, "q": q}

    @app.get("/sync")
    def sync_handler(n: int) -> dict[str, int]:
        return {"double": n * 2}

    @app.delete("/nothing", status_code=204)
    async def nothing() -> None:
        return None

    return app


@pytest.fixture(scope="module")
def client() -> TestClient:
    return TestClient(make_app())


def test_path_params_are_converted(client: TestClient) -> None:
    r = client.get("/path/42/hello")
    assert r.status_code == 200
    assert r.json() == {"item_id": 42, "slug": "hello"}
    key = uuid.uuid4()
    assert client.get(f"/uuid/{key}").json() == {"key": str(key)}


def test_bad_path_param_is_422(client: TestClient) -> None:
    r = client.get("/path/abc/hello")
    assert r.status_code == 422
    assert r.json()["detail"] == [
        {
            "type": "int_parsing",
            "loc": ["path", "item_id"],
            "msg": "Input should be a valid integer, unable to parse string as an integer",
            "input": "abc",
        }
    ]
    assert client.get("/uuid/not-a-uuid").json()["detail"][0]["loc"] == ["path", "key"]


def test_query_scalars_lists_defaults_and_aliases(client: TestClient) -> None:
    r = client.get("/query?q=hi&page=3&ratio=0.5&flag=true&color=blue&ids=1&ids=2&page-size=7")
    assert r.status_code == 200
    assert r.json() == {
        "q": "hi",
        "page": 3,
        "ratio": 0.5,
        "flag": True,
        "color": "blue",
        "ids": [1, 2],
        "size": 7,
    }
    defaults = client.get("/query?q=x").json()
    assert defaults == {
        "q": "x",
        "page": 1,
        "ratio": None,
        "flag": False,
        "color": "red",
        "ids": [],
        "size": 20,
    }


def test_query_errors_name_every_failing_parameter(client: TestClient) -> None:
    r = client.get("/query?page=x&color=green&ids=1&ids=z&page-size=99")
    assert r.status_code == 422
    locs = [e["loc"] for e in r.json()["detail"]]
    assert locs == [
        ["query", "q"],
        ["query", "page"],
        ["query", "color"],
        ["query", "ids", 1],
        ["query", "page-size"],
    ]
    types = [e["type"] for e in r.json()["detail"]]
    assert types == ["missing", "int_parsing", "enum", "int_parsing", "less_than_equal"]


def test_query_struct_gathers_parameters(client: TestClient) -> None:
    r = client.get("/filters?limit=5&tag=a&tag=b&order=desc&unknown=1")
    assert r.json() == {"limit": 5, "tag": ["a", "b"], "order": "desc"}
    assert client.get("/filters").json() == {"limit": 10, "tag": [], "order": "asc"}
    bad = client.get("/filters?limit=0&order=up")
    assert bad.status_code == 422
    assert [e["loc"] for e in bad.json()["detail"]] == [["query", "limit"], ["query", "order"]]


def test_headers_and_cookies(client: TestClient) -> None:
    r = client.get("/headers", headers={"X-Token": "t", "X-Count": "3", "Cookie": "session=s"})
    assert r.json() == {"token": "t", "count": 3, "session": "s"}
    missing = client.get("/headers", headers={"X-Count": "many"})
    assert [e["loc"] for e in missing.json()["detail"]] == [
        ["header", "x-token"],
        ["header", "x-count"],
    ]


def test_struct_body_and_status_code(client: TestClient) -> None:
    r = client.post("/items", json={"name": "pen", "price": 1.5})
    assert r.status_code == 201
    assert r.json() == {"name": "pen", "price": 1.5, "tags": []}


def test_list_dict_union_and_optional_bodies(client: TestClient) -> None:
    assert client.post("/list", json=[{"name": "a", "price": 1}] * 3).json() == 3
    assert client.post("/dict", json={"a": 1}).json() == {"a": 1}
    assert client.post("/union", json=5).json() == 5
    assert client.post("/union", json=[1, 2]).json() == [1, 2]
    assert client.post("/optional").json() == {"present": False}
    assert client.post("/optional", json={"name": "a", "price": 2}).json() == {"present": True}


def test_list_body_errors_carry_indexes(client: TestClient) -> None:
    r = client.post("/list", json=[{"name": "a", "price": 1}, {"name": 2, "price": -1}, {}])
    assert r.status_code == 422
    assert [e["loc"] for e in r.json()["detail"]] == [
        ["body", 1, "name"],
        ["body", 1, "price"],
        ["body", 2, "name"],
        ["body", 2, "price"],
    ]
    wrong_values = client.post("/dict", json={"a": 1, "b": "x"})
    assert wrong_values.json()["detail"][0]["loc"] == ["body", "b"]


def test_request_sync_handler_and_204(client: TestClient) -> None:
    assert client.get("/request?q=y").json() == {"path": "/request", "q": "y"}
    assert client.get("/sync?n=4").json() == {"double": 8}
    r = client.delete("/nothing")
    assert r.status_code == 204
    assert r.content == b""
    assert "content-length" not in r.headers or r.headers["content-length"] == "0"


def test_per_route_body_limit(client: TestClient) -> None:
    assert client.post("/small", json={"a": 1}).status_code == 200
    r = client.post("/small", json={"a": "x" * 100})
    assert r.status_code == 413
    assert r.json() == {"detail": "Request body exceeds 16 bytes"}


def test_router_prefix_tags_and_include() -> None:
    router = Router(prefix="/users", tags=["users"])

    @router.get("/{user_id}")
    async def get_user(user_id: int) -> dict[str, int]:
        return {"id": user_id}

    app = App()
    app.include_router(router, prefix="/v1")
    client = TestClient(app)
    assert client.get("/v1/users/3").json() == {"id": 3}
    assert client.get("/users/3").status_code == 404
    route = next(r for r in app.routes if getattr(r, "path", "") == "/v1/users/{user_id}")
    assert route.tags == ["users"]  # type: ignore[attr-defined]


@pytest.mark.parametrize(
    ("path", "message"),
    [
        ("/{x}", "cannot have a default"),
        ("/a", "not in the route's path"),
    ],
)
def test_registration_errors_are_raised_at_startup(path: str, message: str) -> None:
    app = App()

    async def handler(x: Annotated[int, Path()] = 1) -> None:
        return None

    with pytest.raises(TypeError, match=message):
        app.add_api_route(path, handler)


def test_two_bodies_are_refused_at_registration() -> None:
    app = App()

    async def handler(a: Item, b: Item) -> None:
        return None

    with pytest.raises(TypeError, match="only one body parameter"):
        app.add_api_route("/x", handler, methods=["POST"])


@hypothesis.settings(max_examples=300, derandomize=True)
@hypothesis.given(
    hypothesis.strategies.lists(
        hypothesis.strategies.tuples(
            hypothesis.strategies.sampled_from(["a", "b", "a b", "", "é", "%41", "+"]),
            hypothesis.strategies.sampled_from(["1", "", "x=y", "%20", "+", "%zz", "é"]),
        ),
        max_size=5,
    ),
    hypothesis.strategies.sampled_from(["&", "&&", "&=&"]),
)
def test_the_query_string_reads_as_starlette_reads_it(
    pairs: list[tuple[str, str]], separator: str
) -> None:
    text = separator.join(f"{k}={v}" if v != "" else k for k, v in pairs)
    raw = text.encode("utf-8")
    values, listed = query_values({"type": "http", "query_string": raw, "headers": []})
    expected = QueryParams(raw)
    assert [tuple(pair) for pair in listed] == expected.multi_items()
    assert values == dict(expected)
