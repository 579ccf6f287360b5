"""Form fields and uploaded files as handler parameters: ``Form()``, ``File()``, ``UploadFile``.

A handler's form parameters share one ``FormSpec``, built when the route is registered. The
first of them to be resolved reads the body once (bounded: 413 past the limit, before reading
when Content-Length says so), parses it with Starlette's parsers (python-multipart, the
``forms`` extra) and checks every field, so a 422 lists each failing field; each parameter is
then a dependency that hands out its value, and uploaded files are closed after the response.
"""

from __future__ import annotations

import importlib.util
import inspect
import typing
import weakref
from collections.abc import AsyncGenerator, AsyncIterator, Callable
from dataclasses import dataclass, field
from typing import Any

import msgspec
from starlette.datastructures import FormData, Headers, UploadFile
from starlette.exceptions import HTTPException
from starlette.requests import Request

from kit.body_timeout import body_deadline
from kit.codec import error_from_exception
from kit.di import Depends
from kit.errors import ErrorItem, PayloadTooLarge, UnsupportedMediaType, ValidationFailed

DEFAULT_MAX_BODY_SIZE = 1024 * 1024  # when the app says nothing (a kit App always does)
MAX_FIELD_SIZE = 1024 * 1024  # bytes of one field that is not a file (Starlette's default)
MAX_PARTS = 1000  # fields and files in one request, as Starlette's form() allows
MULTIPART = "multipart/form-data"
URLENCODED = "application/x-www-form-urlencoded"
_EMPTY: Any = object()


class FormMarker(Depends):
    """Base of ``Form`` and ``File``: a parameter read from a form body. kit's dependency
    compiler calls ``bind_parameter`` once per parameter, which returns the real dependency."""

    media_type = MULTIPART

    def __init__(
        self,
        default: Any = _EMPTY,
        *,
        alias: str | None = None,
        description: str | None = None,
        max_size: int | None = None,
    ) -> None:
        super().__init__(None, use_cache=False)
        self.default = default
        self.alias = alias
        self.description = description
        self.max_size = max_size

    def __repr__(self) -> str:
        return f"{type(self).__name__}(alias={self.alias!r})"

    def bind_parameter(
        self, call: Callable[..., Any], name: str, annotation: Any, default: Any
    ) -> Depends:
        if importlib.util.find_spec("python_multipart") is None:
            raise ImportError(
                f"parameter {name!r}: Form and File parameters need python-multipart, "
                "the forms extra of kit's distribution"
            )
        if self.default is not _EMPTY:
            default = self.default
        spec = _SPECS.get(call)
        if spec is None:
            spec = _SPECS[call] = FormSpec()
        return Depends(spec.add(self, name, annotation, default), use_cache=False)


class Form(FormMarker):
    """A form field (``application/x-www-form-urlencoded`` or ``multipart/form-data``):
    ``name: Annotated[str, Form()]``; a list type takes every value of a repeated field.
    ``max_size`` bounds the field in bytes (default 1 MiB)."""

    media_type = URLENCODED


class File(FormMarker):
    """An uploaded file of a ``multipart/form-data`` body: ``UploadFile``, ``bytes``, or a
    list of either for a repeated field. ``max_size`` bounds each file in bytes (413 above);
    it also raises the request's body limit by as much."""


@dataclass
class FormField:
    name: str
    alias: str
    annotation: Any  # what the value converts to, Meta constraints kept
    required: bool
    default: Any
    is_file: bool
    many: bool  # a list: every value of the field
    reads_bytes: bool  # ``bytes`` for a file: its content
    max_size: int | None
    description: str | None


@dataclass
class Parsed:
    values: dict[str, Any]
    errors: list[ErrorItem]
    form: FormData | None

    async def close(self) -> None:
        if self.form is not None:
            await self.form.close()


