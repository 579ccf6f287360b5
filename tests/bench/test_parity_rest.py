"""Every app of the comparison answers the REST shapes (services/bench/rest.py) and TechEmpower's
deterministic endpoints with the same bytes, its handler's 404 with the same body, and bad input
with a 422 and a JSON ``detail``; kit, FastAPI and Litestar name the same fields (``loc``).

Driven in process (bench.inprocess's driver, each app's lifespan running against the suite's
Postgres): what is compared is the apps' answers, not the servers'."""

from __future__ import annotations

import asyncio
import importlib
from collections.abc import Iterator
from typing import Any

import msgspec
import pytest

pytest.importorskip("litestar", reason="the peers need the `peers` extra")
pytest.importorskip("blacksheep", reason="the peers need the `peers` extra")

APPS = {
    "kit": "services.bench.app",
    "fastapi": "bench.apps.fastapi",
    "fastapi_tuned": "bench.apps.fastapi_tuned",
    "starlette": "bench.apps.starlette",
    "raw": "bench.apps.raw",
    "litestar": "bench.apps.litestar",
    "blacksheep": "bench.apps.blacksheep",
}
Headers = tuple[tuple[bytes, bytes], ...]
Case = tuple[str, str, bytes | None, Headers]
ORDER = (
    b'{"customer":{"name":"Ada Lovelace","email":"ada@example.com"},'
    b'"lines":[{"sku":"tea","quantity":2},{"sku":"cake","quantity":3}],"note":"by the door"}'
)
TENANT: Headers = ((b"x-tenant", b"acme"),)
PERSON = b'{"name":"Ada Lovelace","age":36,"email":"ADA@example.com","tags":["math","poetry"]}'

# Deterministic answers: equal status and bytes everywhere.
SAME: dict[str, Case] = {
    "item": ("GET", "/items/7", None, ()),
    "item 404": ("GET", "/items/1001", None, ()),
    "item 404 below": ("GET", "/items/0", None, ()),
    "search": ("GET", "/search?limit=3&offset=5&tag=a&tag=b", None, ()),
    "search defaults": ("GET", "/search", None, ()),
    "search one tag": ("GET", "/search?tag=x&limit=100", None, ()),
    "whoami": ("GET", "/whoami", None, (*TENANT, (b"cookie", b"theme=dark; session=s-42"))),
    "whoami no cookie": ("GET", "/whoami", None, TENANT),
    "account all fields": ("GET", "/accounts/6", None, ()),
    "account none set": ("GET", "/accounts/1", None, ()),
    "account some set": ("GET", "/accounts/7", None, ()),
    "account 404": ("GET", "/accounts/5000", None, ()),
    "order": ("POST", "/orders", ORDER, ()),
    "order without note": (
        "POST",
        "/orders",
        b'{"customer":{"name":"Bo","email":"bo@example.com"},"lines":[{"sku":"x","quantity":1}]}',
        (),
    ),
    "json": ("GET", "/json", None, ()),
    "plaintext": ("GET", "/plaintext", None, ()),
    "fortunes": ("GET", "/fortunes", None, ()),
    "validate": ("POST", "/validate", PERSON, ()),
}
# Bad input: 422 with a JSON detail everywhere; the items' loc where the app gives FastAPI's list.
INVALID: dict[str, tuple[Case, list[list[Any]]]] = {
    "limit zero": (("GET", "/search?limit=0", None, ()), [["query", "limit"]]),
    "limit over": (("GET", "/search?limit=101", None, ()), [["query", "limit"]]),
    "limit not a number": (("GET", "/search?limit=ten", None, ()), [["query", "limit"]]),
    "offset negative": (("GET", "/search?offset=-1", None, ()), [["query", "offset"]]),
    "no tenant": (("GET", "/whoami", None, ()), [["header", "x-tenant"]]),
    "tenant too long": (
        ("GET", "/whoami", None, ((b"x-tenant", b"t" * 65),)),
        [["header", "x-tenant"]],
    ),
    "nested field out of range": (
        (
            "POST",
            "/orders",
            b'{"customer":{"name":"Bo","email":"bo@example.com"},"lines":[{"sku":"x","quantity":0}]}',
            (),
        ),
        [["body", "lines", 0, "quantity"]],
    ),
    "nested field missing": (
        ("POST", "/orders", b'{"customer":{"name":"Bo"},"lines":[{"sku":"x","quantity":1}]}', ()),
        [["body", "customer", "email"]],
    ),
    "not json": (("POST", "/orders", b"{not json", ()), []),
}
# Apps whose 422 lists FastAPI's items, so their locs can be compared.
FASTAPI_SHAPE = ("kit", "fastapi", "fastapi_tuned")
LITESTAR_LOCS = ("limit zero", "limit over", "limit not a number", "offset negative")


