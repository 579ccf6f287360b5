"""One typed settings object, read from ``KIT_*`` environment variables."""

from __future__ import annotations

import os
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field, fields, replace
from typing import Any

from runtimes.registry import NAMES as RUNTIMES
from runtimes.registry import default_name as _default_runtime

LOOPS = ("auto", "uvloop", "asyncio")
HTTP_VERSIONS = ("auto", "1", "2")
LOG_FORMATS = ("json", "text")
LOG_LEVELS = ("debug", "info", "warning", "error", "critical")


class SettingsError(ValueError):
    """A setting has a value outside the allowed ones; the message is one line for the user."""


def _choice(allowed: tuple[str, ...], *, custom: bool = False) -> Callable[[str, str], str]:
    def parse(name: str, raw: str) -> str:
        value = raw.strip().lower() if not custom or ":" not in raw else raw.strip()
        if value in allowed or (custom and ":" in value):
            return value
        extra = " or module:attr" if custom else ""
        raise SettingsError(
            f"{name}={raw!r} is not allowed; use one of {', '.join(allowed)}{extra}"
        )

    return parse


def _int(low: int, high: int | None = None) -> Callable[[str, str], int]:
    def parse(name: str, raw: str) -> int:
        try:
            value = int(raw.strip())
        except ValueError:
            raise SettingsError(f"{name}={raw!r} is not an integer") from None
        if value < low or (high is not None and value > high):
            bound = f"{low}..{high}" if high is not None else f">= {low}"
            raise SettingsError(f"{name}={raw!r} is out of range ({bound})")
        return value

    return parse


def _float(low: float) -> Callable[[str, str], float]:
    def parse(name: str, raw: str) -> float:
        try:
            value = float(raw.strip())
        except ValueError:
            raise SettingsError(f"{name}={raw!r} is not a number") from None
        if not value >= low:  # also rejects NaN
            raise SettingsError(f"{name}={raw!r} must be >= {low}")
        return value

    return parse


def _bool(name: str, raw: str) -> bool:
    value = raw.strip().lower()
    if value in ("1", "true", "yes", "on"):
        return True
    if value in ("0", "false", "no", "off", ""):
        return False
    raise SettingsError(f"{name}={raw!r} is not a boolean; use 1/0, true/false, yes/no or on/off")


def _str(name: str, raw: str) -> str:
    return raw.strip()


def _optional_str(name: str, raw: str) -> str | None:
    return raw.strip() or None


def _url_list(name: str, raw: str) -> tuple[str, ...]:
    return tuple(part.strip() for part in raw.split(",") if part.strip())


def _optional_int(low: int) -> Callable[[str, str], int | None]:
    parse = _int(low)

    def parse_optional(name: str, raw: str) -> int | None:
        return parse(name, raw) if raw.strip() else None

    return parse_optional


def _list(name: str, raw: str) -> tuple[str, ...]:
    return tuple(item.strip() for item in raw.split(",") if item.strip())


def _url(name: str, raw: str) -> str | None:
    value = raw.strip()
    if not value:
        return None
    if not value.startswith(("https://", "http://")):
        raise SettingsError(f"{name}={raw!r} is not an http:// or https:// URL")
    return value


# Signature algorithms a token may use; "none" is never one of them.
JWT_ALGORITHMS = (
    "HS256",
    "HS384",
    "HS512",
    "RS256",
    "RS384",
    "RS512",
    "PS256",
    "PS384",
    "PS512",
    "ES256",
    "ES384",
    "ES512",
    "EdDSA",
)


def _algorithms(name: str, raw: str) -> tuple[str, ...]:
    by_upper = {alg.upper(): alg for alg in JWT_ALGORITHMS}
    chosen = []
    for item in _list(name, raw):
        alg = by_upper.get(item.upper())
        if alg is None:
            raise SettingsError(
                f"{name}={raw!r}: {item!r} is not allowed; use some of {', '.join(JWT_ALGORITHMS)}"
            )
        chosen.append(alg)
    return tuple(chosen)


