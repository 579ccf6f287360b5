"""Parameter markers, and how a handler's signature becomes a list of extractors.

Everything here runs once, when a route is registered. Each extractor is a closure that reads
the parameters of one source (path, query, headers, cookies) from the request's scope and
converts them with msgspec; per request there is no introspection left to do.
"""

from __future__ import annotations

import collections.abc
import dataclasses
import datetime
import decimal
import enum
import inspect
import types
import typing
import urllib.parse
import uuid
from collections.abc import Callable
from dataclasses import dataclass
from http.cookies import _unquote  # what Starlette unquotes with
from typing import Any, Literal

import msgspec
from starlette.background import BackgroundTasks
from starlette.requests import HTTPConnection
from starlette.responses import Response
from starlette.types import Scope
from starlette.websockets import WebSocket

from kit.codec import collect_errors, error_from_exception
from kit.errors import ErrorItem

_NO_DEFAULT: Any = inspect.Parameter.empty

Location = Literal["path", "query", "header", "cookie", "body"]


_CONSTRAINTS = frozenset(
    {"gt", "ge", "lt", "le", "multiple_of", "pattern", "min_length", "max_length", "title"}
)


class Param:
    """Base of the markers: where a value comes from, and how it is documented."""

    location: Location

    def __init__(
        self,
        default: Any = _NO_DEFAULT,
        *,
        alias: str | None = None,
        description: str | None = None,
        examples: list[Any] | None = None,
        deprecated: bool = False,
        include_in_schema: bool = True,
        **constraints: Any,
    ) -> None:
        # FastAPI's Query(max_length=50), Path(ge=1): msgspec's Meta, added to the type when
        # the route is compiled.
        unknown = set(constraints) - _CONSTRAINTS
        if unknown:
            raise TypeError(
                f"{type(self).__name__}() got {', '.join(sorted(unknown))}; it takes "
                f"{', '.join(sorted(_CONSTRAINTS))} as constraints (msgspec.Meta's names)"
            )
        self.meta = msgspec.Meta(**constraints) if constraints else None
        self.default = default
        self.alias = alias
        self.description = description
        self.examples = examples
        self.deprecated = deprecated
        self.include_in_schema = include_in_schema

    def __repr__(self) -> str:
        return f"{type(self).__name__}(alias={self.alias!r})"


class Path(Param):
    location = "path"


class Query(Param):
    location = "query"


class Header(Param):
    location = "header"

    def __init__(self, default: Any = _NO_DEFAULT, *, convert_underscores: bool = True, **kw: Any):
        super().__init__(default, **kw)
        self.convert_underscores = convert_underscores


class Cookie(Param):
    location = "cookie"


class Body(Param):
    location = "body"

    def __init__(
        self,
        default: Any = _NO_DEFAULT,
        *,
        media_type: str = "application/json",
        max_size: int | None = None,
        **kw: Any,
    ) -> None:
        super().__init__(default, **kw)
        self.media_type = media_type
        self.max_size = max_size


_SCALARS: tuple[type, ...] = (
    str,
    int,
    float,
    bool,
    bytes,
    decimal.Decimal,
    uuid.UUID,
    datetime.datetime,
    datetime.date,
    datetime.time,
    datetime.timedelta,
    enum.Enum,
)
_SEQUENCES = (list, tuple, set, frozenset)


def unwrap_annotated(tp: Any) -> tuple[Any, list[Any]]:
    """``Annotated[T, a, b]`` → ``(T, [a, b])``; nested Annotated are flattened."""
    extras: list[Any] = []
    while typing.get_origin(tp) is typing.Annotated:
        args = typing.get_args(tp)
        tp, extras = args[0], [*args[1:], *extras]
    return tp, extras


def _union_args(tp: Any) -> tuple[Any, ...] | None:
    if typing.get_origin(tp) in (typing.Union, types.UnionType):
        return typing.get_args(tp)
    return None


def is_scalar(tp: Any) -> bool:
    tp, _ = unwrap_annotated(tp)
    if tp is Any:
        return True
    if typing.get_origin(tp) is Literal:
        return True
    args = _union_args(tp)
    if args is not None:
        return all(a is type(None) or is_scalar(a) for a in args)
    return isinstance(tp, type) and issubclass(tp, _SCALARS)


