"""A service's own settings: a typed msgspec Struct read from prefixed environment variables.

    class CatalogSettings(ServiceSettings, frozen=True):
        env_prefix = "CATALOG_"
        page_size: Annotated[int, msgspec.Meta(ge=1, le=100)] = 20
        signing_key: Secret[str] | None = None

    settings = CatalogSettings.from_env()  # CATALOG_PAGE_SIZE, CATALOG_SIGNING_KEY, .env

A bad value raises kit's ``SettingsError`` (one line naming the variable; ``kit serve`` exits 2).
"""

from __future__ import annotations

import os
import re
import types
import typing
from collections.abc import Mapping
from pathlib import Path
from typing import Annotated, Any, ClassVar, Generic, TypeVar, Union

import msgspec

from kit.settings import SettingsError

__all__ = ["REDACTED", "Secret", "ServiceSettings", "loaded", "read_env_file"]

T = TypeVar("T")
S = TypeVar("S", bound="ServiceSettings")
REDACTED = "<redacted>"
MAX_ENV_FILE = 1024 * 1024  # bytes: a .env file is a handful of lines
_TRUE = ("1", "true", "yes", "on")
_FALSE = ("0", "false", "no", "off")
_loaded: dict[str, ServiceSettings] = {}  # class name -> the instance read last, for /admin/info


class Secret(Generic[T]):
    """A value that never shows itself: ``repr``, ``str``, logs and /admin/info print
    ``<redacted>``; ``get_secret_value()`` is the one way to read it."""

    __slots__ = ("_value",)

    def __init__(self, value: T) -> None:
        self._value = value

    def get_secret_value(self) -> T:
        return self._value

    def __repr__(self) -> str:
        return f"Secret({REDACTED!r})"

    def __str__(self) -> str:
        return REDACTED

    def __eq__(self, other: object) -> bool:
        return isinstance(other, Secret) and other._value == self._value

    def __hash__(self) -> int:
        return hash(self._value)


class ServiceSettings(msgspec.Struct, frozen=True, kw_only=True):
    """Subclass it with typed fields (msgspec types, ``Annotated[..., msgspec.Meta(...)]``
    constraints, ``Secret[...]`` for secrets) and set ``env_prefix``.

    A field ``page_size`` is read from ``<env_prefix>PAGE_SIZE``; ``msgspec.field(name="X")``
    reads it from ``X`` exactly. Values come from the environment, then from ``env_file``
    (``.env`` in the working directory, if there is one); the environment wins.
    """

    env_prefix: ClassVar[str] = ""
    env_file: ClassVar[str | None] = ".env"

    @classmethod
    def from_env(
        cls: type[S],
        environ: Mapping[str, str] | None = None,
        *,
        env_file: str | os.PathLike[str] | None = "",
    ) -> S:
        """Read every field; ``environ`` defaults to ``os.environ`` (plus ``env_file``, which
        defaults to the class's own ``env_file`` when ``environ`` is not given)."""
        if env_file == "":
            env_file = cls.env_file if environ is None else None
        values: dict[str, str] = dict(read_env_file(env_file)) if env_file else {}
        values.update(os.environ if environ is None else environ)
        hints = typing.get_type_hints(cls, include_extras=True)
        parsed: dict[str, Any] = {}
        for field in msgspec.structs.fields(cls):
            env = cls.env_name(field.name)
            raw = values.get(env)
            if raw is None:
                if field.required:
                    kind = _describe(hints[field.name])
                    raise SettingsError(f"{env} is required ({kind}) and not set")
                continue
            parsed[field.name] = _parse(env, raw, hints[field.name])
        settings = cls(**parsed)
        _loaded[cls.__qualname__] = settings
        return settings

    @classmethod
    def env_name(cls, name: str) -> str:
        """The variable a field is read from."""
        for field in msgspec.structs.fields(cls):
            if field.name == name:
                if field.encode_name != field.name:
                    return field.encode_name
                return f"{cls.env_prefix}{name.upper()}"
        raise KeyError(name)

    def redacted(self) -> dict[str, Any]:
        """The settings by variable name, as JSON-ready values, every ``Secret`` shown as
        ``<redacted>`` (/admin/info also hides fields named like secrets, and URL passwords)."""
        return {
            self.env_name(field.name): msgspec.to_builtins(
                getattr(self, field.name), enc_hook=_redact_hook
            )
            for field in msgspec.structs.fields(self)
        }


def loaded() -> dict[str, ServiceSettings]:
    """The service settings this process has read, by class name (for /admin/info)."""
    return dict(_loaded)


