"""A custom ``KIT_RUNTIME=module:attr`` adapter: it reports what it was given, serves nothing."""

from __future__ import annotations

import sys

from runtimes.base import Launch, Runtime


class ReportingRuntime(Runtime):
    name = "reporting"
    package = "kit"

    def serve(self, launch: Launch) -> int:
        print(
            f"reporting: {launch.app} {launch.url} loop={launch.loop}"
            f" workers={launch.workers} http={launch.http}",
            file=sys.stderr,
        )
        return 0


def not_a_runtime() -> object:
    return object()
