"""The admin surface (``KIT_ADMIN=1``): look inside a running worker, always authenticated.

- ``GET /admin/info``: service, kit, Python and server versions, GIL, git commit, start time and
  the settings with secrets redacted.
- ``GET /admin/tasks``: this worker's asyncio tasks, each with a short stack of what it awaits
  and, for a request, its route, request id and age.
- ``GET /admin/loggers``, ``PUT /admin/loggers/{name}``: read and change log levels (in the
  worker that answers: with several workers, each has its own levels).
- ``GET /admin/pool``: this worker's pool connections and what each runs (``pg_stat_activity``),
  query text cut to its first line.
- ``GET /admin/jobs``, ``POST /admin/jobs/{id}/retry``: durable jobs (kit.jobs), shared by all.

Every answer is for the one worker that handled the request; ``pid`` says which.
"""

from __future__ import annotations

import asyncio
import contextlib
import dataclasses
import logging
import os
import platform
import re
import subprocess
import sys
import time
from collections.abc import AsyncIterator
from datetime import datetime, timezone
from importlib.metadata import PackageNotFoundError, version
from types import FrameType
from typing import Any, Literal

import anyio
import msgspec

from kit.di import Depends
from kit.errors import HTTPException
from kit.middleware.observe import ObserveMiddleware
from kit.ops.admin_auth import admin_guard
from kit.parts import Part
from kit.routing import RouteOptions, Router
from kit.service_settings import loaded
from kit.settings import Settings

STACK_FRAMES = 8  # innermost frames per task: from the handler down to what it awaits
QUERY_CHARS = 200
REDACTED = "<redacted>"
_SECRET_NAME = re.compile(r"secret|password|passwd|token|key", re.IGNORECASE)
_URL_PASSWORD = re.compile(r"(://[^:/@\s,]*:)[^@\s,]*@")
Level = Literal["debug", "info", "warning", "error", "critical", "notset"]


def redact(name: str, value: Any) -> Any:
    """A setting's value fit to show: secrets replaced, passwords cut out of URLs."""
    if value is None or isinstance(value, (bool, int, float)):
        return value
    if _SECRET_NAME.search(name):
        return REDACTED
    if isinstance(value, str):
        return _URL_PASSWORD.sub(rf"\1{REDACTED}@", value)
    if isinstance(value, (tuple, list)):  # e.g. replica URLs
        return [redact(name, item) for item in value]
    return str(value)  # anything else is shown as text, never as an object to walk


def _package_version(name: str) -> str | None:
    try:
        return version(name)
    except PackageNotFoundError:
        return None


def _git_commit() -> str | None:
    for env in ("KIT_GIT_COMMIT", "GIT_COMMIT", "SOURCE_COMMIT"):
        if os.environ.get(env):
            return os.environ[env]
    with contextlib.suppress(OSError, subprocess.SubprocessError):  # once, at startup
        done = subprocess.run(
            ["git", "rev-parse", "HEAD"], capture_output=True, text=True, timeout=2, check=True
        )
        return done.stdout.strip() or None
    return None


def _gil() -> str:
    check = getattr(sys, "_is_gil_enabled", None)
    return "on" if check is None or check() else "off"


class LevelChange(msgspec.Struct):
    level: Level | None


class Admin:
    def __init__(self, app: Any) -> None:
        self.app = app
        self.started_at: str | None = None
        self.commit = _git_commit()

    @contextlib.asynccontextmanager
    async def lifespan(self, app: Any) -> AsyncIterator[None]:
        self.started_at = datetime.now(timezone.utc).isoformat(timespec="seconds")
        yield

    async def info(self) -> dict[str, Any]:
        settings: Settings = self.app.settings
        runtime = settings.runtime
        return {
            "pid": os.getpid(),
            "service": {"name": self.app.title, "version": self.app.version},
            "kit": _package_version("kit-asgi"),
            "python": {
                "version": platform.python_version(),
                "implementation": platform.python_implementation(),
                "gil": _gil(),
            },
            "runtime": {"name": runtime, "version": _package_version(runtime.split(":")[0])},
            "git_commit": self.commit,
            "started_at": self.started_at,
            "settings": {
                f.name: redact(f.name, getattr(settings, f.name))
                for f in dataclasses.fields(settings)
            },
            "service_settings": {
                name: {env: redact(env, value) for env, value in s.redacted().items()}
                for name, s in loaded().items()
            },
        }

    async def tasks(self) -> dict[str, Any]:
        now = time.perf_counter()
        current = asyncio.current_task()
        out = [_describe_task(task, now, task is current) for task in asyncio.all_tasks()]
        out.sort(key=lambda t: -(t["age_seconds"] or 0.0))
        return {"pid": os.getpid(), "count": len(out), "tasks": out}

    async def loggers(self) -> dict[str, Any]:
        manager = logging.root.manager
        names = sorted(n for n, lg in manager.loggerDict.items() if isinstance(lg, logging.Logger))
        return {
            "pid": os.getpid(),
            "note": "levels are per worker: this answer and any change are this worker's",
            "loggers": {
                name: _describe_logger(logging.getLogger(name or None)) for name in ["", *names]
            },
        }

    async def set_level(self, name: str, change: LevelChange) -> dict[str, Any]:
        logger = logging.getLogger(None if name in ("", "root") else name)
        logger.setLevel((change.level or "notset").upper())
        return {"pid": os.getpid(), "logger": logger.name, **_describe_logger(logger)}

    async def pool(self) -> dict[str, Any]:
        database = getattr(self.app, "database", None)
        pool = getattr(database, "_pool", None)
        if pool is None:
            raise HTTPException(404, "this app has no open database pool")
        pids = _backend_pids(pool)
        answer: dict[str, Any] = {
            "pid": os.getpid(),
            "size": pool.get_size(),
            "idle": pool.get_idle_size(),
            "max": pool.get_max_size(),
            "connections": [],
        }
        try:
            with anyio.fail_after(2.0):
                async with pool.acquire() as connection:
                    rows = await connection.fetch(
                        "SELECT pid, state, wait_event_type, wait_event, backend_start,"
                        " xact_start, query_start, now() - query_start AS running_for, query"
                        " FROM pg_stat_activity WHERE pid = ANY($1::int[]) ORDER BY pid",
                        [*pids, connection.get_server_pid()],
                    )
                    mine = connection.get_server_pid()
        except TimeoutError:
            answer["error"] = "no pool connection free within 2s to ask pg_stat_activity"
            return answer
        for row in rows:
            running_for = row["running_for"]
            answer["connections"].append(
                {
                    "backend_pid": row["pid"],
                    "state": row["state"],
                    "wait_event": row["wait_event"],
                    "running_seconds": running_for.total_seconds() if running_for else None,
                    "query": (row["query"] or "").strip().split("\n", 1)[0][:QUERY_CHARS],
                    "this_request": row["pid"] == mine,
                }
            )
        return answer


