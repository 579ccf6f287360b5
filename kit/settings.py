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


def _accepts(parse: Callable[[str, str], Any], values: str) -> Callable[[str, str], Any]:
    """Note which values ``parse`` accepts, for the settings reference."""
    setattr(parse, "accepts", values)  # noqa: B010
    return parse


def _choice(allowed: tuple[str, ...], *, custom: bool = False) -> Callable[[str, str], str]:
    def parse(name: str, raw: str) -> str:
        value = raw.strip().lower() if not custom or ":" not in raw else raw.strip()
        if value in allowed or (custom and ":" in value):
            return value
        extra = " or module:attr" if custom else ""
        raise SettingsError(
            f"{name}={raw!r} is not allowed; use one of {', '.join(allowed)}{extra}"
        )

    return _accepts(parse, ", ".join(allowed) + (" or module:attr" if custom else ""))


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

    return _accepts(parse, f"{low}..{high}" if high is not None else f">= {low}")


def _float(low: float) -> Callable[[str, str], float]:
    def parse(name: str, raw: str) -> float:
        try:
            value = float(raw.strip())
        except ValueError:
            raise SettingsError(f"{name}={raw!r} is not a number") from None
        if not value >= low:  # also rejects NaN
            raise SettingsError(f"{name}={raw!r} must be >= {low}")
        return value

    return _accepts(parse, f">= {low:g}")


def _bool(name: str, raw: str) -> bool:
    value = raw.strip().lower()
    if value in ("1", "true", "yes", "on"):
        return True
    if value in ("0", "false", "no", "off", ""):
        return False
    raise SettingsError(f"{name}={raw!r} is not a boolean; use 1/0, true/false, yes/no or on/off")


_accepts(_bool, "1/0, true/false, yes/no, on/off")


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

    return _accepts(parse_optional, f">= {low}, or empty")


def _list(name: str, raw: str) -> tuple[str, ...]:
    return tuple(item.strip() for item in raw.split(",") if item.strip())


_accepts(_url_list, "comma-separated URLs")
_accepts(_list, "comma-separated")


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


_accepts(_url, "an http:// or https:// URL")
_accepts(_algorithms, "comma-separated, some of " + ", ".join(JWT_ALGORITHMS))


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


_accepts(_api_keys, "comma-separated; plain (16+ characters) or sha256:<64 hex digits>")


def _store(name: str, raw: str) -> str:
    value = raw.strip()
    if value.lower() in ("", "memory"):
        return "memory"
    if value.startswith(("redis://", "rediss://", "unix://")):
        return value
    raise SettingsError(f"{name}={raw!r} is not allowed; use memory or a redis:// URL")


def _bucket_store(name: str, raw: str) -> str:
    if raw.strip().lower() == "postgres":
        return "postgres"
    try:
        return _store(name, raw)
    except SettingsError:
        raise SettingsError(
            f"{name}={raw!r} is not allowed; use memory, postgres or a redis:// URL"
        ) from None


_accepts(_store, "memory, or a redis:// (rediss://, unix://) URL")
_accepts(_bucket_store, "memory, postgres, or a redis:// (rediss://, unix://) URL")


def _proxies(name: str, raw: str) -> str:
    from kit.middleware.forwarded import ProxyTrust

    problem = ProxyTrust.validate(raw)
    if problem:
        raise SettingsError(f"{name}={raw!r}: {problem}; use addresses, networks (CIDR) or *")
    return raw.strip()


_accepts(_proxies, "comma-separated addresses, CIDR networks, or *")


def _env(
    parse: Callable[[str, str], Any], env: str, *, doc: str = "", shown: str = "", **kw: Any
) -> Any:
    """A setting read from ``env``. ``doc`` says what it does and ``shown`` how to show a
    default that is not a plain value; both go into docs/settings.md (kit.settings_reference)."""
    return field(metadata={"env": env, "parse": parse, "doc": doc, "shown": shown}, **kw)


