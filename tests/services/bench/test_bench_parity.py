"""The five apps do the same work: equal bytes where the answer is deterministic, the same shape
and ranges where it is random, the same persisted updates and the same answers to bad input.

Parity is checked on one runtime; test_bench_headers.py covers every runtime.
"""

from __future__ import annotations

import html
import json
from collections.abc import Iterator
from typing import Any

import httpx
import pytest

from tests.services.bench.harness import APPS, INSTALLED, Servers, fetch

# kit's default runtime first, as `kit serve` picks it
RUNTIME = next(iter(INSTALLED), "")
PYDANTIC_APPS = ("fastapi", "fastapi_tuned")
MSGSPEC_PEERS = ("starlette", "raw")
JSON = "application/json"


@pytest.fixture(scope="module")
def clients(bench_servers: Servers) -> Iterator[dict[str, httpx.Client]]:
    if not INSTALLED:
        pytest.skip("no server package installed")
    clients = {
        app: httpx.Client(base_url=bench_servers.url(app, RUNTIME), timeout=30) for app in APPS
    }
    try:
        yield clients
    finally:
        for client in clients.values():
            client.close()


def get_all(clients: dict[str, httpx.Client], path: str) -> dict[str, httpx.Response]:
    return {app: client.get(path) for app, client in clients.items()}


def post_all(
    clients: dict[str, httpx.Client], content: bytes, content_type: str | None = JSON
) -> dict[str, httpx.Response]:
    headers = {"content-type": content_type} if content_type else {}
    return {
        app: client.post("/validate", content=content, headers=headers)
        for app, client in clients.items()
    }


def expected_fortunes(database_url: str) -> bytes:
    """TechEmpower's page, built here from the table with the template their rules give."""
    rows = [(r["id"], r["message"]) for r in fetch(database_url, "SELECT * FROM fortune")]
    rows.append((0, "Additional fortune added at request time."))
    rows.sort(key=lambda row: row[1])
    cells = "".join(f"<tr><td>{i}</td><td>{html.escape(m)}</td></tr>" for i, m in rows)
    return (
        "<!DOCTYPE html><html><head><title>Fortunes</title></head><body><table>"
        f"<tr><th>id</th><th>message</th></tr>{cells}</table></body></html>"
    ).encode()


def check_worlds(worlds: Any, count: int) -> None:
    assert isinstance(worlds, list)
    assert len(worlds) == count
    for world in worlds:
        assert list(world) == ["id", "randomNumber"]
        assert all(type(value) is int and 1 <= value <= 10_000 for value in world.values())


# --- deterministic endpoints: equal bytes ---------------------------------------------------


def test_json_and_plaintext_are_the_same_bytes(clients: dict[str, httpx.Client]) -> None:
    for path, content_type, body in (
        ("/json", JSON, b'{"message":"Hello, World!"}'),
        ("/plaintext", "text/plain; charset=utf-8", b"Hello, World!"),
    ):
        for app, response in get_all(clients, path).items():
            assert response.status_code == 200, app
            assert response.headers["content-type"] == content_type, app
            assert response.content == body, app


def test_aggregate_is_the_same_bytes_from_four_upstream_calls(
    clients: dict[str, httpx.Client],
) -> None:
    items = [{"id": n, "name": f"item {n}", "price_cents": 100 + n} for n in (1, 2, 3, 4)]
    expected = json.dumps({"items": items, "total_cents": 410}, separators=(",", ":")).encode()
    for app, response in get_all(clients, "/aggregate").items():
        assert response.status_code == 200, app
        assert response.headers["content-type"] == JSON, app
        assert response.content == expected, app


def test_fortunes_are_the_same_bytes(
    clients: dict[str, httpx.Client], bench_database_url: str
) -> None:
    expected = expected_fortunes(bench_database_url)
    assert len(fetch(bench_database_url, "SELECT id FROM fortune")) == 12
    for fragment in (
        "<tr><td>0</td><td>Additional fortune added at request time.</td></tr>",
        "<tr><td>11</td><td>&lt;script&gt;alert(&quot;This should not be displayed in a "
        "browser alert box.&quot;);&lt;/script&gt;</td></tr>",
        "<tr><td>12</td><td>フレームワークのベンチマーク</td></tr></table>",
    ):
        assert fragment.encode() in expected
    for app, response in get_all(clients, "/fortunes").items():
        assert response.status_code == 200, app
        assert response.headers["content-type"] == "text/html; charset=utf-8", app
        assert response.content == expected, app


