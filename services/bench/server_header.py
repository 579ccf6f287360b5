"""Adds the ``Server`` header TechEmpower requires, for the peer apps in bench/apps (the kit
service says ``App(response_headers={"server": "kit"})``). `kit serve` turns the servers' own
off (granian keeps one only when the app sends none), so each app names itself on every
runtime; ``Date`` stays the server's job."""

from __future__ import annotations

from starlette.types import ASGIApp, Message, Receive, Scope, Send


class ServerHeader:
    def __init__(self, app: ASGIApp, name: str) -> None:
        self.app = app
        self.header = (b"server", name.encode("latin-1"))

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return

        async def send_with_server(message: Message) -> None:
            if message["type"] == "http.response.start":
                # a new list: the app may reuse its own between responses
                message["headers"] = [*message.get("headers", ()), self.header]
            await send(message)

        await self.app(scope, receive, send_with_server)