def _redact_hook(value: Any) -> Any:
    if isinstance(value, Secret):
        return REDACTED
    return str(value)


def read_env_file(path: str | os.PathLike[str]) -> dict[str, str]:
    """``KEY=value`` lines of a dotenv file (``export``, comments and quotes as usual);
    a missing file is empty, an unreadable or oversized one is a SettingsError."""
    file = Path(path)
    try:
        with file.open("rb") as handle:
            data = handle.read(MAX_ENV_FILE + 1)
    except FileNotFoundError:
        return {}
    except OSError as exc:
        raise SettingsError(f"{file}: cannot read it ({exc.strerror})") from None
    if len(data) > MAX_ENV_FILE:
        raise SettingsError(f"{file}: larger than {MAX_ENV_FILE} bytes; is it a .env file?")
    try:
        text = data.decode("utf-8")
    except UnicodeDecodeError:
        raise SettingsError(f"{file}: not UTF-8 text") from None
    values: dict[str, str] = {}
    for number, line in enumerate(text.splitlines(), start=1):
        line = line.strip()
        if not line or line.startswith("#"):
            continue
        line = line.removeprefix("export ").lstrip()
        key, sep, value = line.partition("=")
        key = key.strip()
        if not sep or not key.replace("_", "a").isalnum():
            raise SettingsError(f"{file}:{number}: expected KEY=value")
        values[key] = _unquote(value.strip())
    return values


def _unquote(value: str) -> str:
    if len(value) >= 2 and value[0] == value[-1] and value[0] in "'\"":
        inner = value[1:-1]
        if value[0] == '"':
            inner = inner.replace("\\n", "\n").replace('\\"', '"').replace("\\\\", "\\")
        return inner
    return value.split(" #", 1)[0].rstrip()  # an unquoted value ends at a comment


def _describe(tp: Any) -> str:
    """``int``, ``Secret[str]``, ``list[str]``: the type as the class declares it."""
    base = _strip(tp)
    if isinstance(base, type):
        return base.__name__
    return re.sub(r"\b(?:\w+\.)+", "", str(base))


def _strip(tp: Any) -> Any:
    while typing.get_origin(tp) is Annotated:
        tp = typing.get_args(tp)[0]
    return tp


def _optional(tp: Any) -> Any | None:
    """``X`` when ``tp`` is ``X | None`` (else None)."""
    base = _strip(tp)
    if typing.get_origin(base) in (Union, types.UnionType):
        args = [a for a in typing.get_args(base) if a is not type(None)]
        if len(args) < len(typing.get_args(base)):
            return args[0] if len(args) == 1 else Union[tuple(args)]  # noqa: UP007
    return None


_SEQUENCES = (list, tuple, set, frozenset)


def _parse(env: str, raw: str, tp: Any, *, secret: bool = False) -> Any:
    inner = _optional(tp)
    if inner is not None:
        if not raw.strip():
            return None
        tp = inner
    base = _strip(tp)
    if typing.get_origin(base) is Secret or base is Secret:
        args = typing.get_args(base)
        return Secret(_parse(env, raw, args[0] if args else str, secret=True))
    shown = REDACTED if secret else repr(raw)
    origin = typing.get_origin(base) or base
    value: Any = raw
    if base is bool:
        lowered = raw.strip().lower()
        if lowered not in _TRUE + _FALSE:
            raise SettingsError(f"{env}={shown} is not a boolean; use 1/0, true/false, yes/no")
        value = lowered in _TRUE
    elif base is not str and not (isinstance(base, type) and issubclass(base, str)):
        value = raw.strip()
    try:
        if (
            isinstance(value, str)
            and value[:1] in ("[", "{")
            and (origin in (*_SEQUENCES, dict) or _is_struct(origin))
        ):
            return msgspec.json.decode(value, type=tp, strict=False)
        if origin in _SEQUENCES and isinstance(value, str):
            value = [item.strip() for item in value.split(",") if item.strip()]
        return msgspec.convert(value, type=tp, strict=False)
    except (msgspec.ValidationError, msgspec.DecodeError) as exc:
        reason = " ".join(str(exc).split())
        raise SettingsError(f"{env}={shown}: {reason}") from None
    except TypeError as exc:  # a type msgspec cannot build from text
        raise SettingsError(f"{env}: its type cannot be read from the environment: {exc}") from None


def _is_struct(tp: Any) -> bool:
    return isinstance(tp, type) and issubclass(tp, msgspec.Struct)