@dataclass
class FormSpec:
    """Every form parameter of one handler, and how to read them from a request."""

    fields: list[FormField] = field(default_factory=list)
    scope_key: str = ""

    def __post_init__(self) -> None:
        self.scope_key = f"kit.form.{id(self)}"

    @property
    def has_files(self) -> bool:
        return any(f.is_file for f in self.fields)

    @property
    def extra_size(self) -> int:
        """Bytes the declared file limits add to the app's body limit."""
        return sum(f.max_size or 0 for f in self.fields if f.is_file)

    def add(
        self, marker: FormMarker, name: str, annotation: Any, default: Any
    ) -> Callable[[Request], AsyncIterator[Any]]:
        # (registered again, say on a second path: the same parameter, described again)
        self.fields = [f for f in self.fields if f.name != name]
        self.fields.append(_field(marker, name, annotation, default))
        spec = self

        async def provide(request: Request) -> AsyncIterator[Any]:
            parsed: Parsed | None = request.scope.get(spec.scope_key)
            owner = parsed is None
            if parsed is None:
                parsed = request.scope[spec.scope_key] = await spec.read(request)
            try:
                if parsed.errors:
                    raise ValidationFailed(parsed.errors)
                yield parsed.values[name]
            finally:
                if owner:
                    await parsed.close()

        provide.__name__ = f"form_{name}"
        return provide

    def limit(self, request: Request) -> int:
        app_limit = getattr(request.scope.get("app"), "body_limit", DEFAULT_MAX_BODY_SIZE)
        return int(app_limit) + self.extra_size

    async def read(self, request: Request) -> Parsed:
        content_type = request.headers.get("content-type", "")
        media = content_type.partition(";")[0].strip().lower()
        if media != MULTIPART and (media != URLENCODED or self.has_files):
            raise UnsupportedMediaType(
                MULTIPART if self.has_files else f"{URLENCODED} or {MULTIPART}"
            )
        limit = self.limit(request)
        declared = request.headers.get("content-length")
        if declared is not None and declared.isdigit() and int(declared) > limit:
            raise PayloadTooLarge(limit)
        with body_deadline(request.scope):  # KIT_BODY_TIMEOUT, as for a JSON body
            form = await _parse(request, media, limit)
        try:
            values, errors = await self.check(form)
        except BaseException:
            await form.close()
            raise
        return Parsed(values, errors, form)

    async def check(self, form: FormData) -> tuple[dict[str, Any], list[ErrorItem]]:
        values: dict[str, Any] = {}
        errors: list[ErrorItem] = []
        for f in self.fields:
            items = form.getlist(f.alias)
            loc: list[str | int] = ["body", f.alias]
            if not items:
                if f.required:
                    errors.append(ErrorItem("missing", loc, "Field required", None))
                else:
                    values[f.name] = f.default
                continue
            if f.is_file:
                values[f.name] = await _files(f, items, loc, errors)
                continue
            texts = [item for item in items if isinstance(item, str)]
            if len(texts) != len(items):
                errors.append(ErrorItem("string_type", loc, "Input should be a valid string", None))
                continue
            raw: Any = texts if f.many else texts[-1]
            try:
                values[f.name] = msgspec.convert(raw, f.annotation, strict=False)
            except msgspec.ValidationError as exc:
                errors.append(error_from_exception(exc, raw, loc))
        return values, errors


async def _files(
    f: FormField, items: list[Any], loc: list[str | int], errors: list[ErrorItem]
) -> Any:
    files: list[Any] = []
    for item in items:
        if not isinstance(item, UploadFile):
            errors.append(ErrorItem("value_error", loc, "Expected UploadFile, received: str", None))
            return None
        if f.max_size is not None and (item.size or 0) > f.max_size:
            raise HTTPException(413, f"File {f.alias!r} exceeds {f.max_size} bytes")
        files.append(await item.read() if f.reads_bytes else item)
    return files if f.many else files[-1]


async def _parse(request: Request, media: str, limit: int) -> FormData:
    from starlette.formparsers import FormParser, MultiPartException, MultiPartParser

    async def bounded() -> AsyncGenerator[bytes, None]:
        received = 0
        async for chunk in request.stream():
            received += len(chunk)
            if received > limit:  # Content-Length absent or lying: count what arrives
                raise PayloadTooLarge(limit)
            yield chunk

    headers = Headers(scope=request.scope)
    try:
        if media == MULTIPART:
            parser = MultiPartParser(
                headers,
                bounded(),
                max_files=MAX_PARTS,
                max_fields=MAX_PARTS,
                max_part_size=MAX_FIELD_SIZE,
            )
            return await parser.parse()
        return await FormParser(
            headers, bounded(), max_fields=MAX_PARTS, max_part_size=MAX_FIELD_SIZE
        ).parse()
    except MultiPartException as exc:
        raise HTTPException(400, exc.message) from None


def _field(marker: FormMarker, name: str, annotation: Any, default: Any) -> FormField:
    base, metas = _split(annotation)
    args = typing.get_args(base) if typing.get_origin(base) in (typing.Union, _UnionType) else ()
    if args and type(None) in args:  # absent is the default; a present value is never null
        rest = [a for a in args if a is not type(None)]
        base = rest[0] if len(rest) == 1 else base
    many = typing.get_origin(base) is list
    item = typing.get_args(base)[0] if many and typing.get_args(base) else base
    is_file = isinstance(marker, File) or item is UploadFile
    if is_file and item not in (UploadFile, bytes):
        raise TypeError(f"file parameter {name!r} must be UploadFile, bytes, or a list of them")
    if not is_file and isinstance(item, type) and issubclass(item, (UploadFile, msgspec.Struct)):
        raise TypeError(
            f"form parameter {name!r}: a form field is a scalar or a list of scalars; "
            "a JSON body is a msgspec.Struct parameter without Form()"
        )
    required = default is _EMPTY or default is Ellipsis or default is inspect.Parameter.empty
    if marker.max_size is not None and item is str:
        metas = [*metas, msgspec.Meta(max_length=marker.max_size)]
    target = typing.Annotated[(base, *metas)] if metas else base
    return FormField(
        name=name,
        alias=marker.alias or name,
        annotation=target,
        required=required,
        default=None if required else default,
        is_file=is_file,
        many=many,
        reads_bytes=item is bytes,
        max_size=marker.max_size if is_file else None,
        description=marker.description,
    )


def _split(annotation: Any) -> tuple[Any, list[Any]]:
    if typing.get_origin(annotation) is typing.Annotated:
        base, *extras = typing.get_args(annotation)
        return base, [e for e in extras if isinstance(e, msgspec.Meta)]
    return annotation, []


_UnionType: Any = type(int | None)
_SPECS: weakref.WeakKeyDictionary[Callable[..., Any], FormSpec] = weakref.WeakKeyDictionary()


def spec_for(endpoint: Callable[..., Any]) -> FormSpec | None:
    """The form parameters of ``endpoint`` (for its OpenAPI request body), if it has any."""
    return _SPECS.get(endpoint)
