"""Request bodies in, responses out: reading and decoding a JSON body with msgspec, encoding
results, and the translation of msgspec's errors into FastAPI's 422 shape.

msgspec stops at the first error. Valid requests pay only for one C-level decode; the
per-field walk that finds *every* failing field runs only after a failure, and is bounded:
it looks at most at ``MAX_VISITS`` values and reports at most ``MAX_ERRORS`` items, so a
hostile body cannot make the 422 (or the time to build it) large.
"""

from __future__ import annotations

import ast
import itertools
import json
import re
import typing
from asyncio import CancelledError, get_running_loop
from collections.abc import Sequence
from typing import Any

import msgspec
from starlette.concurrency import run_in_threadpool
from starlette.exceptions import HTTPException as StarletteHTTPException
from starlette.requests import ClientDisconnect
from starlette.types import Receive, Scope

from kit.body_timeout import THREAD, BodyTimeout, body_timeout_of, deadlines_of, task_of
from kit.errors import (
    MAX_ERRORS,
    ErrorItem,
    PayloadTooLarge,
    UnsupportedMediaType,
    ValidationFailed,
    more_errors,
)
from kit.formats import FORMAT_ERRORS

encoder = msgspec.json.Encoder()
encode = encoder.encode

_PATH = re.compile(r" - at `\$(.*)`$")
_PATH_PART = re.compile(r"\.([^.\[]+)|\[(\d+|\.\.\.)\]")
_BYTE = re.compile(r"\(byte (\d+)\)")
MAX_VISITS = 2_000  # values the failure-path walk may look at (each is one msgspec.convert)
INLINE_WALK = 64 * 1024  # bodies larger than this have their failure path walked in a thread
MAX_ECHO = 4096  # encoded bytes of an error's "input" echoed as is; larger ones are trimmed

_TYPE_NAMES = {
    "int": ("int", "a valid integer"),
    "float": ("float", "a valid number"),
    "bool": ("bool", "a valid boolean"),
    "str": ("string", "a valid string"),
    "bytes": ("bytes", "valid bytes"),
    "array": ("list", "a valid list"),
    "object": ("dict", "a valid dictionary"),
    "null": ("none_required", "None"),
    "datetime": ("datetime", "a valid datetime"),
    "date": ("date", "a valid date"),
    "time": ("time", "a valid time"),
    "uuid": ("uuid", "a valid UUID"),
    "decimal": ("decimal", "a valid decimal"),
}
_BOUNDS = {
    ">=": ("greater_than_equal", "greater than or equal to", "ge"),
    ">": ("greater_than", "greater than", "gt"),
    "<=": ("less_than_equal", "less than or equal to", "le"),
    "<": ("less_than", "less than", "lt"),
}

_EXPECTED_GOT = re.compile(r"^Expected `([^`]+)`, got `([^`]+)`$")
_BOUND = re.compile(r"^Expected `(int|float|decimal)` (>=|>|<=|<) (\S+)$")
_MULTIPLE = re.compile(r"^Expected `(int|float|decimal)` that's a multiple of (\S+)$")
_LENGTH = re.compile(r"^Expected `(str|array|object|bytes)` of length (>=|<=) (\d+)$")
_PATTERN = re.compile(r"^Expected `str` matching regex (.+)$")
_MISSING = re.compile(r"^Object missing required field `([^`]+)`$")
_UNKNOWN = re.compile(r"^Object contains unknown field `([^`]+)`$")


def _number(text: str) -> int | float:
    try:
        return int(text)
    except ValueError:
        return float(text)


