"""The parameters of a valid request are read in a fast pass (plain values kept, plain ints
parsed, the rest converted by msgspec in one call); every request must read exactly as the
careful pass (each value converted on its own) reads it: the same values, the same errors in
the same order. Headers and cookies read as Starlette reads them."""

import datetime
import enum
import urllib.parse
import uuid
from typing import Annotated, Any, Literal

import hypothesis
import hypothesis.strategies as st
import msgspec
import pytest
from starlette.datastructures import Headers
from starlette.requests import cookie_parser
from starlette.testclient import TestClient

from kit import App, Cookie, Header, Query
from kit.di import compile_plan
from kit.errors import ErrorItem
from kit.params import (
    header_values,
    int_bounds,
    length_bounds,
    parse_cookies,
    source_extractor,
)


class Color(enum.Enum):
    red = "red"
    blue = "blue"


class Prefs(msgspec.Struct):
    theme: str = "light"
    tags: list[str] = []
    size: int = 1


async def handler(
    item_id: int,
    slug: str,
    n: int,
    q: str,
    page: int = 1,
    limit: Annotated[int, Query(), msgspec.Meta(ge=1, le=100)] = 10,
    ratio: float | None = None,
    flag: bool = False,
    color: Color = Color.red,
    ids: list[int] = [],  # noqa: B006
    tags: list[str] = [],  # noqa: B006
    opt: int | None = None,
    when: datetime.date | None = None,
    key: uuid.UUID | None = None,
    order: Literal["asc", "desc"] = "asc",
    name: Annotated[str, Query(), msgspec.Meta(max_length=5)] = "x",
    code: Annotated[str, Query(), msgspec.Meta(min_length=2, max_length=4)] = "ab",
    word: Annotated[str, Query(), msgspec.Meta(pattern="^[a-z]+$", max_length=3)] = "w",
    x_tenant: Annotated[str, Header(), msgspec.Meta(max_length=8)] = "t",
    x_count: Annotated[int, Header()] = 0,
    x_ids: Annotated[list[int], Header()] = [],  # noqa: B006
    x_name: Annotated[str | None, Header()] = None,
    session: Annotated[str | None, Cookie()] = None,
    visits: Annotated[int, Cookie()] = 0,
    prefs: Annotated[Prefs, Cookie()] = Prefs(),
    count: Annotated[int, Cookie()] = 0,  # read after a Struct that may have failed
) -> None:
    return None


async def one_int(item_id: int) -> None:
    return None


async def one_float(ratio: float) -> None:
    return None


async def one_header(x_name: Annotated[str, Header(), msgspec.Meta(max_length=3)]) -> None:
    return None


PLANS = [compile_plan(f, {"item_id", "slug"}) for f in (handler, one_int, one_header)]
PLANS.append(compile_plan(one_float, set()))

TEXTS = st.one_of(
    st.sampled_from(
        [
            "7",
            "0",
            "007",
            "00",
            "-5",
            "-0",
            "+5",
            "1_0",
            "\u0667",
            "\u00b2",
            " 7",
            "7 ",
            "7.0",
            "7.5",
            "1e3",
            "",
            "9" * 18,
            "9" * 19,
            "9" * 40,
            "true",
            "false",
            "1",
            "red",
            "blue",
            "asc",
            "2024-01-02",
            "abc",
            "null",
            "NaN",
            "12345678",
            "100",
            "101",
            "123456789",
            str(uuid.UUID(int=5)),
        ]
    ),
    st.text(max_size=12),
)
# a value each name reads without an error, so that every pass is exercised
GOOD = {
    "item_id": "7",
    "slug": "s",
    "n": "12",
    "q": "x",
    "page": "3",
    "limit": "50",
    "ratio": "1.5",
    "flag": "true",
    "color": "blue",
    "ids": "4",
    "tags": "a",
    "opt": "5",
    "when": "2024-01-02",
    "key": str(uuid.UUID(int=5)),
    "order": "desc",
    "name": "abc",
    "code": "abc",
    "word": "ab",
    "x-tenant": "acme",
    "x-count": "2",
    "x-ids": "3",
    "x-name": "n",
    "x-other": "o",
    "session": "s-1",
    "visits": "9",
    "theme": "dark",
    "count": "3",
    "size": "2",
}
ALIASES = [name for name in GOOD if not name.startswith("x-")][2:18]
HEADERS = [name for name in GOOD if name.startswith("x-")]
COOKIES = ["session", "visits", "theme", "tags", "count", "size"]