def is_sequence_of_scalars(tp: Any) -> bool:
    tp, _ = unwrap_annotated(tp)
    args = _union_args(tp)
    if args is not None:
        rest = [a for a in args if a is not type(None)]
        return len(rest) == 1 and is_sequence_of_scalars(rest[0])
    if typing.get_origin(tp) in _SEQUENCES or tp in _SEQUENCES:
        inner = typing.get_args(tp)
        return all(a is Ellipsis or is_scalar(a) for a in inner)
    return False


def is_struct(tp: Any) -> bool:
    tp, _ = unwrap_annotated(tp)
    return isinstance(tp, type) and issubclass(tp, msgspec.Struct)


def is_body_type(tp: Any) -> bool:
    """Whether ``tp`` is a JSON document's shape: a Struct, dataclass, TypedDict, attrs class,
    NamedTuple, dict or collection (or a union of those with scalars or None)."""
    tp, _ = unwrap_annotated(tp)
    args = _union_args(tp)
    if args is not None:
        shapes = [a for a in args if a is not type(None) and not is_scalar(a)]
        return bool(shapes) and all(is_body_type(a) for a in shapes)
    origin = typing.get_origin(tp) or tp
    if origin in (dict, list, tuple, set, frozenset) or origin in _ABSTRACT_COLLECTIONS:
        return all(
            a is Ellipsis or a is object or is_scalar(a) or is_body_type(a)
            for a in typing.get_args(tp)
        )
    if not isinstance(tp, type):
        return False
    return (
        issubclass(tp, msgspec.Struct)
        or dataclasses.is_dataclass(tp)
        or typing.is_typeddict(tp)
        or hasattr(tp, "__attrs_attrs__")
        or (issubclass(tp, tuple) and hasattr(tp, "_fields"))
    )


_ABSTRACT_COLLECTIONS = (
    collections.abc.Mapping,
    collections.abc.MutableMapping,
    collections.abc.Sequence,
    collections.abc.MutableSequence,
    collections.abc.Set,
    collections.abc.MutableSet,
)


class UnbindableParameter(TypeError):
    """A handler parameter kit cannot read from a request; the message says what would work."""


def type_name(tp: Any) -> str:
    """How a type is written in messages: ``Filters``, ``list[int]``."""
    tp, _ = unwrap_annotated(tp)
    if isinstance(tp, type) and not typing.get_args(tp):
        return tp.__qualname__
    return repr(tp).replace("typing.", "")


def _unbindable(name: str, base: Any) -> UnbindableParameter:
    shown = type_name(base)
    if type(base).__module__.startswith("pydantic"):  # a FastAPI habit kit does not share
        return UnbindableParameter(
            f"parameter {name!r} is a Pydantic model ({shown}); kit validates with msgspec: "
            f"declare it as class {getattr(base, '__name__', shown)}(msgspec.Struct) with "
            "the same fields "
            "(docs/fastapi-migration.md)"
        )
    return UnbindableParameter(
        f"parameter {name!r} has the type {shown}, which kit cannot read from a request: "
        f"use a msgspec.Struct for a JSON body, a scalar or a list for the query, "
        f"Annotated[{shown}, Depends(provider)] to inject an object, or Request"
    )


@dataclass
class ParamInfo:
    """One handler parameter, decided at registration."""

    name: str
    location: Location
    annotation: Any  # the type handed to msgspec, with its Meta constraints kept
    marker: Param
    alias: str
    default: Any
    required: bool
    multiple: bool = False  # a list-typed query/header parameter
    gathers: bool = False  # a Struct gathering several query/header/cookie values
    inferred: bool = False  # no marker: the location was read from the type


class Special(enum.Enum):
    REQUEST = "request"
    WEBSOCKET = "websocket"
    BACKGROUND = "background"
    RESPONSE = "response"


def special_kind(tp: Any) -> Special | None:
    tp, _ = unwrap_annotated(tp)
    if not isinstance(tp, type):
        return None
    if issubclass(tp, WebSocket):
        return Special.WEBSOCKET
    if issubclass(tp, HTTPConnection):
        return Special.REQUEST
    if issubclass(tp, BackgroundTasks):
        return Special.BACKGROUND
    if issubclass(tp, Response):
        return Special.RESPONSE
    return None


