"""``Part``: what one piece of kit contributes to an App, which App alone assembles.

A part is built by a plain function that takes what it needs (settings, the app for its
title or database) and returns a ``Part``; it never calls back into the App. Adding one:

1. write ``def my_part(app) -> Part`` in its own module, returning its routes, middleware,
   lifespan factories and exception handlers (any of them may be empty);
2. append ``my_part(self)`` to the list in ``App._builtin_parts`` (or call
   ``app.add_part(my_part(app))`` from user code).

App then serves the routes after the user's routes, wraps the middleware outside the user's
(parts in order, each part's list outermost first), enters the lifespans in order before the
user's lifespan (and exits them in reverse), and registers the exception handlers.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from contextlib import AbstractAsyncContextManager
from dataclasses import dataclass, field
from typing import Any

from starlette.middleware import Middleware
from starlette.routing import BaseRoute

# Called with the app; yields an optional mapping merged into the lifespan state.
LifespanFactory = Callable[[Any], AbstractAsyncContextManager[Mapping[str, Any] | None]]


@dataclass(frozen=True)
class Part:
    name: str = ""  # for a reader, and for code that must find one part (bench drops "operations")
    routes: Sequence[BaseRoute] = ()
    middleware: Sequence[Middleware] = ()
    lifespans: Sequence[LifespanFactory] = ()
    exception_handlers: Mapping[Any, Callable[..., Any]] = field(default_factory=dict)
    # Run when the middleware stack is built, i.e. when the app is about to serve (not when it
    # is imported): process-wide setup such as installing the log handler.
    on_build: Sequence[Callable[[], None]] = ()