def named(names: list[str]) -> st.SearchStrategy[tuple[str, str]]:
    """(name, value): the name's good value half of the time."""
    return st.sampled_from(names).flatmap(
        lambda name: st.tuples(st.just(name), st.one_of(st.just(GOOD[name]), TEXTS))
    )


def read(scope: dict[str, Any], fast: bool) -> tuple[str, list[ErrorItem]]:
    """The values read (as text: a NaN read is equal to a NaN read) and the errors."""
    scope = {**scope}  # the query and cookies are cached in the scope: each pass reads anew
    kwargs: dict[str, Any] = {}
    errors: list[ErrorItem] = []
    for plan in PLANS:
        for location in ("path", "query", "header", "cookie"):
            params = [p for p in plan.params if p.location == location]
            if params:
                before = len(errors)
                source_extractor(location, params, fast=fast)(scope, kwargs, errors)
                if not fast:
                    VALID.append(len(errors) == before)
    return repr(sorted(kwargs.items())), errors


def _cookie_text(pairs: list[tuple[str, str]]) -> str:
    return "; ".join(f"{name}={value}" for name, value in pairs)


@hypothesis.settings(max_examples=1500, derandomize=True, deadline=None)
@hypothesis.given(
    path=st.fixed_dictionaries(
        {"item_id": st.one_of(st.just("7"), TEXTS), "slug": st.one_of(st.just("s"), TEXTS)}
    ),
    required=st.tuples(st.sampled_from(["7", "12", "x"]), TEXTS),
    query=st.lists(named(ALIASES), max_size=6),
    headers=st.lists(named(HEADERS), max_size=4),
    cookies=st.lists(named(COOKIES), max_size=4),
)
def test_the_fast_pass_reads_every_request_as_the_careful_one(
    path: dict[str, str],
    required: tuple[str, str],
    query: list[tuple[str, str]],
    headers: list[tuple[str, str]],
    cookies: list[tuple[str, str]],
) -> None:
    raw_headers = [
        (name.encode(), value.encode("utf-8").decode("latin-1").encode("latin-1"))
        for name, value in headers
    ]
    if cookies:
        raw_headers.append((b"cookie", _cookie_text(cookies).encode()))
    scope = {
        "type": "http",
        "path_params": {**path, "ratio": path["item_id"]},
        "query_string": urllib.parse.urlencode(
            [("n", required[0]), ("q", required[1]), *query]
        ).encode(),
        "headers": raw_headers,
    }
    assert read(scope, fast=True) == read(scope, fast=False)


VALID: list[bool] = []


def test_the_comparison_covers_valid_requests_too() -> None:
    """(run after the one above): a fair share of its sources read without an error."""
    assert VALID.count(True) > len(VALID) // 4, (VALID.count(True), len(VALID))


INTS = [
    int,
    int | None,
    Annotated[int, msgspec.Meta(ge=1, le=100)],
    Annotated[int, msgspec.Meta(gt=0, lt=10, description="documented")],
    Annotated[int, msgspec.Meta(ge=-5)],
    Annotated[int, msgspec.Meta(ge=1), msgspec.Meta(le=9)],
    Annotated[int, msgspec.Meta(multiple_of=2)],
    Annotated[int, msgspec.Meta(le=2**62)],
]


@pytest.mark.parametrize("annotation", INTS, ids=repr)
def test_an_int_is_parsed_without_msgspec_only_where_both_agree(annotation: Any) -> None:
    """The fast pass parses digits itself (and checks plain bounds): what it accepts, msgspec
    reads alike; what it does not, msgspec reads (and explains)."""

    async def one(item_id: Annotated[annotation, Query()]) -> None:
        return None

    plan = compile_plan(one, set())
    extract = source_extractor("query", plan.params)
    careful = source_extractor("query", plan.params, fast=False)
    texts = ["7", "0", "1", "9", "10", "99", "100", "101", "9" * 18, "9" * 19, "9" * 22]
    texts += ["007", "-3", "-7", "+3", "\u0667", "1.0", "1e2", "", " 1"]
    for text in texts:
        scope = {"query_string": urllib.parse.urlencode({"item_id": text}).encode()}
        fast_kwargs: dict[str, Any] = {}
        fast_errors: list[ErrorItem] = []
        extract({**scope}, fast_kwargs, fast_errors)
        kwargs: dict[str, Any] = {}
        errors: list[ErrorItem] = []
        careful({**scope}, kwargs, errors)
        assert (fast_kwargs, fast_errors) == (kwargs, errors), text
        assert type(fast_kwargs["item_id"]) is type(kwargs["item_id"]), text