@dataclass(frozen=True)
class Settings:
    runtime: str = _env(
        _choice(RUNTIMES, custom=True),
        "KIT_RUNTIME",
        default_factory=_default_runtime,
        doc=(
            "The ASGI server `kit serve` runs the app on, or `module:attr` of a custom adapter (a"
            " `runtimes.base.Runtime` subclass)."
        ),
        shown="`granian` if installed, else `uvicorn`",
    )
    app: str | None = _env(
        _optional_str,
        "KIT_APP",
        default=None,
        doc="The app `kit serve` serves when no APP argument is given, as `module:attr`.",
    )
    host: str = _env(
        _str,
        "KIT_HOST",
        default="127.0.0.1",
        doc="Address the server binds to; `0.0.0.0` in a container.",
    )
    port: int = _env(
        _int(0, 65535),
        "KIT_PORT",
        default=8000,
        doc=(
            "Port the server binds to; `0` picks a free one. A port another process listens on is"
            " one line and exit 2."
        ),
    )
    workers: int = _env(
        _int(1, 512),
        "KIT_WORKERS",
        default=1,
        doc="Server worker processes (threads on free-threaded Python with granian).",
    )
    loop: str = _env(
        _choice(LOOPS),
        "KIT_LOOP",
        default="auto",
        doc="Event loop: `auto` takes uvloop when installed, else asyncio.",
    )
    http: str = _env(
        _choice(HTTP_VERSIONS),
        "KIT_HTTP",
        default="auto",
        doc=(
            "HTTP versions the server speaks; what `auto` and `2` mean per runtime is in the "
            "runtime table."
        ),
    )
    graceful_timeout: float = _env(
        _float(0),
        "KIT_GRACEFUL_TIMEOUT",
        default=30.0,
        doc=(
            "Seconds in-flight requests get to finish after SIGTERM (and queued background tasks "
            "to drain) before they are cancelled."
        ),
    )
    drain_delay: float = _env(
        _float(0),
        "KIT_DRAIN_DELAY",
        default=0.0,
        doc=(
            "Seconds the instance keeps serving after SIGTERM with `/readyz` answering 503 and "
            "`Connection: close` on every response, so load balancers stop sending to it first."
        ),
    )
    forwarded_allow_ips: str = _env(
        _proxies,
        "KIT_FORWARDED_ALLOW_IPS",
        default="",
        doc=(
            "Proxies (addresses, CIDR networks or `*`) whose `X-Forwarded-*` and `Forwarded` "
            "headers are trusted; empty trusts none."
        ),
        shown="empty (trust none)",
    )
    allow_gil: bool = _env(
        _bool,
        "KIT_ALLOW_GIL",
        default=False,
        doc=(
            "On free-threaded Python, start even when an imported extension turned the GIL back on."
        ),
    )
    reuse_port: bool = _env(
        _bool,
        "KIT_REUSE_PORT",
        default=False,
        doc="Share the port with other processes on purpose (SO_REUSEPORT) where the server can.",
    )

    database_url: str | None = _env(
        _optional_str,
        "DATABASE_URL",
        default=None,
        doc=(
            "PostgreSQL URL (`postgresql://` or `postgres://`). Unset: the embedded development "
            "Postgres in `KIT_PGDATA`."
        ),
        shown="unset (embedded Postgres)",
    )
    pgdata: str = _env(
        _str,
        "KIT_PGDATA",
        default=".kit/pgdata",
        doc=(
            "Data directory of the embedded development Postgres, used when `DATABASE_URL` is "
            "unset."
        ),
    )
    db_pool_min: int = _env(
        _int(0, 1000),
        "KIT_DB_POOL_MIN",
        default=2,
        doc="Connections the asyncpg pool keeps open per worker.",
    )
    db_pool_max: int = _env(
        _int(1, 1000),
        "KIT_DB_POOL_MAX",
        default=10,
        doc="Most connections the pool opens per worker (counted in the connection budget).",
    )
    db_acquire_timeout: float = _env(
        _float(0),
        "KIT_DB_ACQUIRE_TIMEOUT",
        default=2.0,
        doc=(
            "Seconds a request waits for a pool connection before it gets a 503 with `Retry-After`."
        ),
    )
    db_statement_timeout: float = _env(
        _float(0),
        "KIT_DB_STATEMENT_TIMEOUT",
        default=10.0,
        doc=(
            "Seconds a statement may run (PostgreSQL's `statement_timeout`; asyncpg's "
            "`command_timeout` behind a pooler)."
        ),
    )
    db_connect_timeout: float = _env(
        _float(0),
        "KIT_DB_CONNECT_TIMEOUT",
        default=30.0,
        doc=(
            "Seconds an unreachable database is retried at startup before one line says what was "
            "tried."
        ),
    )
    migrate: bool = _env(
        _bool,
        "KIT_MIGRATE",
        default=True,
        doc=(
            "Apply the service's migrations at startup; replicas set `0` and run `kit migrate` "
            "once per release."
        ),
    )
    # the database past one instance: a transaction pooler, read replicas, the budget
    db_pgbouncer: bool = _env(
        _bool,
        "KIT_DB_PGBOUNCER",
        default=False,
        doc=(
            "The database URL leads to a transaction-mode pooler (PgBouncer): no statement cache,"
            " no startup parameters."
        ),
    )
    db_migrate_url: str | None = _env(
        _optional_str,
        "KIT_DB_MIGRATE_URL",
        default=None,
        doc="Direct (not pooled) URL for migrations, which need a session.",
        shown="`DATABASE_URL`",
    )
    database_replica_urls: tuple[str, ...] = _env(
        _url_list,
        "DATABASE_REPLICA_URLS",
        default=(),
        doc="Comma-separated read-replica URLs that `ReadConnection` borrows from, in turn.",
        shown="unset (reads go to the primary)",
    )
    db_max_replica_lag: float = _env(
        _float(0),
        "KIT_DB_MAX_REPLICA_LAG",
        default=5.0,
        doc="Seconds of replay lag before a replica leaves rotation; `0` turns the lag check off.",
    )
    expected_instances: int | None = _env(
        _optional_int(1),
        "KIT_EXPECTED_INSTANCES",
        default=None,
        doc=(
            "Instances that will run at most (the autoscaler's maximum), for the "
            "connection-budget warning at startup."
        ),
        shown="unset",
    )
    # durable jobs (kit.jobs)
    jobs_work: bool = _env(
        _bool,
        "KIT_JOBS_WORK",
        default=True,
        doc="Run the service's durable jobs in this process; `0` only enqueues (an API-only tier).",
    )
    jobs_poll_interval: float = _env(
        _float(0.01),
        "KIT_JOBS_POLL_INTERVAL",
        default=1.0,
        doc=(
            "Seconds between looks for due jobs (a NOTIFY wakes workers sooner on direct "
            "connections)."
        ),
    )
    jobs_lease: float = _env(
        _float(1),
        "KIT_JOBS_LEASE",
        default=30.0,
        doc=(
            "Seconds a running job stays leased without a renewal; a job whose worker died runs"
            " again after it."
        ),
    )

    max_body_size: int = _env(
        _int(0),
        "KIT_MAX_BODY_SIZE",
        default=1024 * 1024,
        doc=(
            "Bytes of request body accepted; more is 413, refused from `Content-Length` before "
            "reading. `App(max_body_size=)` and per-route options override it."
        ),
        shown="`1048576` (1 MiB)",
    )
    gzip_min_size: int = _env(
        _int(0),
        "KIT_GZIP_MIN_SIZE",
        default=0,
        doc=(
            "Responses of at least this many bytes are gzipped for clients that accept it "
            "(Starlette's GZipMiddleware); `0` is off."
        ),
    )
    max_concurrency: int = _env(
        _int(0),
        "KIT_MAX_CONCURRENCY",
        default=0,
        doc=(
            "Requests handled at once per worker; past it they queue, then get 503. `0` is no "
            "limit."
        ),
    )
    # Past max_concurrency, requests wait up to queue_timeout for a slot (at most max_queue
    # of them) before they are shed with 503; queue_timeout 0 sheds at once.
    max_queue: int = _env(
        _int(0),
        "KIT_MAX_QUEUE",
        default=1024,
        doc=(
            "Requests that may wait for a slot past `KIT_MAX_CONCURRENCY` before new ones are "
            "shed with 503."
        ),
    )
    queue_timeout: float = _env(
        _float(0),
        "KIT_QUEUE_TIMEOUT",
        default=0.5,
        doc=(
            "Seconds a request waits in the queue for a slot before a 503 with `Retry-After`; `0`"
            " sheds at once."
        ),
    )
    request_timeout: float = _env(
        _float(0),
        "KIT_REQUEST_TIMEOUT",
        default=0.0,
        doc=(
            "Seconds a request may take before a 504 (the handler is cancelled, its connection "
            "released); also caps outbound calls made while serving it. `0` is no limit."
        ),
    )
    rate_limit: float = _env(
        _float(0),
        "KIT_RATE_LIMIT",
        default=0.0,
        doc=(
            "Requests per second per client address (token bucket, per worker) before 429 with "
            "`RateLimit-*` headers; `0` is off."
        ),
    )
    rate_burst: int = _env(
        _int(0),
        "KIT_RATE_BURST",
        default=0,
        doc="Bucket size of the rate limit; `0` means the rate rounded up.",
    )
    rate_limit_store: str = _env(
        _bucket_store,
        "KIT_RATE_LIMIT_STORE",
        default="memory",
        doc=(
            "Where the rate limit's buckets live: `memory` (per process), `postgres` (the"
            " service's own database) or a `redis://` URL; the last two are shared by every"
            " instance."
        ),
    )
    rate_limit_fail: str = _env(
        _choice(("open", "closed")),
        "KIT_RATE_LIMIT_FAIL",
        default="open",
        doc=(
            "When the shared store is down or slower than `KIT_STORE_TIMEOUT`: `open` lets"
            " requests through, `closed` answers 503 with `Retry-After`."
        ),
    )
    store_timeout: float = _env(
        _float(0.001),
        "KIT_STORE_TIMEOUT",
        default=0.1,
        doc="Seconds a shared store (rate limit, response cache) may take before it is skipped.",
    )
    cache_store: str = _env(
        _store,
        "KIT_CACHE_STORE",
        default="memory",
        doc="Where kit.http's cached answers are shared besides the process: `memory` or a"
        " `redis://` URL.",
    )
    outbound_allow: tuple[str, ...] = _env(
        _list,
        "KIT_OUTBOUND_ALLOW",
        default=(),
        doc=(
            "Networks (CIDR) and host names that calls to URLs from users may reach besides"
            " public addresses (the destination rule refuses private and loopback ranges)."
        ),
    )
    log_format: str = _env(
        _choice(LOG_FORMATS),
        "KIT_LOG_FORMAT",
        default="json",
        doc="Log lines as JSON or as text (control characters escaped).",
    )
    log_level: str = _env(
        _choice(LOG_LEVELS),
        "KIT_LOG_LEVEL",
        default="info",
        doc="Level of kit's and the service's loggers.",
    )
    access_log: bool = _env(
        _bool,
        "KIT_ACCESS_LOG",
        default=True,
        doc="One access line per request, the same on every runtime.",
    )
    metrics: bool = _env(
        _bool,
        "KIT_METRICS",
        default=True,
        doc="Serve Prometheus metrics at `/metrics`, merged across workers.",
    )
    blocking_threshold: float = _env(
        _float(0),
        "KIT_BLOCKING_THRESHOLD",
        default=0.1,
        doc=(
            "Seconds the event loop may be blocked before the blocking call is reported once with"
            " its route and stack; `0` is off."
        ),
    )
    docs: bool = _env(
        _bool, "KIT_DOCS", default=True, doc="Serve `/openapi.json`, `/docs` and `/redoc`."
    )
    docs_cdn: bool = _env(
        _bool,
        "KIT_DOCS_CDN",
        default=False,
        doc="Load Swagger UI and ReDoc from a CDN instead of the files shipped with kit.",
    )
    otel: bool = _env(
        _bool,
        "KIT_OTEL",
        default=False,
        doc="Turn on OpenTelemetry tracing, configured by the standard `OTEL_*` variables.",
    )
    admin: bool = _env(
        _bool,
        "KIT_ADMIN",
        default=False,
        doc="Serve the authenticated `/admin` endpoints (needs a JWT key or `KIT_API_KEYS`).",
    )

    # Exposure to the internet: authentication keys and checks, CORS, trusted hosts.
    auth_jwt_secret: str | None = _env(
        _optional_str,
        "KIT_AUTH_JWT_SECRET",
        default=None,
        repr=False,
        doc="HS256 secret (at least 32 bytes) that bearer JWTs are verified with.",
        shown="unset",
    )
    auth_jwt_public_key: str | None = _env(
        _optional_str,
        "KIT_AUTH_JWT_PUBLIC_KEY",
        default=None,
        repr=False,
        doc=(
            "PEM public key for RS*/PS*/ES*/EdDSA tokens: inline (`\\n` escapes allowed) or a "
            "file path."
        ),
        shown="unset",
    )
    auth_jwks_url: str | None = _env(
        _url,
        "KIT_AUTH_JWKS_URL",
        default=None,
        doc="The issuer's JWKS URL (`https://`; `http://` for local ones), fetched at startup.",
        shown="unset",
    )
    auth_jwt_algorithms: tuple[str, ...] = _env(
        _algorithms,
        "KIT_AUTH_JWT_ALGORITHMS",
        default=(),
        doc="Comma-separated allow-list of token algorithms (never `none`).",
        shown="the key's: HS256; by key type; RS256,ES256 for a JWKS",
    )
    auth_audience: str | None = _env(
        _optional_str,
        "KIT_AUTH_AUDIENCE",
        default=None,
        doc="Required `aud` claim.",
        shown="unset (not checked)",
    )
    auth_issuer: str | None = _env(
        _optional_str,
        "KIT_AUTH_ISSUER",
        default=None,
        doc="Required `iss` claim.",
        shown="unset (not checked)",
    )
    auth_jwt_leeway: float = _env(
        _float(0),
        "KIT_AUTH_JWT_LEEWAY",
        default=10.0,
        doc="Seconds of clock skew allowed on `exp`, `nbf` and `iat`.",
    )
    auth_jwks_timeout: float = _env(
        _float(0),
        "KIT_AUTH_JWKS_TIMEOUT",
        default=10.0,
        doc="Seconds the JWKS fetch is retried at startup before the app refuses to start.",
    )
    api_keys: tuple[str, ...] = _env(
        _api_keys,
        "KIT_API_KEYS",
        default=(),
        repr=False,
        doc="Comma-separated API keys; `sha256:<hex>` for hashed ones (`kit.security.hash_key`).",
        shown="unset",
    )
    cors_origins: tuple[str, ...] = _env(
        _list,
        "KIT_CORS_ORIGINS",
        default=(),
        doc="Comma-separated origins allowed cross-origin; empty turns CORS off.",
        shown="unset (off)",
    )
    allowed_hosts: tuple[str, ...] = _env(
        _list,
        "KIT_ALLOWED_HOSTS",
        default=(),
        doc=(
            "Comma-separated `Host` values accepted (`*.example.com` patterns); others get a JSON"
            " 400."
        ),
        shown="unset (off)",
    )

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
