"""kit.formats: msgspec (Python's ``re``) and the documented schema (ECMA-262 regexes and the
``format`` checks of jsonschema_rs, the validator schemathesis uses) accept the same strings."""

from __future__ import annotations

import re
from typing import Annotated, Any

import jsonschema_rs
import msgspec
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from kit import EmailStr, HttpUrl, Slug, UUIDStr
from kit.codec import collect_errors
from kit.formats import documented_pattern
from kit.openapi.schemas import SchemaSet

TYPES: dict[str, Any] = {"email": EmailStr, "url": HttpUrl, "slug": Slug, "uuid": UUIDStr}

VALID = {
    "email": [
        "ada@example.com",
        "first.last+tag@mail.example.co.uk",
        "{|}~!#$%&'*/=?^_`@x.yz",
        "A@B.CO",
        "a" * 64 + "@example.com",
        "a@" + ".".join(["b" * 63] * 3) + ".cc",  # 254 characters
    ],
    "url": [
        "https://example.com",
        "http://localhost:8000/items?cursor=abc&limit=10#top",
        "HTTPS://Example.COM/a%20b/c;d=e/@f:g",
        "http://10.0.0.1:65535/",
        "https://xn--bcher-kva.example/?q=%C3%BC&x=/?",
    ],
    "slug": ["a", "spring-sale-2026", "0", "x" * 100],
    "uuid": ["123e4567-e89b-12d3-a456-426614174000", "ABCDEF01-2345-6789-ABCD-EF0123456789"],
}
INVALID = {
    "email": [
        "ada@example.com\n",  # Python's `$` would let the newline through
        "ada@localhost",
        "a..b@example.com",
        ".a@example.com",
        "a@-example.com",
        "a@example-.com",
        "a b@example.com",
        "ädä@example.com",
        "a" * 65 + "@example.com",
        '"quoted"@example.com',
        "a@[127.0.0.1]",
        "",
    ],
    "url": [
        "https://example.com\n",
        "ftp://example.com",
        "https://",
        "https://exa mple.com",
        "https://example.com/ä",
        "https://example.com/%zz",
        "https://example.com/[x]",
        "https://example.com/#a#b",
        "https://user:pw@example.com",
        "https://[::1]/",
        "https://example.com:65536/",
        "//example.com",
    ],
    "slug": ["", "A", "a--b", "-a", "a-", "a_b", "a b", "a\n", "\u0661\u0662", "x" * 101],
    "uuid": [
        "123e4567e89b12d3a456426614174000",
        "{123e4567-e89b-12d3-a456-426614174000}",
        "123e4567-e89b-12d3-a456-42661417400g",
        "123e4567-e89b-12d3-a456-426614174000\n",
        "\u066123e4567-e89b-12d3-a456-426614174000",  # an Arabic-Indic digit one
    ],
}


def documented_schema(tp: Any) -> dict[str, Any]:
    schemas = SchemaSet()
    slot = schemas.slot(tp)
    schemas.resolve()
    return slot


VALIDATORS = {
    name: jsonschema_rs.Draft202012Validator(documented_schema(tp), validate_formats=True)
    for name, tp in TYPES.items()
}


def kit_accepts(name: str, value: str) -> bool:
    try:
        msgspec.convert(value, TYPES[name])
    except msgspec.ValidationError:
        return False
    return True


@pytest.mark.parametrize(("name", "value"), [(n, v) for n, vs in VALID.items() for v in vs])
def test_valid_examples_pass_both(name: str, value: str) -> None:
    assert kit_accepts(name, value)
    assert VALIDATORS[name].is_valid(value)


@pytest.mark.parametrize(("name", "value"), [(n, v) for n, vs in INVALID.items() for v in vs])
def test_invalid_examples_fail_both(name: str, value: str) -> None:
    assert not kit_accepts(name, value)
    assert not VALIDATORS[name].is_valid(value)