@pytest.mark.parametrize(
    ("annotation", "bounds"),
    [
        (int, (0, 10**18)),
        (int | None, None),  # (read as int: the extractor takes None off first)
        (Annotated[int, msgspec.Meta(ge=1, le=100)], (1, 100)),
        (Annotated[int, msgspec.Meta(gt=0, lt=10, title="t")], (1, 9)),
        (Annotated[int, msgspec.Meta(ge=1), msgspec.Meta(le=9)], (1, 9)),
        (Annotated[int, msgspec.Meta(ge=1), msgspec.Meta(ge=2)], None),
        (Annotated[int, msgspec.Meta(ge=1.5)], None),
        (Annotated[int, msgspec.Meta(multiple_of=2)], None),
        (Annotated[float, msgspec.Meta(ge=1)], None),
        (bool, None),
    ],
    ids=repr,
)
def test_int_bounds(annotation: Any, bounds: tuple[int, int] | None) -> None:
    assert int_bounds(annotation) == bounds


@pytest.mark.parametrize(
    ("annotation", "bounds"),
    [
        (str, (0, float("inf"))),
        (Annotated[str, msgspec.Meta(max_length=64)], (0, 64)),
        (
            Annotated[str, msgspec.Meta(min_length=1, description="d"), msgspec.Meta(max_length=3)],
            (1, 3),
        ),
        (Annotated[str, msgspec.Meta(pattern="^a")], None),
        (Annotated[str, msgspec.Meta(max_length=3), msgspec.Meta(max_length=4)], None),
        (Annotated[int, msgspec.Meta(max_length=3)], None),
    ],
    ids=repr,
)
def test_length_bounds(annotation: Any, bounds: tuple[int, float] | None) -> None:
    assert length_bounds(annotation) == bounds


@hypothesis.settings(max_examples=1000, derandomize=True)
@hypothesis.given(
    st.lists(
        st.one_of(
            st.sampled_from(["a=1", ' b="x y"', "c", '"q"', "=v", "d=", ";", r'e="\\"a\\""', "  "]),
            st.text(alphabet='ab=;" \\', max_size=10),
        ),
        max_size=6,
    )
)
def test_cookies_read_as_starlette_reads_them(chunks: list[str]) -> None:
    text = ";".join(chunks)
    assert parse_cookies(text) == cookie_parser(text)


@hypothesis.settings(max_examples=500, derandomize=True)
@hypothesis.given(
    st.lists(
        st.tuples(
            st.sampled_from([b"x-a", b"x-b", b"X-A", b"cookie", b"x-c"]),
            st.binary(max_size=6),
        ),
        max_size=6,
    )
)
def test_headers_read_as_starlette_reads_them(raw: list[tuple[bytes, bytes]]) -> None:
    names = frozenset({b"x-a", b"x-b"})
    values, pairs = header_values({"headers": raw}, names)
    starlette = Headers(raw=raw)
    for name in ("x-a", "x-b"):
        assert values.get(name) == starlette.get(name)
        assert [v for k, v in pairs if k == name] == starlette.getlist(name)


def test_a_cookie_struct_with_a_list_field_reads_its_one_value() -> None:
    app = App()

    @app.get("/prefs")
    async def read_prefs(prefs: Annotated[Prefs, Cookie()]) -> Prefs:
        return prefs

    r = TestClient(app).get("/prefs", headers={"cookie": "theme=dark; tags=a"})
    assert (r.status_code, r.json()) == (200, {"theme": "dark", "tags": ["a"], "size": 1})


def test_a_header_sent_twice_reads_its_first_value_as_starlette_does() -> None:
    app = App()

    @app.get("/one")
    async def one(x_name: Annotated[str, Header()]) -> str:
        return x_name

    @app.get("/two")
    async def two(x_name: Annotated[str, Header()], x_other: Annotated[str, Header()]) -> str:
        return x_name + x_other

    headers = [("x-name", "first"), ("x-other", "o"), ("x-name", "second")]
    client = TestClient(app)
    assert client.get("/one", headers=headers).json() == "first"
    assert client.get("/two", headers=headers).json() == "firsto"