def classify(
    name: str,
    annotation: Any,
    default: Any,
    marker: Param | None,
    path_names: set[str],
) -> ParamInfo:
    """Decide where one parameter comes from, FastAPI's way."""
    base, extras = unwrap_annotated(annotation)
    metas = [e for e in extras if not isinstance(e, Param)]
    annotation = typing.Annotated[(base, *metas)] if metas else base
    if marker is not None and marker.meta is not None:
        annotation = _with_meta(annotation, marker.meta)
    inferred = marker is None
    if marker is None:
        if name in path_names:
            marker = Path()
        elif is_scalar(base) or is_sequence_of_scalars(base):
            marker = Query()
        elif is_body_type(base):
            marker = Body()
        else:
            raise _unbindable(name, base)
    elif isinstance(marker, Body) and not (
        is_body_type(base) or is_scalar(base) or is_sequence_of_scalars(base) or base is object
    ):
        raise _unbindable(name, base)
    if marker.default is not _NO_DEFAULT:
        default = marker.default
    if default is Ellipsis:
        default = _NO_DEFAULT
    location = marker.location
    alias = marker.alias or name
    if isinstance(marker, Header) and marker.alias is None and marker.convert_underscores:
        alias = name.replace("_", "-")
    if location in ("header",):
        alias = alias.lower()
    if location == "path" and name not in path_names:
        raise TypeError(f"path parameter {name!r} is not in the route's path")
    required = default is _NO_DEFAULT
    if location == "path" and not required:
        raise TypeError(f"path parameter {name!r} cannot have a default")
    gathers = location in ("query", "header", "cookie") and is_struct(base)
    multiple = location in ("query", "header") and is_sequence_of_scalars(base)
    if location != "body" and not (gathers or multiple or is_scalar(base)):
        raise TypeError(f"{location} parameter {name!r} must be a scalar, a list or a Struct")
    return ParamInfo(
        name=name,
        location=location,
        annotation=annotation,
        marker=marker,
        alias=alias,
        default=None if required else default,
        required=required,
        multiple=multiple,
        gathers=gathers,
        inferred=inferred,
    )


def _with_meta(tp: Any, meta: msgspec.Meta) -> Any:
    """``tp`` constrained by a marker's ``meta``: on the value, not on ``None`` of ``T | None``."""
    base, extras = unwrap_annotated(tp)
    args = _union_args(base)
    if args is not None and type(None) in args:
        rest = tuple(a for a in args if a is not type(None))
        inner = rest[0] if len(rest) == 1 else typing.Union[rest]  # noqa: UP007
        constrained: Any = typing.Optional[typing.Annotated[inner, meta]]  # noqa: UP045
    else:
        constrained = typing.Annotated[base, meta]
    return typing.Annotated[(constrained, *extras)] if extras else constrained


# An extractor reads every parameter of one source (path, query, header or cookie) from a
# request's scope into the keyword arguments; a value that fails is reported in ``errors``
# (and is None). No Request object is needed.
Extractor = Callable[[Scope, dict[str, Any], list[ErrorItem]], None]
_SOURCES: tuple[Location, ...] = ("path", "query", "header", "cookie")


def _without_none(tp: Any) -> Any:
    """``T | None`` → ``T``: a value read from a URL, header or cookie is never null (absent
    is None), so the text "null" must not convert to None."""
    base, extras = unwrap_annotated(tp)
    args = _union_args(base)
    if args is None or type(None) not in args:
        return tp
    rest = tuple(a for a in args if a is not type(None))
    base = rest[0] if len(rest) == 1 else typing.Union[rest]  # noqa: UP007
    return typing.Annotated[(base, *extras)] if extras else base


def _target(annotation: Any) -> Any:
    """The type a text value is converted to, or None when it needs no conversion (a bare
    ``str``; ``Annotated[str, Meta(...)]`` has constraints to check)."""
    target = _without_none(annotation)
    return None if target is str or target is Any else target


# where a request's parsed query string and cookies are kept, in its scope
_QUERY, _COOKIES = "kit.query", "kit.cookies"
_NO_PAIRS: list[tuple[str, str]] = []
_NO_VALUES: dict[str, str] = {}


