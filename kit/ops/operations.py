"""Operations: the built-in middleware, the metrics and loop-monitor lifespan, and /metrics."""

from __future__ import annotations

import contextlib
from collections.abc import AsyncIterator
from functools import partial
from typing import Any

from starlette.middleware import Middleware
from starlette.routing import BaseRoute, Route

from kit.middleware.access_log import AccessLog
from kit.middleware.concurrency import ConcurrencyLimitMiddleware
from kit.middleware.forwarded import ForwardedMiddleware
from kit.middleware.observe import Headers, ObserveMiddleware
from kit.middleware.rate_limit import RateLimitMiddleware
from kit.middleware.timeout import TimeoutMiddleware
from kit.ops.logs import configure_logging, flush_logs
from kit.ops.loop_monitor import LoopMonitor
from kit.ops.metrics import Metrics, MetricsEndpoint
from kit.parts import Part
from kit.settings import Settings
from kit.stores import bucket_store

__all__ = ["default_middleware", "metrics_for", "operations_part"]


def metrics_for(app: Any) -> Metrics:
    """The app's metrics, created on first use (middleware and the /metrics route share it)."""
    metrics: Metrics | None = getattr(app.state, "kit_metrics", None)
    if metrics is None:
        metrics = app.state.kit_metrics = Metrics()
    return metrics


def _pool_stats(app: Any) -> tuple[int, int] | None:
    pool = getattr(getattr(app, "database", None), "pool", None)
    if pool is None:
        return None
    return pool.get_size(), pool.get_idle_size()


def operations_lifespan(
    app: Any, metrics: Metrics | None
) -> contextlib.AbstractAsyncContextManager[None]:
    """Metrics sharing between workers, the event-loop monitor, and a log flush at exit."""
    settings: Settings = app.settings

    def on_lag(lag: float) -> None:
        if metrics is not None:
            metrics.registry.loop_lag = lag

    def on_blocked() -> None:
        if metrics is not None:
            metrics.registry.loop_blocked += 1

    monitor = LoopMonitor(settings.blocking_threshold, on_lag=on_lag, on_blocked=on_blocked)

    @contextlib.asynccontextmanager
    async def lifespan() -> AsyncIterator[None]:
        async with contextlib.AsyncExitStack() as stack:
            if metrics is not None:
                metrics.registry.pool_stats = lambda: _pool_stats(app)
                await stack.enter_async_context(metrics.lifespan(app))
            await stack.enter_async_context(monitor.running())
            stack.callback(flush_logs)  # workers may exit without running atexit
            yield

    return lifespan()


def default_middleware(
    settings: Settings, metrics: Metrics | None, headers: Headers = ()
) -> list[Middleware]:
    """The middleware every kit App gets, outermost first; each only when its setting is on.
    ``headers`` are added to every response that does not carry them (``App(response_headers=)``).
    """
    registry = metrics.registry if metrics is not None else None
    access_log = AccessLog() if settings.access_log else None
    stack = []
    if settings.forwarded_allow_ips:  # first: everything below sees the resolved client
        stack.append(Middleware(ForwardedMiddleware, trusted=settings.forwarded_allow_ips))
    stack.append(
        Middleware(ObserveMiddleware, registry=registry, access_log=access_log, headers=headers)
    )
    if settings.max_concurrency:
        stack.append(
            Middleware(
                ConcurrencyLimitMiddleware,
                limit=settings.max_concurrency,
                max_queue=settings.max_queue,
                queue_timeout=settings.queue_timeout,
            )
        )
    if settings.rate_limit:
        stack.append(
            Middleware(
                RateLimitMiddleware,
                rate=settings.rate_limit,
                burst=settings.rate_burst,
                store=bucket_store(settings.rate_limit_store, settings.store_timeout),
                fail_open=settings.rate_limit_fail == "open",
            )
        )
    if settings.request_timeout:
        stack.append(Middleware(TimeoutMiddleware, seconds=settings.request_timeout))
    return stack


def metrics_routes(metrics: Metrics | None) -> list[BaseRoute]:
    if metrics is None:
        return []
    endpoint = MetricsEndpoint(metrics)
    return [Route("/metrics", endpoint, methods=["GET"], include_in_schema=False)]


def operations_part(app: Any) -> Part:
    """Logging, the built-in middleware, /metrics and the operations lifespan, per Settings."""
    settings: Settings = app.settings
    metrics = metrics_for(app) if settings.metrics else None
    return Part(
        name="operations",
        routes=metrics_routes(metrics),
        middleware=default_middleware(settings, metrics, getattr(app, "response_headers", ())),
        lifespans=[lambda app_: operations_lifespan(app_, metrics)],
        on_build=[partial(configure_logging, settings.log_format, settings.log_level)],
    )