async def collect(cases: dict[str, Case]) -> dict[str, dict[str, tuple[int, bytes, bytes]]]:
    from bench.inprocess import Driver

    answers: dict[str, dict[str, tuple[int, bytes, bytes]]] = {}
    for name, module in APPS.items():
        driver = Driver(importlib.import_module(module).app)
        await driver.start()
        try:
            mine = answers[name] = {}
            for case, (method, target, body, headers) in cases.items():
                status, sent, payload = await driver.exchange(method, target, body, headers)
                mine[case] = (status, dict(sent).get(b"content-type", b""), payload)
        finally:
            await driver.stop()
    return answers


@pytest.fixture(scope="module")
def answers(database_url: str) -> Iterator[dict[str, dict[str, tuple[int, bytes, bytes]]]]:
    patch = pytest.MonkeyPatch()
    patch.setenv("DATABASE_URL", database_url)
    patch.setenv("KIT_ACCESS_LOG", "0")
    patch.setenv("KIT_DB_POOL_MIN", "1")
    patch.setenv("KIT_DB_POOL_MAX", "2")
    cases = {**SAME, **{name: case for name, (case, _) in INVALID.items()}}
    cases["path id not a number"] = ("GET", "/items/seven", None, ())
    try:
        yield asyncio.run(collect(cases))
    finally:
        patch.undo()


@pytest.mark.parametrize("case", list(SAME))
def test_same_status_and_bytes_on_every_app(
    answers: dict[str, dict[str, tuple[int, bytes, bytes]]], case: str
) -> None:
    kit = answers["kit"][case]
    assert kit[0] in (200, 201, 404), kit
    for app in APPS:
        assert answers[app][case] == kit, (app, answers[app][case], kit)


def test_the_answers_are_what_the_contract_says(
    answers: dict[str, dict[str, tuple[int, bytes, bytes]]],
) -> None:
    kit = answers["kit"]
    assert kit["item"] == (200, b"application/json", b'{"id":7,"name":"item-7","price_cents":700}')
    assert kit["item 404"] == (404, b"application/json", b'{"detail":"Item not found"}')
    assert msgspec.json.decode(kit["search"][2]) == {
        "limit": 3,
        "offset": 5,
        "tags": ["a", "b"],
        "ids": [5, 6, 7],
    }
    assert kit["whoami"][2] == b'{"tenant":"acme","session":"s-42"}'
    assert kit["whoami no cookie"][2] == b'{"tenant":"acme","session":null}'
    assert kit["account none set"][2] == (
        b'{"id":1,"name":"account-1","email":null,"manager_id":null,"tags":[]}'
    )
    assert kit["account all fields"][2] == (
        b'{"id":6,"name":"account-6","email":"account-6@example.com","manager_id":3,'
        b'"tags":["admin"]}'
    )
    status, _, body = kit["order"]
    assert status == 201
    assert msgspec.json.decode(body)["quantity"] == 5
    assert msgspec.json.decode(body)["note"] == "by the door"


@pytest.mark.parametrize("case", list(INVALID))
def test_bad_input_is_422_with_a_json_detail_everywhere(
    answers: dict[str, dict[str, tuple[int, bytes, bytes]]], case: str
) -> None:
    for app in APPS:
        status, content_type, body = answers[app][case]
        assert status == 422, (app, status, body)
        assert content_type == b"application/json", app
        assert "detail" in msgspec.json.decode(body), app


@pytest.mark.parametrize("case", [name for name, (_, locs) in INVALID.items() if locs])
def test_kit_names_the_fields_fastapi_names(
    answers: dict[str, dict[str, tuple[int, bytes, bytes]]], case: str
) -> None:
    expected = INVALID[case][1]
    apps = (*FASTAPI_SHAPE, "litestar") if case in LITESTAR_LOCS else FASTAPI_SHAPE
    for app in apps:
        detail = msgspec.json.decode(answers[app][case][2])["detail"]
        assert [item["loc"] for item in detail] == expected, (app, detail)


def test_a_path_id_that_is_not_a_number_is_a_client_error(
    answers: dict[str, dict[str, tuple[int, bytes, bytes]]],
) -> None:
    # FastAPI and kit answer 422; a router that matches on the type (Litestar's {id:int}) or a
    # hand-written parser may answer 404: both are the client's error, in JSON.
    for app in APPS:
        status, content_type, body = answers[app]["path id not a number"]
        assert status in (404, 422), (app, status, body)
        assert content_type == b"application/json", app
        assert "detail" in msgspec.json.decode(body), app
    assert answers["kit"]["path id not a number"][0] == 422
    loc = msgspec.json.decode(answers["kit"]["path id not a number"][2])["detail"][0]["loc"]
    assert (
        loc
        == msgspec.json.decode(answers["fastapi"]["path id not a number"][2])["detail"][0]["loc"]
    )