# --- random endpoints: same shape, ranges and truth ------------------------------------------


def test_db_returns_a_real_world_row(
    clients: dict[str, httpx.Client], bench_database_url: str
) -> None:
    seen: dict[int, int] = {}
    for _ in range(5):
        for app, response in get_all(clients, "/db").items():
            assert response.status_code == 200, app
            assert response.headers["content-type"] == JSON, app
            world = response.json()
            assert isinstance(world, dict), app
            check_worlds([world], 1)
            seen[world["id"]] = world["randomNumber"]
    rows = fetch(
        bench_database_url, "SELECT id, randomnumber FROM world WHERE id = ANY($1)", [*seen]
    )
    assert {row["id"]: row["randomnumber"] for row in rows} == seen


@pytest.mark.parametrize(
    ("query", "count"),
    [
        ("", 1),
        ("?queries=7", 7),
        ("?queries=1", 1),
        ("?queries=0", 1),
        ("?queries=-5", 1),
        ("?queries=", 1),
        ("?queries=abc", 1),
        ("?queries=2.5", 1),
        ("?queries=1e3", 1),
        ("?queries=%FF", 1),
        ("?queries=%ZZ", 1),
        ("?queries=501", 500),
        ("?queries=99999999999999999999999", 500),
        ("?queries=2&queries=3", 3),
        ("?other=9", 1),
    ],
)
def test_queries_clamps_its_parameter_alike(
    clients: dict[str, httpx.Client], query: str, count: int
) -> None:
    for app, response in get_all(clients, "/queries" + query).items():
        assert response.status_code == 200, app
        assert response.headers["content-type"] == JSON, app
        check_worlds(response.json(), count)


@pytest.mark.parametrize(("query", "count"), [("?queries=5", 5), ("?queries=x", 1), ("", 1)])
def test_updates_persist_what_they_return(
    clients: dict[str, httpx.Client], bench_database_url: str, query: str, count: int
) -> None:
    for app, client in clients.items():
        # checked before the next app's updates, which may pick some of the same ids
        response = client.get("/updates" + query)
        assert response.status_code == 200, app
        assert response.headers["content-type"] == JSON, app
        worlds = response.json()
        check_worlds(worlds, count)
        returned = {world["id"]: world["randomNumber"] for world in worlds}
        assert len(returned) == count, f"{app}: ids repeat"
        rows = fetch(
            bench_database_url, "SELECT id, randomnumber FROM world WHERE id = ANY($1)", [*returned]
        )
        assert {row["id"]: row["randomnumber"] for row in rows} == returned, app


def test_updates_clamp_to_500_distinct_rows(
    clients: dict[str, httpx.Client], bench_database_url: str
) -> None:
    before = {r["id"]: r["randomnumber"] for r in fetch(bench_database_url, "SELECT * FROM world")}
    for app, response in get_all(clients, "/updates?queries=600").items():
        assert response.status_code == 200, app
        worlds = response.json()
        check_worlds(worlds, 500)
        assert len({world["id"] for world in worlds}) == 500, app
    after = {r["id"]: r["randomnumber"] for r in fetch(bench_database_url, "SELECT * FROM world")}
    changed = sum(before[i] != after[i] for i in before)
    # 5 apps x 500 rows, about 1 in 10,000 drawn equal to the old value: many rows changed
    assert changed > 1000


# --- POST /validate --------------------------------------------------------------------------