def translate(message: str, value: Any, loc: list[str | int]) -> ErrorItem:
    """One msgspec ValidationError message (path already stripped) as a FastAPI error item."""
    if m := _MISSING.match(message):
        return ErrorItem("missing", [*loc, m[1]], "Field required", value)
    if m := _UNKNOWN.match(message):
        field = m[1]
        field_input = value.get(field) if isinstance(value, dict) else None
        return ErrorItem(
            "extra_forbidden", [*loc, field], "Extra inputs are not permitted", field_input
        )
    if m := _EXPECTED_GOT.match(message):
        expected = m[1].split(" | ")[0]
        name, phrase = _TYPE_NAMES.get(expected, (expected, f"a valid {expected}"))
        if isinstance(value, str) and name in ("int", "float", "bool"):
            suffix = {"int": "integer", "float": "number", "bool": "boolean"}[name]
            return ErrorItem(
                f"{name}_parsing",
                loc,
                f"Input should be {phrase}, unable to parse string as an {suffix}"
                if name == "int"
                else f"Input should be {phrase}, unable to interpret input",
                value,
            )
        return ErrorItem(f"{name}_type", loc, f"Input should be {phrase}", value)
    if m := _BOUND.match(message):
        kind, phrase, key = _BOUNDS[m[2]]
        limit = _number(m[3])
        return ErrorItem(kind, loc, f"Input should be {phrase} {limit}", value, {key: limit})
    if m := _MULTIPLE.match(message):
        limit = _number(m[2])
        return ErrorItem(
            "multiple_of",
            loc,
            f"Input should be a multiple of {limit}",
            value,
            {"multiple_of": limit},
        )
    if m := _LENGTH.match(message):
        container, op, size = m[1], m[2], int(m[3])
        if container == "str":
            short = op == ">="
            unit = "character" if size == 1 else "characters"
            return ErrorItem(
                "string_too_short" if short else "string_too_long",
                loc,
                f"String should have at {'least' if short else 'most'} {size} {unit}",
                value,
                {"min_length" if short else "max_length": size},
            )
        short = op == ">="
        unit = "item" if size == 1 else "items"
        return ErrorItem(
            "too_short" if short else "too_long",
            loc,
            f"{'List' if container == 'array' else 'Value'} should have at "
            f"{'least' if short else 'most'} {size} {unit}",
            value,
            {"min_length" if short else "max_length": size},
        )
    if m := _PATTERN.match(message):
        try:  # msgspec quotes the pattern as a Python literal
            pattern = str(ast.literal_eval(m[1]))
        except (ValueError, SyntaxError):
            pattern = m[1].strip("'\"")
        if known := FORMAT_ERRORS.get(pattern):  # EmailStr, HttpUrl...: words, not a regex
            return ErrorItem(known[0], loc, known[1], value)
        return ErrorItem(
            "string_pattern_mismatch",
            loc,
            f"String should match pattern '{pattern}'",
            value,
            {"pattern": pattern},
        )
    if message.startswith("Invalid enum value"):
        return ErrorItem("enum", loc, "Input should be one of the allowed values", value)
    if message == "Number out of range":
        return ErrorItem("number_out_of_range", loc, "Number is out of the supported range", value)
    return ErrorItem("value_error", loc, message, value)


def split_path(message: str) -> tuple[str, list[str | int]]:
    """Split ``"<message> - at `$.a[0]`"`` into the message and ``["a", 0]``."""
    m = _PATH.search(message)
    if m is None:
        return message, []
    parts: list[str | int] = []
    for name, index in _PATH_PART.findall(m[1]):
        if name:
            parts.append(name)
        elif index != "...":
            parts.append(int(index))
        else:
            parts.append("*")
    return message[: m.start()], parts


def _descend(value: Any, path: Sequence[str | int]) -> Any:
    for part in path:
        try:
            value = value[part]
        except (KeyError, IndexError, TypeError):
            return None
    return value


def error_from_exception(
    exc: msgspec.ValidationError, value: Any, loc: list[str | int]
) -> ErrorItem:
    message, path = split_path(str(exc))
    return translate(message, _descend(value, path), [*loc, *path])


def _unwrap(tp: Any) -> Any:
    while typing.get_origin(tp) is typing.Annotated:
        tp = typing.get_args(tp)[0]
    return tp


class _Walk:
    """What the failure-path walk may still spend, and how many errors it left out."""

    __slots__ = ("complete", "found", "visits")

    def __init__(self) -> None:
        self.visits = MAX_VISITS
        self.found = 0  # errors found, shown or not
        self.complete = True  # False once the walk stopped early: ``found`` is then a floor

    def spent(self) -> bool:
        if self.visits <= 0:
            self.complete = False
            return True
        self.visits -= 1
        return False


class Duplicates(list[Any]):
    """Every value a JSON object gave one key, in order (msgspec validates each of them)."""