def _backend_pids(pool: Any) -> list[int]:
    pids = []
    for holder in getattr(pool, "_holders", ()):  # asyncpg keeps no public list of connections
        connection = getattr(holder, "_con", None)
        if connection is not None and not connection.is_closed():
            pids.append(connection.get_server_pid())
    return pids


def _describe_logger(logger: logging.Logger) -> dict[str, Any]:
    return {
        "level": logging.getLevelName(logger.level).lower() if logger.level else None,
        "effective": logging.getLevelName(logger.getEffectiveLevel()).lower(),
    }


def _frames(task: asyncio.Task[Any]) -> tuple[list[FrameType], Any]:
    """The frames of a task's await chain, outermost first, and what the innermost awaits."""
    frames = []
    awaitable: Any = task.get_coro()
    while awaitable is not None:
        frame = getattr(awaitable, "cr_frame", None) or getattr(awaitable, "gi_frame", None)
        if frame is None:
            break
        frames.append(frame)
        awaitable = getattr(awaitable, "cr_await", None) or getattr(awaitable, "gi_yieldfrom", None)
    return frames, awaitable


def _running_frames() -> list[FrameType]:
    frames = []
    frame: FrameType | None = sys._getframe(2)  # the caller of _describe_task's caller
    while frame is not None:
        frames.append(frame)
        frame = frame.f_back
    return frames[::-1]


def _describe_task(task: asyncio.Task[Any], now: float, current: bool) -> dict[str, Any]:
    if current:  # running: its coroutines are not suspended, so walk the call stack instead
        frames, awaiting = _running_frames(), None
    else:
        frames, awaiting = _frames(task)
    scope: dict[str, Any] | None = None
    start: float | None = None
    for frame in frames:
        local = frame.f_locals
        if scope is None:
            candidate = local.get("scope")
            if isinstance(candidate, dict) and candidate.get("type") == "http":
                scope = candidate
        if frame.f_code is ObserveMiddleware.__call__.__code__:
            start = local.get("start")
    stack = [
        f"{getattr(f.f_code, 'co_qualname', f.f_code.co_name)} "
        f"({f.f_code.co_filename}:{f.f_lineno})"
        for f in frames[-STACK_FRAMES:]
    ]
    if awaiting is not None:
        stack.append(f"awaiting {type(awaiting).__name__}")
    coro = task.get_coro()
    described: dict[str, Any] = {
        "name": task.get_name(),
        "coroutine": getattr(coro, "__qualname__", type(coro).__name__),
        "current": current,
        "done": task.done(),
        "stack": stack,
        "route": None,
        "path": None,
        "request_id": None,
        "age_seconds": round(now - start, 3) if isinstance(start, float) else None,
    }
    if scope is not None:
        described["route"] = scope.get("kit.route")
        described["path"] = scope.get("path")
        described["request_id"] = scope.get("kit.request_id")
    return described


def admin_part(app: Any) -> Part:
    """The /admin routes behind authentication; refuses to start without any configured."""
    guard = admin_guard(app.settings)
    admin = Admin(app)
    # a guard runs before the body is read: a caller without a key learns nothing more
    options = RouteOptions(include_in_schema=False, tags=["admin"], guards=[Depends(guard)])
    router = Router()
    router.add_api_route("/admin/info", admin.info, methods=["GET"], options=options)
    router.add_api_route("/admin/tasks", admin.tasks, methods=["GET"], options=options)
    router.add_api_route("/admin/loggers", admin.loggers, methods=["GET"], options=options)
    router.add_api_route("/admin/loggers/{name}", admin.set_level, methods=["PUT"], options=options)
    router.add_api_route("/admin/pool", admin.pool, methods=["GET"], options=options)
    from kit.jobs import add_job_routes

    add_job_routes(router, app, options)  # /admin/jobs: durable jobs, when the app has them
    return Part(name="admin", routes=router.routes, lifespans=[admin.lifespan])
