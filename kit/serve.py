"""``kit serve APP``: settings, database, migrations, one startup line, then the runtime."""

from __future__ import annotations

import argparse
import asyncio
import os
import platform
import sys
from importlib import import_module
from typing import Any

from kit.imports import ImportFromStringError, import_from_string
from kit.ops.ports import PortUnavailable, check_bindable, when_listening, write_line
from kit.params import UnbindableParameter
from kit.settings import Settings, SettingsError
from runtimes.base import Launch, Runtime, RuntimeUnavailable
from runtimes.gil import (
    describe_gil,
    free_threaded_build,
    gil_enabled,
    gil_refusal,
    thread_workers,
)
from runtimes.loops import resolve_loop
from runtimes.registry import RUNTIMES, load_runtime

# Settings fields that have a flag of the same name (underscores become dashes).
FLAGS = ("runtime", "host", "port", "workers", "loop", "http", "graceful_timeout")


class ServeError(Exception):
    """kit serve cannot start with these inputs; one line for the user, exit code 2."""


class StartupFailed(Exception):
    """Something kit serve depends on failed (e.g. the database); one line, exit code 1.

    ``printed``: the line is already on stderr (the database connector prints its own).
    """

    def __init__(self, message: str, *, printed: bool = False) -> None:
        super().__init__(message)
        self.printed = printed


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="kit serve",
        description="Serve an ASGI app; every flag overrides its KIT_* environment variable.",
    )
    parser.add_argument("app", nargs="?", help="module:attr (default: KIT_APP)")
    parser.add_argument("--runtime", help=f"{' | '.join(RUNTIMES)} | module:attr (KIT_RUNTIME)")
    parser.add_argument("--host", help="bind address (KIT_HOST, default 127.0.0.1)")
    parser.add_argument("--port", help="bind port (KIT_PORT, default 8000)")
    parser.add_argument("--workers", help="processes, threads on free-threaded (KIT_WORKERS)")
    parser.add_argument("--loop", help="auto | uvloop | asyncio (KIT_LOOP)")
    parser.add_argument("--http", help="auto | 1 | 2 (KIT_HTTP)")
    parser.add_argument("--graceful-timeout", help="seconds to drain (KIT_GRACEFUL_TIMEOUT)")
    parser.add_argument("--no-migrate", action="store_true", help="skip migrations (KIT_MIGRATE=0)")
    parser.add_argument(
        "--allow-gil", action="store_true", help="start even if the GIL came back (KIT_ALLOW_GIL=1)"
    )
    parser.add_argument(
        "--reuse-port",
        action="store_true",
        help="share the port with other servers that set SO_REUSEPORT (KIT_REUSE_PORT=1)",
    )
    return parser


def parse_flag(name: str, raw: str) -> Any:
    """Validate a flag exactly like its environment variable, naming the flag in errors."""
    env = Settings.env_name(name)
    try:
        return getattr(Settings.from_env({env: raw}), name)
    except SettingsError as exc:
        flag = "--" + name.replace("_", "-")
        raise SettingsError(str(exc).replace(env, flag, 1)) from None


def settings_from_args(args: argparse.Namespace) -> Settings:
    overrides = {n: parse_flag(n, getattr(args, n)) for n in FLAGS if getattr(args, n) is not None}
    if args.no_migrate:
        overrides["migrate"] = False
    if args.allow_gil:
        overrides["allow_gil"] = True
    if args.reuse_port:
        overrides["reuse_port"] = True
    return Settings.from_env(app=args.app, **overrides)


def export_settings(settings: Settings) -> None:
    """Worker processes (and the app's own Settings) read the environment: show them the flags."""
    for name in (*FLAGS, "app", "migrate", "allow_gil", "reuse_port"):
        value = getattr(settings, name)
        if value is not None:
            text = "1" if value is True else "0" if value is False else str(value)
            os.environ[Settings.env_name(name)] = text


def import_app(path: str) -> Any:
    try:
        return import_from_string(path)
    except ImportFromStringError as exc:
        if exc.reason == "format":
            raise ServeError(
                f"APP {path!r} must be module:attr, e.g. services.bench.app:app"
            ) from None
        raise ServeError(f"cannot import APP {path!r}: {exc}") from None
    except UnbindableParameter as exc:  # a route the app registers at import: say which, once
        raise ServeError(str(exc)) from None


def launch_options(settings: Settings, *, loop: str, threads: bool) -> Launch:
    """What the runtime adapter needs, taken from Settings (runtimes/ does not read them)."""
    assert settings.app is not None
    return Launch(
        app=settings.app,
        loop=loop,
        threads=threads,
        host=settings.host,
        port=settings.port,
        workers=settings.workers,
        http=settings.http,
        graceful_timeout=settings.graceful_timeout,
        drain_delay=settings.drain_delay,
        log_level=settings.log_level,
    )