def query_values(scope: Scope) -> tuple[dict[str, str], list[tuple[str, str]]]:
    """The request's query string as name → last value, and every (name, value) pair in order;
    parsed once per request as Starlette's ``QueryParams`` parses it (``parse_qsl``, blank
    values kept), without building one."""
    parsed: tuple[dict[str, str], list[tuple[str, str]]] | None = scope.get(_QUERY)
    if parsed is not None:
        return parsed
    raw: bytes = scope["query_string"]
    if not raw:
        parsed = (_NO_VALUES, _NO_PAIRS)
    else:
        text = raw.decode("latin-1")
        if "%" in text or "+" in text:
            pairs: Any = urllib.parse.parse_qsl(text, keep_blank_values=True)
        else:  # nothing to unquote: what parse_qsl gives, without its calls per pair
            pairs = [
                chunk.split("=", 1) if "=" in chunk else (chunk, "")
                for chunk in text.split("&")
                if chunk
            ]
        parsed = (dict(pairs), pairs)
    scope[_QUERY] = parsed
    return parsed


def cookie_values(scope: Scope) -> dict[str, str]:
    """The request's cookies, parsed once per request as Starlette's ``Request.cookies`` (its
    first Cookie header)."""
    cookies: dict[str, str] | None = scope.get(_COOKIES)
    if cookies is None:
        for key, value in scope["headers"]:
            if key == b"cookie":
                cookies = parse_cookies(value.decode("latin-1"))
                break
        else:
            cookies = {}
        scope[_COOKIES] = cookies
    return cookies


def parse_cookies(text: str) -> dict[str, str]:
    """Starlette's ``cookie_parser``, calling the unquoting only for a quoted value (the
    only kind it changes)."""
    cookies: dict[str, str] = {}
    for chunk in text.split(";"):
        if "=" in chunk:
            key, value = chunk.split("=", 1)
            key, value = key.strip(), value.strip()
        else:  # an empty name, as browsers read it
            key, value = "", chunk.strip()
        if key or value:
            cookies[key] = _unquote(value) if value[:1] == '"' else value
    return cookies


def header_values(
    scope: Scope, names: frozenset[bytes]
) -> tuple[dict[str, str], list[tuple[str, str]]]:
    """The request's headers called one of ``names`` (lowercase): name → first value, and
    every (name, value) pair in order, as Starlette's ``Headers`` reads them (latin-1)."""
    values: dict[str, str] = {}
    pairs: list[tuple[str, str]] = []
    for key, raw in scope["headers"]:
        if key in names:
            name, value = key.decode("latin-1"), raw.decode("latin-1")
            pairs.append((name, value))
            if name not in values:
                values[name] = value
    return values, pairs


# How a parameter's text becomes its value, decided at registration: kept as it is (a str,
# a list of str), an int parsed here when it is plain digits, a str whose length is checked
# here, msgspec's conversion of the value alone, or of the value together with the source's
# other parameters in one call.
AS_IS, INT, TEXT, CONVERT, BATCH = 0, 1, 2, 3, 4

# (parameter name, alias, conversion target or None, required, default, a list, a gatherer)
_Spec = tuple[str, str, Any, bool, Any, bool, Any]


def _how(target: Any, multiple: bool, converted: int) -> int:
    """How a value of ``target`` is converted, among ``converted`` values of its source that
    need msgspec: one call for all of them when that is cheaper than one each (typing
    constructs like ``Annotated`` and ``list[str]`` cost msgspec more per call than a
    Struct it already knows)."""
    if target is None:
        return AS_IS
    if multiple and target == list[str]:
        return AS_IS  # the list read from the source is already that
    if not multiple and int_bounds(target) is not None:
        return INT
    if not multiple and length_bounds(target) is not None:
        return TEXT
    if converted == 1 and isinstance(target, type):
        return CONVERT
    return BATCH


_INT_LIMIT = 10**18  # the fast pass parses at most 18 digits
_CONSTRAINTS_OF = {int: ("ge", "gt", "le", "lt"), str: ("min_length", "max_length")}
# what a Meta checks (its title, description, examples...: documentation only)
_MSGSPEC_CONSTRAINTS = (
    "ge",
    "gt",
    "le",
    "lt",
    "multiple_of",
    "pattern",
    "min_length",
    "max_length",
    "tz",
)


def _plain_constraints(target: Any, base: type) -> dict[str, int] | None:
    """The constraints ``Annotated[base, Meta(...)]`` (or ``base``) sets, when they are only
    ``base``'s plain bounds, each an int set once; else None (only msgspec can check it)."""
    found, extras = unwrap_annotated(target)
    if found is not base:
        return None
    allowed = _CONSTRAINTS_OF[base]
    constraints: dict[str, int] = {}
    for meta in extras:
        if not isinstance(meta, msgspec.Meta):
            continue  # (msgspec reads nothing else)
        for name in _MSGSPEC_CONSTRAINTS:
            value = getattr(meta, name)
            if value is None:
                continue
            if name not in allowed or type(value) is not int or name in constraints:
                return None
            constraints[name] = value
    return constraints


