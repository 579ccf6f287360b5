"""What a service reachable from the internet may turn on: CORS and a Host allow-list.

Both are off unless ``KIT_CORS_ORIGINS`` / ``KIT_ALLOWED_HOSTS`` name something. CORS is
Starlette's middleware; the Host check is Starlette's, answering 400 in kit's JSON shape.
"""

from __future__ import annotations

from typing import Any

from starlette.middleware import Middleware
from starlette.middleware.cors import CORSMiddleware
from starlette.middleware.trustedhost import TrustedHostMiddleware
from starlette.types import Receive, Scope, Send

from kit.errors import json_error
from kit.parts import Part
from kit.settings import Settings

# What a browser may send and read across origins: kit's own headers included.
CORS_HEADERS = ["Authorization", "Content-Type", "If-Match", "If-None-Match", "X-Request-ID"]
CORS_EXPOSED = ["ETag", "Location", "Retry-After", "WWW-Authenticate", "X-Request-ID"]


# Probes (a Docker HEALTHCHECK, Kubernetes' httpGet) send the address they dial as the Host:
# 127.0.0.1, the pod IP. The probes answer with no data, so any Host may ask them.
PROBE_PATHS = frozenset({"/healthz", "/readyz"})


class AllowedHosts(TrustedHostMiddleware):
    """Starlette's trusted-host check (``*.example.com`` patterns), without the www redirect;
    the health probes answer whatever the Host."""

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] not in ("http", "websocket") or self.allow_any:
            await self.app(scope, receive, send)
            return
        if scope["path"] in PROBE_PATHS and scope["type"] == "http":
            await self.app(scope, receive, send)
            return
        host = _host(scope)
        for pattern in self.allowed_hosts:
            if host == pattern or (pattern.startswith("*") and host.endswith(pattern[1:])):
                await self.app(scope, receive, send)
                return
        await json_error(400, "Invalid host header")(scope, receive, send)


def _host(scope: Scope) -> str:
    for key, value in scope["headers"]:
        if key == b"host":
            host = bytes(value).decode("latin-1").lower()
            if host.startswith("["):  # [v6]:port
                return host.partition("]")[0] + "]"
            return host.rsplit(":", 1)[0] if host.count(":") == 1 else host
    return ""


def exposure_part(app: Any) -> Part:
    """CORS and the Host check, when their settings name something."""
    return Part(name="exposure", middleware=exposure_middleware(app.settings))


def exposure_middleware(settings: Settings) -> list[Middleware]:
    stack = []
    if settings.allowed_hosts:
        stack.append(Middleware(AllowedHosts, allowed_hosts=list(settings.allowed_hosts)))
    if settings.cors_origins:
        stack.append(
            Middleware(
                CORSMiddleware,
                allow_origins=list(settings.cors_origins),
                allow_methods=["GET", "HEAD", "POST", "PUT", "PATCH", "DELETE", "OPTIONS"],
                allow_headers=CORS_HEADERS,
                expose_headers=CORS_EXPOSED,
                max_age=600,
            )
        )
    return stack
