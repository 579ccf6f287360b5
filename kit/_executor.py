"""The one executor every typed route's requests take: ``Executor`` runs a ``RoutePlan``.

Steps, in order, each skipped when the plan has nothing for it: guards (before the body), the
body, the arguments (extractors, dependency steps, or the solver), the handler, closing the
function-scoped dependencies, rendering; then sending, then closing the rest. Anything raised
before the first byte is answered by the app's handler for it (``answer_error``), after the
request's ``CleanupGroup`` saw it.
"""

from __future__ import annotations

import typing
from typing import Any

from starlette.concurrency import run_in_threadpool
from starlette.requests import ClientDisconnect, Request
from starlette.responses import Response
from starlette.types import Receive, Scope, Send

from kit._plan import GENERATOR, JSON_TYPE, RESOURCE, RoutePlan, Step
from kit.codec import encode
from kit.di import FAILED, CleanupGroup, Context, read_parameters, solve, solve_guards
from kit.dispatch import STARTED
from kit.errors import (
    DIRECT_ANSWERS,
    ErrorItem,
    ValidationFailed,
    call_handler,
    lookup_handler,
    server_error_handler,
)


class Executor:
    """The ASGI app of a typed route: runs its plan (swapped whole when the plan is
    recompiled, for ``dependency_overrides``)."""

    __slots__ = ("plan",)

    def __init__(self, plan: RoutePlan) -> None:
        self.plan = plan

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        plan = self.plan
        request: Any = Request(scope, receive, send) if plan.needs_request else None
        ctx: Any = None
        cleanup: Any = None
        if plan.needs_context:
            ctx = Context(request)
            cleanup = ctx.cleanup
        elif plan.steps or plan.guard_steps:
            cleanup = CleanupGroup()
        try:
            if not plan.takes_arguments:  # the bare shape: nothing to read, open or close
                result = await plan.call()
            else:
                if ctx is not None:  # the solver
                    if plan.guards and not await solve_guards(plan.solver, ctx):  # type: ignore[arg-type]
                        raise ValidationFailed(ctx.errors)
                    body = (
                        await plan.body.decode_body(scope, receive)
                        if plan.body is not None
                        else None
                    )
                    if not read_parameters(plan.solver, ctx):  # type: ignore[arg-type]
                        raise ValidationFailed(ctx.errors)
                    kwargs = await solve(plan.solver, ctx, body)  # type: ignore[arg-type]
                    if kwargs is FAILED:
                        raise ValidationFailed(ctx.errors)
                else:
                    kwargs = {}
                    if plan.guard_steps:  # before the body
                        await open_steps(plan.guard_steps, request, kwargs, cleanup)
                    if plan.body is not None:
                        kwargs[plan.body_name] = await plan.body.decode_body(scope, receive)
                    if plan.extractors:
                        errors: list[ErrorItem] = []
                        for extract in plan.extractors:
                            extract(scope, kwargs, errors)
                        if errors:
                            raise ValidationFailed(errors)
                    for special in plan.request_names:
                        kwargs[special] = request
                    if plan.steps:
                        await open_steps(plan.steps, request, kwargs, cleanup)
                if plan.is_async:
                    result = await plan.call(**kwargs)
                else:
                    result = await run_in_threadpool(plan.call, **kwargs)
                if cleanup is not None and cleanup.function_scoped:
                    raised = await cleanup.close(None, function_scope_only=True)
                    if raised is not None:
                        raise raised
            renderer = plan.renderer
            out: Any
            if renderer.plain_json and ctx is None and not isinstance(result, Response):
                body = encode(result)  # (Renderer.render's JSON, without its call)
                out = (
                    renderer.status_code,
                    [JSON_TYPE, (b"content-length", b"%d" % len(body))],
                    body,
                )
            else:
                out = renderer.render(result, ctx)
        except BaseException as exc:
            # what the request opened is closed, then the error answered (a handler's
            # HTTPException is an ordinary answer, a 404: no coroutine more than needed)
            if cleanup is not None:
                exc = typing.cast(BaseException, await cleanup.close(exc))
            if isinstance(exc, ClientDisconnect):
                return
            if not isinstance(exc, Exception):
                raise exc  # cancellation and the like are not answered
            await answer_error(scope, receive, send, exc)
            return
        # The response is on its way: failures now can only be raised, not answered.
        scope[STARTED] = True
        try:
            if out.__class__ is tuple:
                await send({"type": "http.response.start", "status": out[0], "headers": out[1]})
                await send({"type": "http.response.body", "body": out[2]})
            else:
                await out(scope, receive, send)
            if ctx is not None and ctx.background is not None:
                await ctx.background()
        except BaseException as exc:
            if cleanup is not None:
                raised = await cleanup.close(exc)
                if raised is not exc:
                    raise typing.cast(BaseException, raised) from exc
            raise
        if cleanup:  # request-scoped entries wait for the response to be sent
            raised = await cleanup.close(None)
            if raised is not None:
                raise raised


async def open_steps(
    steps: tuple[Step, ...], request: Request, kwargs: dict[str, Any], cleanup: CleanupGroup
) -> None:
    """Call each step's provider in order, its value into ``kwargs``, what it opened into
    ``cleanup`` (as CleanupGroup.add would, without a call per step)."""
    for name, call, request_names, how, function_scope, close in steps:
        if how == RESOURCE:
            value, state = await call(request)
            cleanup.append((close, state, function_scope))
        elif how == GENERATOR:
            gen = call(**dict.fromkeys(request_names, request))
            value = await gen.__anext__()
            cleanup.append((None, gen, function_scope))
        else:
            value = await call(**dict.fromkeys(request_names, request))
        if function_scope:
            cleanup.function_scoped = True
        if name is not None:
            kwargs[name] = value


async def answer_error(scope: Scope, receive: Receive, send: Send, exc: Exception) -> None:
    """Answer ``exc`` with the app's handler for it (the 500 handler if none)."""
    handler = lookup_handler(scope.get("starlette.exception_handlers"), exc)
    if handler is None:
        handler = server_error_handler
    else:
        direct = DIRECT_ANSWERS.get(handler)  # kit's own handler: no Request, no Response
        answer = None if direct is None else direct(exc)
        if answer is not None:
            await send({"type": "http.response.start", "status": answer[0], "headers": answer[1]})
            await send({"type": "http.response.body", "body": answer[2]})
            return
    request = Request(scope, receive, send)
    try:
        response = await call_handler(handler, request, exc)
    except Exception as failed:  # the handler itself failed: what Starlette would answer
        if handler is server_error_handler:
            raise
        response = await server_error_handler(request, failed)
    await response(scope, receive, send)