def int_bounds(target: Any) -> tuple[int, int] | None:
    """``(lowest, highest)`` an ``int`` (or ``Annotated[int, Meta(ge=..., le=...)]``) the
    fast pass accepts, or None when only msgspec can check it (another constraint, a bound
    that is not an int, a bound set twice)."""
    found = _plain_constraints(target, int)
    if found is None:
        return None
    lowest = max(0, found.get("ge", 0), found.get("gt", -1) + 1)
    highest = min(_INT_LIMIT, found.get("le", _INT_LIMIT), found.get("lt", _INT_LIMIT + 1) - 1)
    return lowest, highest


def length_bounds(target: Any) -> tuple[int, float] | None:
    """``(shortest, longest)`` a ``str`` with lengths (``Annotated[str, Meta(max_length=64)]``)
    the fast pass accepts, or None when only msgspec can check it (a pattern...)."""
    found = _plain_constraints(target, str)
    if found is None:
        return None
    return found.get("min_length", 0), found.get("max_length", float("inf"))


def _raw_value(values: Any, pairs: Any, alias: str, multiple: bool) -> Any:
    """A parameter's text (a list of them for a list), None when absent; the fast pass reads
    it inline."""
    if not multiple:
        return values.get(alias)
    # (only the query and headers have lists, and pairs)
    return [value for key, value in pairs if key == alias] or None


def source_extractor(
    location: Location, params: list[ParamInfo], *, fast: bool = True
) -> Extractor:
    """Read ``params`` (all from ``location``) in one pass: the source is looked up once,
    each value converted by msgspec unless it is a plain str.

    A valid request takes the fast pass: plain values kept, plain ints parsed, the others
    converted by msgspec in one call (a Struct of them). Anything else (a value missing or
    invalid) takes the careful pass, which finds every error, one item each; ``fast=False``
    gives the careful pass alone (tests compare the two)."""
    specs: list[_Spec] = [
        (
            info.name,
            info.alias,
            _target(info.annotation),
            info.required,
            info.default,
            info.multiple,
            gathering_extractor(info) if info.gathers else None,
        )
        for info in params
    ]
    needing = sum(1 for _, _, target, _, _, _, gather in specs if gather is None and target)
    ways = [_how(target, multiple, needing) for _, _, target, _, _, multiple, _ in specs]
    quick: list[tuple[str, str, int, Any, bool, Any, bool, Any]] = [
        # (as specs, with how; an INT's or a TEXT's target: the bounds it is checked against)
        (
            name,
            alias,
            how,
            int_bounds(target) if how == INT else length_bounds(target) if how == TEXT else target,
            required,
            default,
            multiple,
            gather,
        )
        for (name, alias, target, required, default, multiple, gather), how in zip(
            specs, ways, strict=True
        )
    ]
    batch: Any = None
    if BATCH in ways:
        batch = msgspec.defstruct(
            f"{location.title()}Parameters",
            [
                (name, target, None)
                for (name, _, target, *_), how in zip(specs, ways, strict=True)
                if how == BATCH
            ],
        )
    names = frozenset(alias.encode("latin-1") for _, alias, *_ in specs)
    if location == "header":
        for info in params:
            if info.gathers:
                names |= {key.encode("latin-1") for _, key, _ in gathered_fields(info)}
    # one header, read once (no list, no Struct): its first value, found without the pairs
    only: bytes | None = None
    if len(names) == 1 and not any(info.multiple or info.gathers for info in params):
        (only,) = names
    convert = msgspec.convert
    ValidationError = msgspec.ValidationError

    def extract(scope: Scope, kwargs: dict[str, Any], errors: list[ErrorItem]) -> None:
        pairs: Any = None
        values: Any
        if location == "path":
            values = scope["path_params"]
        elif location == "query":
            values, pairs = query_values(scope)
        elif location == "header":
            if only is not None:
                values = _NO_VALUES
                for key, raw in scope["headers"]:
                    if key == only:
                        values = {key.decode("latin-1"): raw.decode("latin-1")}
                        break
            else:
                values, pairs = header_values(scope, names)
        else:
            values = cookie_values(scope)
        if not fast:
            carefully(values, pairs, kwargs, errors)
            return
        mark = len(errors)
        together: dict[str, Any] | None = None
        for name, alias, how, target, required, default, multiple, gather in quick:
            if gather is not None:
                kwargs[name] = gather(values, pairs, errors)
                continue
            if not multiple:  # (_raw_value, inline)
                raw = values.get(alias)
            else:
                raw = [value for key, value in pairs if key == alias] or None
            if raw is None:
                if required:
                    break
                kwargs[name] = default
            elif how == AS_IS:
                kwargs[name] = raw
            elif how == INT:
                # what msgspec accepts and int() reads alike: no sign, no leading zero
                if not (raw.isdigit() and raw.isascii() and len(raw) < 19) or (
                    raw[0] == "0" and len(raw) > 1
                ):
                    break
                value = int(raw)
                if not target[0] <= value <= target[1]:
                    break  # (msgspec says what is wrong with it)
                kwargs[name] = value
            elif how == TEXT:
                if not target[0] <= len(raw) <= target[1]:
                    break
                kwargs[name] = raw
            elif how == BATCH:
                if together is None:
                    together = {}
                together[name] = raw
            else:
                try:
                    kwargs[name] = convert(raw, target, strict=False)
                except ValidationError:
                    break
        else:
            if together is None:
                return
            try:
                converted = convert(together, batch, strict=False)
            except ValidationError:
                pass
            else:
                for name in together:
                    kwargs[name] = getattr(converted, name)
                return
        del errors[mark:]  # what the fast pass reported is reported again
        carefully(values, pairs, kwargs, errors)

    def carefully(values: Any, pairs: Any, kwargs: dict[str, Any], errors: list[ErrorItem]) -> None:
        """Every parameter converted on its own: each failure is one error item."""
        for name, alias, target, required, default, multiple, gather in specs:
            if gather is not None:
                kwargs[name] = gather(values, pairs, errors)
                continue
            raw = _raw_value(values, pairs, alias, multiple)
            if raw is None:
                if required:
                    errors.append(ErrorItem("missing", [location, alias], "Field required", None))
                kwargs[name] = None if required else default
            elif target is None:
                kwargs[name] = raw
            else:
                try:
                    kwargs[name] = convert(raw, target, strict=False)
                except msgspec.ValidationError as exc:
                    errors.append(error_from_exception(exc, raw, [location, alias]))
                    kwargs[name] = None

    return extract