def collect_errors(
    value: Any, tp: Any, loc: list[str | int], walk: _Walk | None = None
) -> list[ErrorItem]:
    """Failing fields of ``value`` against ``tp`` (empty when it converts cleanly), at most
    ``MAX_ERRORS`` of them; ``walk`` bounds the work and counts what was left out."""
    if walk is None:
        walk = _Walk()
    if walk.spent():
        return []
    if isinstance(value, Duplicates):  # the first occurrence that fails is the one reported
        for occurrence in value:
            if failed := collect_errors(occurrence, tp, loc, walk):
                return failed
        return []
    try:
        msgspec.convert(value, tp, strict=False)
    except msgspec.ValidationError as exc:
        first = error_from_exception(exc, value, loc)
    else:
        return []
    inner = _unwrap(tp)
    errors: list[ErrorItem] = []

    def add(found: list[ErrorItem]) -> None:
        errors.extend(found[: MAX_ERRORS - len(errors)])

    if isinstance(inner, type) and issubclass(inner, msgspec.Struct) and isinstance(value, dict):
        for field in msgspec.structs.fields(inner):
            if field.encode_name not in value:
                if field.required:
                    walk.found += 1
                    add([ErrorItem("missing", [*loc, field.encode_name], "Field required", value)])
                continue
            add(
                collect_errors(
                    value[field.encode_name], field.type, [*loc, field.encode_name], walk
                )
            )
        add(_extra_fields(inner, value, loc, walk))
    elif typing.get_origin(inner) in (list, tuple, set, frozenset) and isinstance(value, list):
        args = typing.get_args(inner)
        if len(args) == 1 or (len(args) == 2 and args[1] is Ellipsis):
            for index, item in enumerate(value):
                if walk.visits <= 0:
                    walk.complete = False
                    break
                add(collect_errors(item, args[0], [*loc, index], walk))
    elif typing.get_origin(inner) is dict and isinstance(value, dict):
        value_type = typing.get_args(inner)[1] if typing.get_args(inner) else Any
        for key, item in value.items():
            if walk.visits <= 0:
                walk.complete = False
                break
            add(collect_errors(item, value_type, [*loc, key], walk))
    # Constraints on the container itself (length, unknown fields) only show in the first error.
    if first not in errors and (
        not errors or first.type in ("too_long", "too_short", "extra_forbidden")
    ):
        walk.found += 1
        errors.insert(0, first)
        del errors[MAX_ERRORS:]
    return errors


def _extra_fields(
    struct: type[msgspec.Struct], value: dict[str, Any], loc: list[str | int], walk: _Walk
) -> list[ErrorItem]:
    """The unknown fields of a Struct that forbids them, each one item, beside the others
    (msgspec names only the first error it meets, which may be another field's)."""
    config = struct.__struct_config__
    if not config.forbid_unknown_fields:
        return []
    known = {field.encode_name for field in msgspec.structs.fields(struct)}
    if isinstance(config.tag_field, str):
        known.add(config.tag_field)
    extra: list[ErrorItem] = []
    for key in value:
        if key not in known:
            walk.found += 1  # all counted, at most MAX_ERRORS built
            if len(extra) < MAX_ERRORS:
                item = ErrorItem(
                    "extra_forbidden", [*loc, key], "Extra inputs are not permitted", value[key]
                )
                extra.append(item)
    return extra


def _keeping_duplicates(pairs: list[tuple[str, Any]]) -> dict[str, Any]:
    out: dict[str, Any] = {}
    for key, item in pairs:
        if key not in out:
            out[key] = item
        elif isinstance(out[key], Duplicates):
            out[key].append(item)
        else:
            out[key] = Duplicates([out[key], item])
    return out


def _trimmed(value: Any, depth: int = 0) -> Any:
    """A prefix of ``value``: at most 10 items per container, two levels, 100 characters."""
    if isinstance(value, str):
        return value[:100]
    if isinstance(value, list):
        return [_trimmed(v, depth + 1) for v in value[:10]] if depth < 2 else []
    if isinstance(value, dict):
        if depth >= 2:
            return {}
        return {k[:100]: _trimmed(v, depth + 1) for k, v in itertools.islice(value.items(), 10)}
    return value


def _echo_bounded(errors: list[ErrorItem]) -> None:
    """Trim echoed inputs over ``MAX_ECHO`` bytes: a hostile body must not make a big 422."""
    for item in errors:
        if isinstance(item.input, (str, list, dict)) and len(encode(item.input)) > MAX_ECHO:
            item.input = _trimmed(item.input)


def body_errors(raw: bytes, tp: Any, exc: msgspec.ValidationError) -> list[ErrorItem]:
    """All failing fields (at most ``MAX_ERRORS``, then one item counting the rest) of a JSON
    body that decoded but did not validate against ``tp``."""
    try:
        value = msgspec.json.decode(raw)
    except (msgspec.DecodeError, RecursionError):
        return [error_from_exception(exc, None, ["body"])]
    walk = _Walk()
    errors = collect_errors(value, tp, ["body"], walk)
    if not errors and walk.complete:
        # The value validates, so the body repeated a key: msgspec checked every occurrence,
        # the untyped decode kept only the last. Parse again keeping all of them (rare, so the
        # stdlib parser's speed does not matter).
        try:
            value = json.loads(raw, object_pairs_hook=_keeping_duplicates)
        except (ValueError, RecursionError):
            pass
        else:
            walk = _Walk()
            errors = collect_errors(value, tp, ["body"], walk)
    if not errors:
        errors = [error_from_exception(exc, value, ["body"])]
    _echo_bounded(errors)
    if walk.found > len(errors) or not walk.complete:
        errors.append(more_errors(walk.found - len(errors), exact=walk.complete))
    return errors