def _api_keys(name: str, raw: str) -> tuple[str, ...]:
    keys = _list(name, raw)
    for key in keys:
        if key.startswith("sha256:"):
            digest = key[len("sha256:") :]
            if len(digest) != 64 or any(c not in "0123456789abcdefABCDEF" for c in digest):
                raise SettingsError(f"{name}: a sha256: key needs 64 hex digits after the prefix")
        elif len(key) < 16:
            raise SettingsError(f"{name}: a plain key needs at least 16 characters")
    return keys


def _proxies(name: str, raw: str) -> str:
    from kit.middleware.forwarded import ProxyTrust

    problem = ProxyTrust.validate(raw)
    if problem:
        raise SettingsError(f"{name}={raw!r}: {problem}; use addresses, networks (CIDR) or *")
    return raw.strip()


def _env(parse: Callable[[str, str], Any], env: str, **kw: Any) -> Any:
    return field(metadata={"env": env, "parse": parse}, **kw)


@dataclass(frozen=True)
class Settings:
    runtime: str = _env(
        _choice(RUNTIMES, custom=True), "KIT_RUNTIME", default_factory=_default_runtime
    )
    app: str | None = _env(_optional_str, "KIT_APP", default=None)
    host: str = _env(_str, "KIT_HOST", default="127.0.0.1")
    port: int = _env(_int(0, 65535), "KIT_PORT", default=8000)
    workers: int = _env(_int(1, 512), "KIT_WORKERS", default=1)
    loop: str = _env(_choice(LOOPS), "KIT_LOOP", default="auto")
    http: str = _env(_choice(HTTP_VERSIONS), "KIT_HTTP", default="auto")
    graceful_timeout: float = _env(_float(0), "KIT_GRACEFUL_TIMEOUT", default=30.0)
    drain_delay: float = _env(_float(0), "KIT_DRAIN_DELAY", default=0.0)
    forwarded_allow_ips: str = _env(_proxies, "KIT_FORWARDED_ALLOW_IPS", default="")
    allow_gil: bool = _env(_bool, "KIT_ALLOW_GIL", default=False)
    reuse_port: bool = _env(_bool, "KIT_REUSE_PORT", default=False)

    database_url: str | None = _env(_optional_str, "DATABASE_URL", default=None)
    pgdata: str = _env(_str, "KIT_PGDATA", default=".kit/pgdata")
    db_pool_min: int = _env(_int(0, 1000), "KIT_DB_POOL_MIN", default=2)
    db_pool_max: int = _env(_int(1, 1000), "KIT_DB_POOL_MAX", default=10)
    db_acquire_timeout: float = _env(_float(0), "KIT_DB_ACQUIRE_TIMEOUT", default=2.0)
    db_statement_timeout: float = _env(_float(0), "KIT_DB_STATEMENT_TIMEOUT", default=10.0)
    db_connect_timeout: float = _env(_float(0), "KIT_DB_CONNECT_TIMEOUT", default=30.0)
    migrate: bool = _env(_bool, "KIT_MIGRATE", default=True)
    # the database past one instance: a transaction pooler, read replicas, the budget
    db_pgbouncer: bool = _env(_bool, "KIT_DB_PGBOUNCER", default=False)
    db_migrate_url: str | None = _env(_optional_str, "KIT_DB_MIGRATE_URL", default=None)
    database_replica_urls: tuple[str, ...] = _env(_url_list, "DATABASE_REPLICA_URLS", default=())
    db_max_replica_lag: float = _env(_float(0), "KIT_DB_MAX_REPLICA_LAG", default=5.0)
    expected_instances: int | None = _env(_optional_int(1), "KIT_EXPECTED_INSTANCES", default=None)

    max_body_size: int = _env(_int(0), "KIT_MAX_BODY_SIZE", default=1024 * 1024)
    max_concurrency: int = _env(_int(0), "KIT_MAX_CONCURRENCY", default=0)
    # Past max_concurrency, requests wait up to queue_timeout for a slot (at most max_queue
    # of them) before they are shed with 503; queue_timeout 0 sheds at once.
    max_queue: int = _env(_int(0), "KIT_MAX_QUEUE", default=1024)
    queue_timeout: float = _env(_float(0), "KIT_QUEUE_TIMEOUT", default=0.5)
    request_timeout: float = _env(_float(0), "KIT_REQUEST_TIMEOUT", default=0.0)
    rate_limit: float = _env(_float(0), "KIT_RATE_LIMIT", default=0.0)
    rate_burst: int = _env(_int(0), "KIT_RATE_BURST", default=0)
    log_format: str = _env(_choice(LOG_FORMATS), "KIT_LOG_FORMAT", default="json")
    log_level: str = _env(_choice(LOG_LEVELS), "KIT_LOG_LEVEL", default="info")
    access_log: bool = _env(_bool, "KIT_ACCESS_LOG", default=True)
    metrics: bool = _env(_bool, "KIT_METRICS", default=True)
    blocking_threshold: float = _env(_float(0), "KIT_BLOCKING_THRESHOLD", default=0.1)
    docs: bool = _env(_bool, "KIT_DOCS", default=True)
    docs_cdn: bool = _env(_bool, "KIT_DOCS_CDN", default=False)
    otel: bool = _env(_bool, "KIT_OTEL", default=False)
    admin: bool = _env(_bool, "KIT_ADMIN", default=False)

    # Exposure to the internet: authentication keys and checks, CORS, trusted hosts.
    auth_jwt_secret: str | None = _env(
        _optional_str, "KIT_AUTH_JWT_SECRET", default=None, repr=False
    )
    auth_jwt_public_key: str | None = _env(
        _optional_str, "KIT_AUTH_JWT_PUBLIC_KEY", default=None, repr=False
    )
    auth_jwks_url: str | None = _env(_url, "KIT_AUTH_JWKS_URL", default=None)
    auth_jwt_algorithms: tuple[str, ...] = _env(_algorithms, "KIT_AUTH_JWT_ALGORITHMS", default=())
    auth_audience: str | None = _env(_optional_str, "KIT_AUTH_AUDIENCE", default=None)
    auth_issuer: str | None = _env(_optional_str, "KIT_AUTH_ISSUER", default=None)
    auth_jwt_leeway: float = _env(_float(0), "KIT_AUTH_JWT_LEEWAY", default=10.0)
    auth_jwks_timeout: float = _env(_float(0), "KIT_AUTH_JWKS_TIMEOUT", default=10.0)
    api_keys: tuple[str, ...] = _env(_api_keys, "KIT_API_KEYS", default=(), repr=False)
    cors_origins: tuple[str, ...] = _env(_list, "KIT_CORS_ORIGINS", default=())
    allowed_hosts: tuple[str, ...] = _env(_list, "KIT_ALLOWED_HOSTS", default=())

    @classmethod
    def from_env(cls, environ: Mapping[str, str] | None = None, **overrides: Any) -> Settings:
        """Read every setting from ``environ`` (default ``os.environ``); ``overrides`` win.

        Overrides that are ``None`` are ignored, so CLI flags can be passed through as they are.
        """
        environ = os.environ if environ is None else environ
        values: dict[str, Any] = {}
        for f in fields(cls):
            raw = environ.get(f.metadata["env"])
            if raw is not None:
                values[f.name] = f.metadata["parse"](f.metadata["env"], raw)
        values.update({k: v for k, v in overrides.items() if v is not None})
        return cls(**values)

    def with_(self, **changes: Any) -> Settings:
        return replace(self, **changes)

    @staticmethod
    def env_name(name: str) -> str:
        for f in fields(Settings):
            if f.name == name:
                return str(f.metadata["env"])
        raise KeyError(name)