def source_extractors(params: list[ParamInfo]) -> list[Extractor]:
    """One extractor per source the parameters come from, in FastAPI's order of sources."""
    return [
        source_extractor(location, [p for p in params if p.location == location])
        for location in _SOURCES
        if any(p.location == location for p in params)
    ]


def gathered_fields(info: ParamInfo) -> list[tuple[str, str, bool]]:
    """A gathering Struct's fields: (field name, the name it is read by, a list or not)."""
    struct_type, _ = unwrap_annotated(info.annotation)
    return [
        (
            f.encode_name,
            f.encode_name.replace("_", "-").lower() if info.location == "header" else f.encode_name,
            is_sequence_of_scalars(f.type),
        )
        for f in msgspec.structs.fields(struct_type)
    ]


def gathering_extractor(info: ParamInfo) -> Callable[[Any, Any, list[ErrorItem]], Any]:
    """A Struct whose fields are read from several query parameters, headers or cookies."""
    fields = gathered_fields(info)
    location = info.location

    def extract(values: Any, pairs: Any, errors: list[ErrorItem]) -> Any:
        """The Struct from the source's ``values`` (and its ``pairs``: the query's and the
        headers', None for cookies, whose every name has one value)."""
        raw: dict[str, Any] = {}
        for name, key, multiple in fields:
            if multiple:
                if pairs is not None:
                    items = [value for k, value in pairs if k == key]
                else:
                    value = values.get(key)
                    items = [] if value is None else [value]
                if items:
                    raw[name] = items
            else:
                value = values.get(key)
                if value is not None:
                    raw[name] = value
        try:
            return msgspec.convert(raw, info.annotation, strict=False)
        except msgspec.ValidationError:
            errors.extend(collect_errors(raw, info.annotation, [location]))
            return None

    return extract
