"""kit.codec: msgspec's error messages, parsed by regex, pinned one message kind at a time.

If a msgspec release rewords a message, one of these fails instead of a wrong 422 going out.
"""

from __future__ import annotations

import enum
from typing import Annotated, Any

import msgspec
import pytest

from kit.codec import body_errors, error_from_exception, json_invalid, split_path


class Color(enum.Enum):
    RED = "red"


class Item(msgspec.Struct, forbid_unknown_fields=True):
    name: str
    count: int = 0


def first_error(value: Any, tp: Any) -> tuple[str, list[str | int], dict[str, Any] | None]:
    with pytest.raises(msgspec.ValidationError) as info:
        msgspec.convert(value, tp, strict=False)
    item = error_from_exception(info.value, value, ["body"])
    return item.type, item.loc, item.ctx


@pytest.mark.parametrize(
    ("value", "tp", "kind", "loc", "ctx"),
    [
        ({}, Item, "missing", ["body", "name"], None),
        ({"name": "a", "x": 1}, Item, "extra_forbidden", ["body", "x"], None),
        ([1], int, "int_type", ["body"], None),
        ("abc", int, "int_parsing", ["body"], None),
        ("abc", float, "float_parsing", ["body"], None),
        ("maybe", bool, "bool_parsing", ["body"], None),
        (1, str, "string_type", ["body"], None),
        (1, list[int], "list_type", ["body"], None),
        (1, dict[str, int], "dict_type", ["body"], None),
        (-1, Annotated[int, msgspec.Meta(ge=0)], "greater_than_equal", ["body"], {"ge": 0}),
        # msgspec states integer gt/lt as ge/le of the next integer
        (0, Annotated[int, msgspec.Meta(gt=0)], "greater_than_equal", ["body"], {"ge": 1}),
        (11, Annotated[int, msgspec.Meta(le=10)], "less_than_equal", ["body"], {"le": 10}),
        (10, Annotated[int, msgspec.Meta(lt=10)], "less_than_equal", ["body"], {"le": 9}),
        (0.0, Annotated[float, msgspec.Meta(gt=0)], "greater_than", ["body"], {"gt": 0}),
        (10.0, Annotated[float, msgspec.Meta(lt=10)], "less_than", ["body"], {"lt": 10}),
        (1.5, Annotated[float, msgspec.Meta(ge=2.5)], "greater_than_equal", ["body"], {"ge": 2.5}),
        (
            7,
            Annotated[int, msgspec.Meta(multiple_of=5)],
            "multiple_of",
            ["body"],
            {"multiple_of": 5},
        ),
        (
            "",
            Annotated[str, msgspec.Meta(min_length=1)],
            "string_too_short",
            ["body"],
            {"min_length": 1},
        ),
        (
            "abc",
            Annotated[str, msgspec.Meta(max_length=2)],
            "string_too_long",
            ["body"],
            {"max_length": 2},
        ),
        (
            [],
            Annotated[list[int], msgspec.Meta(min_length=1)],
            "too_short",
            ["body"],
            {"min_length": 1},
        ),
        (
            [1, 2],
            Annotated[list[int], msgspec.Meta(max_length=1)],
            "too_long",
            ["body"],
            {"max_length": 1},
        ),
        (
            "x",
            Annotated[str, msgspec.Meta(pattern="^a+$")],
            "string_pattern_mismatch",
            ["body"],
            {"pattern": "^a+$"},
        ),
        ("blue", Color, "enum", ["body"], None),
        # msgspec names a dict value's key "[...]"; kit reports it as "*" and, not knowing the
        # key, cannot show the input (so "type", not "parsing"; collect_errors finds the key)
        ({"a": [1, "x"]}, dict[str, list[int]], "int_type", ["body", "*", 1], None),
    ],
)
def test_every_message_kind_is_recognised(
    value: Any, tp: Any, kind: str, loc: list[str | int], ctx: dict[str, Any] | None
) -> None:
    found_kind, found_loc, found_ctx = first_error(value, tp)
    assert (found_kind, found_loc) == (kind, loc)
    if ctx is not None:
        assert found_ctx == ctx


def test_a_number_out_of_range_is_recognised() -> None:
    with pytest.raises(msgspec.ValidationError) as info:
        msgspec.json.decode(b"1e400", type=float)
    assert error_from_exception(info.value, None, ["body"]).type == "number_out_of_range"


def test_an_unknown_message_is_a_value_error_with_msgspecs_text() -> None:
    class Custom(msgspec.Struct):
        def __post_init__(self) -> None:
            raise ValueError("custom rule broken")

    with pytest.raises(msgspec.ValidationError) as info:
        msgspec.convert({}, Custom)
    item = error_from_exception(info.value, {}, ["body"])
    assert (item.type, item.msg) == ("value_error", "custom rule broken")


def test_split_path_reads_fields_indexes_and_keys() -> None:
    assert split_path("Expected `int`, got `str` - at `$.a[0].b`") == (
        "Expected `int`, got `str`",
        ["a", 0, "b"],
    )
    assert split_path("Expected `int`, got `str` - at `$[...]`") == (
        "Expected `int`, got `str`",
        ["*"],
    )
    assert split_path("Object missing required field `x`") == (
        "Object missing required field `x`",
        [],
    )


def test_invalid_json_reports_the_byte_position() -> None:
    with pytest.raises(msgspec.DecodeError) as info:
        msgspec.json.decode(b'{"a": ]')
    item = json_invalid(info.value)
    assert item.type == "json_invalid"
    assert item.loc == ["body", 6]


def test_body_errors_lists_every_failing_field() -> None:
    raw = b'{"name": 1, "count": "many"}'
    with pytest.raises(msgspec.ValidationError) as info:
        msgspec.json.decode(raw, type=Item, strict=False)
    errors = body_errors(raw, Item, info.value)
    assert [(e.type, e.loc) for e in errors] == [
        ("string_type", ["body", "name"]),
        ("int_parsing", ["body", "count"]),
    ]


class Aged(msgspec.Struct):
    age: Annotated[int, msgspec.Meta(le=150)]


@pytest.mark.parametrize("raw", [b'{"age":999,"age":1}', b'{"age":1,"age":999}'])
def test_a_repeated_key_reports_the_occurrence_that_failed(raw: bytes) -> None:
    with pytest.raises(msgspec.ValidationError) as info:
        msgspec.json.decode(raw, type=Aged)
    (item,) = body_errors(raw, Aged, info.value)
    assert (item.type, item.loc, item.input) == ("less_than_equal", ["body", "age"], 999)


def test_the_error_list_is_capped_with_a_count_of_the_rest() -> None:
    raw = msgspec.json.encode({"age": 1, "tags": list(range(60))})
    tp = dict[str, list[str]]
    with pytest.raises(msgspec.ValidationError) as info:
        msgspec.json.decode(raw, type=tp)
    errors = body_errors(raw, tp, info.value)
    assert len(errors) == 51
    assert errors[-1].type == "too_many_errors"
    assert errors[-1].ctx == {"shown": 50, "more": 11, "exact": True}
