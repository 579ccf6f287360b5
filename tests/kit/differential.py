"""Run the same requests through every shape a route's plan can take and compare what comes
back: status, headers, body, what was raised, and (for the generated handlers) the order in
which dependencies were opened and closed. Used by test_differential*.py."""

from __future__ import annotations

import random
from collections.abc import Sequence
from typing import Any, NamedTuple

from starlette.testclient import TestClient

from kit import App
from kit.routing import APIRoute

# headers that differ between any two requests, whatever answered them
VOLATILE = frozenset({"x-request-id", "date", "traceparent", "server-timing"})


class Request(NamedTuple):
    method: str
    path: str
    params: dict[str, str] = {}
    headers: dict[str, str] = {}
    body: bytes | None = None


class Answer(NamedTuple):
    status: int
    headers: list[tuple[str, str]]
    body: bytes
    raised: str | None
    events: tuple[str, ...]


def typed_routes(app: App) -> list[APIRoute]:
    return [route for route in app.router.routes if isinstance(route, APIRoute)]


def ask(client: TestClient, request: Request, events: list[str] | None = None) -> Answer:
    random.seed(1)  # services/bench picks random rows: the same ones for every shape
    if events is not None:
        events.clear()
    raised = None
    try:
        response = client.request(
            request.method,
            request.path,
            params=request.params,
            headers=request.headers,
            content=request.body,
        )
        status, body = response.status_code, response.content
        headers = [(k, v) for k, v in response.headers.multi_items() if k not in VOLATILE]
    except Exception as exc:  # raised after the response started: part of the answer
        raised = type(exc).__name__
        status, body, headers = 0, b"", []
    return Answer(status, headers, body, raised, tuple(events or ()))


def differences(
    app: App,
    client: TestClient,
    requests: Sequence[Request],
    events: list[str] | None = None,
) -> list[str]:
    """Each request answered with every route in its cheapest shape, then each further shape
    it can take, down to the general one (one after the other, so that what a request
    writes is written alike): where an answer differs from the general one."""
    routes = typed_routes(app)
    depth = max((len(route.shapes()) for route in routes), default=1)
    levels: list[list[Any]] = []
    for level in range(depth):
        for route in routes:
            shapes = route.shapes()
            route.use_shape(shapes[min(level, len(shapes) - 1)])
        levels.append([route.handler.plan for route in routes])
    for route in routes:
        route.use_shape(None)
    defaults = [route.handler.plan for route in routes]
    found = []
    try:
        for request in requests:
            answers = []
            for plans in levels:
                for route, plan in zip(routes, plans, strict=True):
                    route.handler.plan = plan
                answers.append(ask(client, request, events))
            for level, answer in enumerate(answers[:-1]):
                if answer != answers[-1]:
                    found.append(f"{request} at shape level {level}: {answer} != {answers[-1]}")
    finally:
        for route, plan in zip(routes, defaults, strict=True):
            route.handler.plan = plan
    return found


def requests_for(app: App) -> list[Request]:
    """Requests every typed route of ``app`` is asked: its parameters absent, valid-looking
    and invalid, with and without a body of the right or the wrong kind."""
    requests: list[Request] = []
    for route in typed_routes(app):
        params = route.handler.plan.source.all_params
        for value in ("1", "x"):
            path = route.path_format
            for info in params:
                if info.location == "path":
                    path = path.replace("{" + info.alias + "}", value)
            query = {p.alias: value for p in params if p.location == "query"}
            headers = {p.alias: value for p in params if p.location == "header"}
            cookies = [f"{p.alias}={value}" for p in params if p.location == "cookie"]
            if cookies:
                headers["cookie"] = "; ".join(cookies)
            bodies: list[bytes | None] = [None]
            if route.body_param is not None:
                bodies = [None, b"{}", b'{"name": "a", "size": 1}', b"[1", b"\xff"]
            for method in sorted(route.methods or ()):
                if method == "HEAD":
                    continue
                for body in bodies:
                    sent = dict(headers)
                    if body is not None:
                        sent["content-type"] = "application/json"
                    sent.setdefault("x-request-id", "differential")
                    requests.append(Request(method, path, {}, sent, body))
                    requests.append(Request(method, path, query, sent, body))
    return requests
