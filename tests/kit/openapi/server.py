"""A real ``kit serve`` process for the docs tests, and the services that have an app.py."""

from __future__ import annotations

from pathlib import Path

from kit.testing import ServerProcess as Server

REPO = Path(__file__).resolve().parents[3]
FEATURE_APP = "tests.kit.openapi.app:app"


def service_apps() -> list[str]:
    """``services.NAME.app:app`` for every service in services/ (found anew on each run)."""
    return [
        f"services.{path.parent.name}.app:app"
        for path in sorted((REPO / "services").glob("*/app.py"))
    ]


def serve(app: str, directory: Path, **env: str) -> Server:
    """Start ``kit serve APP`` on a free loopback port; return once /healthz answers 200."""
    environ = {"KIT_ACCESS_LOG": "0", **env}
    return Server(app, runtime="uvicorn", env=environ, cwd=REPO, log=directory).start()
