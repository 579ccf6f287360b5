"""Real NGINX in front of real `kit serve` instances, as deploy/ sets them up."""

from __future__ import annotations

from pathlib import Path

import pytest

from bench.nginx import DEPLOY, NGINX, Nginx, site_config
from kit.testing import ServerProcess

__all__ = ["DEPLOY", "NGINX", "REPO", "Instance", "Nginx", "needs_nginx", "site_config"]

REPO = Path(__file__).resolve().parents[2]


def nginx_available() -> bool:
    return Path(NGINX).is_file()


needs_nginx = pytest.mark.skipif(
    not nginx_available(), reason="nginx is not installed (.ci/run installs it as root)"
)


class Instance(ServerProcess):
    """``kit serve APP`` on a given port (the same one again after a restart)."""

    def __init__(self, app: str, port: int, directory: Path, generation: int, **kw: object):
        super().__init__(
            app,
            log=directory / f"kit-{port}-{generation}.log",
            ready_path="/readyz",
            stop_timeout=20,
            name=f"instance :{port}",
            **kw,  # type: ignore[arg-type]
        )
        self.port = port
        self.url = f"http://127.0.0.1:{port}"
        self.command[self.command.index("--port") + 1] = str(port)
        self.generation = generation
        self.directory = directory
        self.options = kw

    def successor(self) -> Instance:
        return Instance(self.app, self.port, self.directory, self.generation + 1, **self.options)