VALID = [
    (
        {"name": "Ada", "age": 36, "email": "Ada@Example.ORG"},
        {"name": "Ada", "age": 36, "email": "ada@example.org", "tags": []},
    ),
    (
        {"name": "Zoë 🚀", "age": 0, "email": "z@x.io", "tags": ["a", "ü", ""]},
        {"name": "Zoë 🚀", "age": 0, "email": "z@x.io", "tags": ["a", "ü", ""]},
    ),
    (
        {"name": "x" * 100, "age": 150, "email": "a.b+c@d.e", "tags": ["t"] * 10, "extra": 1},
        {"name": "x" * 100, "age": 150, "email": "a.b+c@d.e", "tags": ["t"] * 10},
    ),
    # lax conversion, as in FastAPI: a numeric string or an integral float is an int
    (
        {"name": "q", "age": "42", "email": "q@q.qq"},
        {"name": "q", "age": 42, "email": "q@q.qq", "tags": []},
    ),
    (
        {"name": "q", "age": 42.0, "email": "q@q.qq"},
        {"name": "q", "age": 42, "email": "q@q.qq", "tags": []},
    ),
    (
        {"name": 'quote " and \\ and \n', "age": 1, "email": "q@q.qq"},
        {"name": 'quote " and \\ and \n', "age": 1, "email": "q@q.qq", "tags": []},
    ),
]


@pytest.mark.parametrize(("body", "expected"), VALID)
def test_validate_echoes_the_normalised_body_in_equal_bytes(
    clients: dict[str, httpx.Client], body: dict[str, Any], expected: dict[str, Any]
) -> None:
    responses = post_all(clients, json.dumps(body).encode())
    for app, response in responses.items():
        assert response.status_code == 200, (app, response.text)
        assert response.headers["content-type"] == JSON, app
        assert response.json() == expected, app
    assert len({response.content for response in responses.values()}) == 1


BODY = {"name": "Ada", "age": 36, "email": "ada@example.org"}
# Bad bodies every app refuses with 422; kit and FastAPI name the same fields (loc).
INVALID: list[tuple[str, Any, list[list[Any]]]] = [
    ("empty object", {}, [["body", "name"], ["body", "age"], ["body", "email"]]),
    ("empty name", {**BODY, "name": ""}, [["body", "name"]]),
    ("long name", {**BODY, "name": "x" * 101}, [["body", "name"]]),
    ("name not a string", {**BODY, "name": 7}, [["body", "name"]]),
    ("name null", {**BODY, "name": None}, [["body", "name"]]),
    ("age negative", {**BODY, "age": -1}, [["body", "age"]]),
    ("age too big", {**BODY, "age": 151}, [["body", "age"]]),
    ("age huge", {**BODY, "age": 10**30}, [["body", "age"]]),
    ("age fraction", {**BODY, "age": 30.5}, [["body", "age"]]),
    ("age words", {**BODY, "age": "old"}, [["body", "age"]]),
    ("age list", {**BODY, "age": [1]}, [["body", "age"]]),
    ("email no at", {**BODY, "email": "nope"}, [["body", "email"]]),
    ("email no dot", {**BODY, "email": "a@b"}, [["body", "email"]]),
    ("email space", {**BODY, "email": "a b@c.d"}, [["body", "email"]]),
    ("email not a string", {**BODY, "email": 5}, [["body", "email"]]),
    ("tags not a list", {**BODY, "tags": "a"}, [["body", "tags"]]),
    ("tags null", {**BODY, "tags": None}, [["body", "tags"]]),
    ("too many tags", {**BODY, "tags": ["t"] * 11}, [["body", "tags"]]),
    ("tag not a string", {**BODY, "tags": ["a", 1]}, [["body", "tags", 1]]),
    (
        "everything wrong",
        {"name": "", "age": "x", "email": "bad", "tags": [1]},
        [["body", "name"], ["body", "age"], ["body", "email"], ["body", "tags", 0]],
    ),
    ("array", [], [["body"]]),
    ("string", "Ada", [["body"]]),
    ("number", 36, [["body"]]),
]