def prepare_database(app: Any, settings: Settings) -> None:
    """Resolve DATABASE_URL (embedded Postgres when unset) and migrate the app's migrations.

    Any ASGI app gets the URL (the FastAPI and raw peers in bench/ read it too); only a kit App
    that declares no database is known not to need one.
    """
    from kit.app import App

    database = getattr(app, "database", None)
    if database is None and (isinstance(app, App) or settings.database_url):
        return
    try:
        from kit.db.embedded import (
            EmbeddedPostgresError,
            EmbeddedPostgresMissing,
            resolve_database_url,
        )
        from kit.db.urls import DatabaseURLError
    except ImportError as exc:  # pragma: no cover - kit.db ships with kit
        raise StartupFailed(f"the app has a database but kit.db is unavailable: {exc}") from None
    try:
        url = resolve_database_url(settings)
    except (EmbeddedPostgresMissing, DatabaseURLError) as exc:
        raise ServeError(str(exc)) from None
    except EmbeddedPostgresError as exc:
        raise StartupFailed(str(exc)) from None
    os.environ["DATABASE_URL"] = url  # workers and the app's own Settings read it from here
    migrations = getattr(database, "migrations", None) if database is not None else None
    if settings.migrate and migrations is not None:
        migrate = import_module("kit.db.migrate")  # imported only for apps with a database
        try:
            migrate_url = migrate.migration_url(settings, url)  # never through a pooler
            applied = asyncio.run(migrate.apply_migrations(migrate_url, migrations))
        except DatabaseURLError as exc:  # KIT_DB_MIGRATE_URL
            raise ServeError(str(exc)) from None
        except migrate.DatabaseStartupError as exc:
            raise StartupFailed(str(exc), printed=True) from None
        except migrate.MigrationError as exc:
            raise StartupFailed(f"migrations: {exc}") from None
        if applied:
            print(f"kit: applied migrations {', '.join(applied)}", file=sys.stderr)


def check_port(runtime: Runtime, launch: Launch, *, reuse_port: bool) -> None:
    """Refuse a port another process listens on, unless sharing it was asked for."""
    if not reuse_port:
        try:
            check_bindable(launch.host, launch.port)
        except PortUnavailable as exc:
            raise ServeError(str(exc)) from None
    elif not runtime.shares_port(launch):
        raise ServeError(
            f"{runtime.name} cannot share a port (KIT_REUSE_PORT=1); use granian, or hypercorn "
            "with --workers 2 or more"
        )


def announce(line: str, launch: Launch) -> None:
    """Print ``line`` once the server listens (at once for port 0, which only it knows)."""
    if launch.port == 0:
        write_line(line)
    else:
        when_listening(launch.host, launch.port, lambda: write_line(line))


def startup_line(runtime: Runtime, launch: Launch, *, free_threaded: bool, gil_on: bool) -> str:
    python = platform.python_version() + ("t" if free_threaded else "")
    workers = f"workers={launch.workers}" + (" (threads)" if launch.threads else "")
    return (
        f"kit: serving {launch.app} on {runtime.name} {runtime.version()}"
        f" | Python {python} ({describe_gil(gil_on)})"
        f" | {workers} loop={launch.loop} http={launch.http}"
        f" | {launch.url}"
    )


def main(argv: list[str]) -> int:
    try:
        args = build_parser().parse_args(argv)
    except SystemExit as exc:  # argparse: --help is 0, a usage error is 2
        return exc.code if isinstance(exc.code, int) else 2
    settings = settings_from_args(args)
    if settings.app is None:
        print("kit serve: no APP given; pass module:attr or set KIT_APP", file=sys.stderr)
        return 2
    try:
        runtime = load_runtime(settings.runtime)
        loop = resolve_loop(settings.loop)
        export_settings(settings)  # before the import: the app builds its Settings from env
        app = import_app(settings.app)
        # Checked after the import: importing an extension is what re-enables the GIL.
        free_threaded, gil_on = free_threaded_build(), gil_enabled()
        refusal = gil_refusal(
            free_threaded=free_threaded, gil_on=gil_on, allow_gil=settings.allow_gil
        )
        if refusal:
            print(f"kit serve: {refusal}", file=sys.stderr)
            return 1
        threads = thread_workers(
            free_threaded=free_threaded,
            gil_on=gil_on,
            server_supports_threads=runtime.thread_workers,
        )
        launch = launch_options(settings, loop=loop, threads=threads)
        runtime.check(launch)
        check_port(runtime, launch, reuse_port=settings.reuse_port)
        prepare_database(app, settings)
    except (RuntimeUnavailable, ServeError) as exc:
        print(f"kit serve: {exc}", file=sys.stderr)
        return 2
    except StartupFailed as exc:
        if not exc.printed:
            print(f"kit serve: {exc}", file=sys.stderr)
        return 1
    announce(startup_line(runtime, launch, free_threaded=free_threaded, gil_on=gil_on), launch)
    return runtime.serve(launch)
