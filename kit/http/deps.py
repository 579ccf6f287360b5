"""``Outbound``: the app's HttpClient for a handler, forwarding the request's trace context."""

from __future__ import annotations

from typing import Annotated

from starlette.requests import Request

from kit.di import Depends
from kit.http.client import HttpClient


def outbound(request: Request) -> HttpClient:
    client: HttpClient = request.app.state.kit_http
    traceparent = request.headers.get("traceparent")
    if traceparent is None:
        return client
    return client.bind({"traceparent": traceparent})


Outbound = Annotated[HttpClient, Depends(outbound)]
