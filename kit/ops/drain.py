"""Whether this process is draining (a shutdown signal arrived): one flag, set by readiness
(kit.ops.health) and read per response by ObserveMiddleware, which then asks the client to close
its kept-alive connection instead of sending another request into a closing server."""

from __future__ import annotations


class Drain:
    __slots__ = ("active",)

    def __init__(self) -> None:
        self.active = False


DRAIN = Drain()