def test_the_document_shows_ecma_patterns() -> None:
    for tp in TYPES.values():
        pattern = documented_schema(tp)["pattern"]
        assert pattern.startswith("^(?:")
        assert pattern.endswith(")$")
        assert "\\Z" not in pattern
        assert "(?" not in pattern.replace("(?:", "")  # no lookaround: fuzzers draw from it
    assert documented_pattern(r"\Aa[\Z]\\Z\Z") == r"^a[\Z]\\Z$"  # only anchors outside classes


# Characters where Python and ECMA regexes, or a pattern and its format, are known to differ.
TRICKY = "\n\r\t \u00a0\u2028\u0661\u00e4\u212a.-_@:/?#[]%~!$&'()*+,;=\"<>\\^`{|}"


def _strings(name: str) -> st.SearchStrategy[str]:
    # what a fuzzer draws: the documented pattern read by Python with `$` as the end of input
    drawn = re.compile(documented_schema(TYPES[name])["pattern"][:-1] + r"\Z")
    valid = st.from_regex(drawn)
    mutated = st.tuples(valid, st.integers(0, 300), st.sampled_from(TRICKY)).map(
        lambda t: t[0][: t[1] % (len(t[0]) + 1)] + t[2] + t[0][t[1] % (len(t[0]) + 1) :]
    )
    trailing = st.tuples(valid, st.sampled_from(TRICKY)).map("".join)
    return valid | mutated | trailing | st.text(TRICKY + "abcAZ09", max_size=40)


@pytest.mark.parametrize("name", TYPES)
def test_kit_and_the_schema_agree_on_drawn_and_mutated_strings(name: str) -> None:
    @settings(
        max_examples=150,
        deadline=None,
        database=None,
        derandomize=True,
        suppress_health_check=[HealthCheck.too_slow, HealthCheck.filter_too_much],
    )
    @given(_strings(name))
    def agree(value: str) -> None:
        assert kit_accepts(name, value) == VALIDATORS[name].is_valid(value), value

    agree()


# the README's example: once a TypeError (two Metas setting max_length)
ShortSlug = Annotated[Slug, msgspec.Meta(max_length=40)]


class Page(msgspec.Struct):
    slug: ShortSlug


def test_a_ready_type_narrows_with_another_meta() -> None:
    short_slug = ShortSlug
    decoder = msgspec.json.Decoder(Page)
    assert decoder.decode(b'{"slug": "spring-sale"}') == Page("spring-sale")
    errors = collect_errors("x" * 41, short_slug, ["body", "slug"])
    assert [(e.type, e.ctx) for e in errors] == [("string_too_long", {"max_length": 40})]
    # tightest wins: a looser Meta leaves the type's own bound in place
    assert not kit_accepts_type("x" * 101, Annotated[Slug, msgspec.Meta(max_length=200)])
    schema = documented_schema(short_slug)
    assert (schema["maxLength"], schema["minLength"]) == (40, 1)


def kit_accepts_type(value: str, tp: Any) -> bool:
    try:
        msgspec.convert(value, tp)
    except msgspec.ValidationError:
        return False
    return True


@pytest.mark.parametrize(
    ("tp", "value", "kind", "msg"),
    [
        (HttpUrl, "not a url", "url_parsing", "Input should be a valid URL"),
        (HttpUrl, "https://x.io/" + "a" * 3000, "url_parsing", "Input should be a valid URL"),
        (EmailStr, "nobody", "value_error", "value is not a valid email address"),
        (UUIDStr, "123", "uuid_parsing", "Input should be a valid UUID"),
    ],
)
def test_a_ready_type_fails_in_words_not_a_regex(tp: Any, value: str, kind: str, msg: str) -> None:
    (error,) = collect_errors(value, tp, ["body", "field"])
    assert (error.type, error.msg, error.input) == (kind, msg, value)
    errors = collect_errors("A B", Slug, ["query", "slug"])
    assert errors[0].msg.startswith("String should be a slug")
    assert len(errors[0].msg) < 120