def json_invalid(exc: Exception) -> ErrorItem:
    message = str(exc)
    m = _BYTE.search(message)
    position: list[str | int] = [int(m[1])] if m else []
    if isinstance(exc, UnicodeDecodeError):
        message, position = "Invalid UTF-8", [exc.start]
    elif isinstance(exc, RecursionError):
        message = "Nesting too deep"
    return ErrorItem(
        "json_invalid", ["body", *position], "JSON decode error", {}, {"error": message}
    )


def is_json(content_type: bytes) -> bool:
    media = content_type.split(b";", 1)[0].strip().lower()
    return media == b"application/json" or (
        media.startswith(b"application/") and media.endswith(b"+json")
    )


class BodyDecoder:
    """One route's JSON body: its type's decoder, size limit and default, built at registration."""

    __slots__ = ("decoder", "default", "limit", "required", "type")

    def __init__(self, tp: Any, *, limit: int, required: bool, default: Any) -> None:
        self.type = tp
        self.decoder = msgspec.json.Decoder(tp, strict=False)
        self.limit = limit
        self.required = required
        self.default = default

    async def decode_body(self, scope: Scope, receive: Receive) -> Any:
        """Read and decode the body: 413 over the limit (as soon as that is known), 408 past
        KIT_BODY_TIMEOUT, 415 not JSON, 422 invalid. One coroutine: every JSON body passes
        here, and a reader coroutine of its own cost each about as much as its lookups."""
        limit = self.limit
        declared = content_type = None  # the first of each, in one pass
        for key, value in scope["headers"]:
            if key == b"content-length":
                if declared is None:
                    declared = value
            elif key == b"content-type" and content_type is None:
                content_type = value
        if declared is not None:
            try:
                if int(declared) > limit:
                    raise PayloadTooLarge(limit)
            except ValueError:
                raise StarletteHTTPException(400, "Invalid Content-Length header") from None
        # KIT_BODY_TIMEOUT (kit.body_timeout), inlined: the deadline of this task's read
        try:
            seconds: float = scope["app"].settings.body_timeout
        except (KeyError, AttributeError):
            seconds = body_timeout_of(scope)
        loop = get_running_loop()
        task = task_of(loop)
        deadlines = None
        if seconds and task is not None:
            try:
                deadlines = THREAD.deadlines
            except AttributeError:
                deadlines = deadlines_of(loop)
            if deadlines.loop is not loop:
                deadlines = deadlines_of(loop)
            deadlines.arm(task, seconds)
        raw = b""
        chunks: list[bytes] | None = None  # only for a body that comes in several messages
        size = 0
        try:
            while True:
                message = await receive()
                if message["type"] == "http.disconnect":
                    scope["kit.client_gone"] = True  # logged and counted as 499, not 500
                    raise ClientDisconnect()
                chunk = message.get("body", b"")
                if chunk:
                    size += len(chunk)
                    if size > limit:
                        raise PayloadTooLarge(limit)
                    if not raw:
                        raw = chunk
                    elif chunks is None:
                        chunks = [raw, chunk]
                    else:
                        chunks.append(chunk)
                if not message.get("more_body", False):
                    break
        except CancelledError:
            if deadlines is None or task not in deadlines.expired:
                raise  # the server cancelled it (client gone, shutdown): not ours to answer
            assert task is not None
            task.uncancel()
            raise BodyTimeout(seconds) from None
        finally:
            if deadlines is not None:
                del deadlines.deadlines[task]
                if deadlines.expired:
                    deadlines.expired.discard(task)
        if chunks is not None:
            raw = b"".join(chunks)
        if not raw:
            if self.required:
                raise ValidationFailed([ErrorItem("missing", ["body"], "Field required", None)])
            return self.default
        if content_type != b"application/json" and (
            content_type is None or not is_json(content_type)
        ):
            raise UnsupportedMediaType()
        try:
            return self.decoder.decode(raw)
        except msgspec.ValidationError as exc:
            if len(raw) > INLINE_WALK:  # the walk is bounded, but not free: keep the loop free
                errors = await run_in_threadpool(body_errors, raw, self.type, exc)
            else:
                errors = body_errors(raw, self.type, exc)
            raise ValidationFailed(errors) from None
        except (msgspec.DecodeError, UnicodeDecodeError, RecursionError) as exc:
            raise ValidationFailed([json_invalid(exc)]) from None