@pytest.mark.parametrize(
    ("body", "locs"), [case[1:] for case in INVALID], ids=[c[0] for c in INVALID]
)
def test_bad_bodies_get_422_with_the_same_locs_as_fastapi(
    clients: dict[str, httpx.Client], body: Any, locs: list[list[Any]]
) -> None:
    responses = post_all(clients, json.dumps(body).encode())
    for app, response in responses.items():
        assert response.status_code == 422, (app, response.text)
        assert response.headers["content-type"] == JSON, app
        assert "detail" in response.json(), app
    for app in ("kit", *PYDANTIC_APPS):
        found = [item["loc"] for item in responses[app].json()["detail"]]
        assert sorted(map(str, found)) == sorted(map(str, locs)), (app, found)


# Requests wrong below the schema (body encoding, content type, size): kit refuses them all with
# a 4xx and a JSON body, and the msgspec peers never answer with a 5xx. FastAPI is not held to
# it: it answers 500 to NaN, 1e400 and invalid UTF-8 (its 422 cannot encode the input).
MALFORMED: list[tuple[str, bytes, str | None]] = [
    ("truncated json", b'{"name": "Ada", ', JSON),
    ("not json", b"name=Ada", JSON),
    ("empty body", b"", JSON),
    ("json null", b"null", JSON),
    ("invalid utf-8", b'{"name": "\xff\xfe", "age": 1, "email": "a@b.cd"}', JSON),
    ("nan", b'{"name": "Ada", "age": NaN, "email": "a@b.cd"}', JSON),
    ("infinite number", b'{"name": "Ada", "age": 1e400, "email": "a@b.cd"}', JSON),
    ("deep nesting", b'{"tags": ' + b"[" * 100_000 + b"]" * 100_000 + b"}", JSON),
    ("duplicate keys", b'{"name": "A", "name": "", "age": 1, "email": "a@b.cd"}', JSON),
    ("text/plain", json.dumps(BODY).encode(), "text/plain"),
    ("no content type", json.dumps(BODY).encode(), None),
    ("form content type", b"name=Ada&age=36", "application/x-www-form-urlencoded"),
]


@pytest.mark.parametrize(
    ("content", "content_type"), [case[1:] for case in MALFORMED], ids=[c[0] for c in MALFORMED]
)
def test_malformed_requests_never_get_a_5xx(
    clients: dict[str, httpx.Client], content: bytes, content_type: str | None
) -> None:
    responses = post_all(clients, content, content_type)
    for app in MSGSPEC_PEERS:
        assert responses[app].status_code < 500, (app, responses[app].text)
    kit = responses["kit"]
    assert 400 <= kit.status_code < 500, kit.text
    assert kit.headers["content-type"] == JSON
    assert "detail" in kit.json()


def test_oversized_body_is_413_on_kit(clients: dict[str, httpx.Client]) -> None:
    body = json.dumps({**BODY, "tags": ["x" * 1024] * 1100}).encode()  # over kit's 1 MiB default
    response = clients["kit"].post("/validate", content=body, headers={"content-type": JSON})
    assert response.status_code == 413
    assert response.headers["content-type"] == JSON


@pytest.mark.parametrize(
    ("method", "path", "status"),
    [("GET", "/validate", 405), ("POST", "/db", 405), ("GET", "/missing", 404)],
)
def test_routing_errors_alike(
    clients: dict[str, httpx.Client], method: str, path: str, status: int
) -> None:
    for app, client in clients.items():
        assert client.request(method, path).status_code == status, app


# Where Pydantic's lax mode and msgspec's differ (bool as int, signs and spaces in numeric
# strings, exponents). The msgspec apps agree with each other, and nobody answers with a 5xx.
LAX_EDGES = [{**BODY, "age": value} for value in (True, " 30", "+5", "1e1")]


@pytest.mark.parametrize("body", LAX_EDGES, ids=[repr(b["age"]) for b in LAX_EDGES])
def test_lax_conversion_edges_agree_among_msgspec_apps(
    clients: dict[str, httpx.Client], body: dict[str, Any]
) -> None:
    responses = post_all(clients, json.dumps(body).encode())
    assert all(response.status_code < 500 for response in responses.values())
    statuses = {app: responses[app].status_code for app in ("kit", *MSGSPEC_PEERS)}
    assert len(set(statuses.values())) == 1, statuses
