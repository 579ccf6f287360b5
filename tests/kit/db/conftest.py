import contextlib
import shutil
import socket
import tempfile
from collections.abc import AsyncIterator, Iterator
from pathlib import Path

import httpx
import pytest

from kit import App
from kit.db.embedded import Cluster
from kit.settings import Settings


@pytest.fixture
def settings() -> Settings:
    return Settings.from_env().with_(
        db_pool_min=1,
        db_pool_max=4,
        db_acquire_timeout=0.5,
        db_statement_timeout=1.0,
        db_connect_timeout=2.0,
        access_log=False,
        migrate=True,
    )


@pytest.fixture
def run_app():  # type: ignore[no-untyped-def]
    return running


@contextlib.asynccontextmanager
async def running(app: App) -> AsyncIterator[httpx.AsyncClient]:
    """The app with its lifespan entered, and an in-process client whose requests can be
    cancelled (the app runs in the caller's task)."""
    async with app.router.lifespan_context(app):
        transport = httpx.ASGITransport(app=app)
        async with httpx.AsyncClient(transport=transport, base_url="http://test") as client:
            yield client


@pytest.fixture(scope="session")
def scratch_root() -> Iterator[Path]:
    """A private directory for throwaway clusters. Not under pytest's tmp dir: pytest resets
    its base to 0700, which the server user (when tests run as root) cannot traverse."""
    path = Path(tempfile.mkdtemp(prefix="kit-db-tests-"))
    try:
        yield path
    finally:
        shutil.rmtree(path, ignore_errors=True)


@pytest.fixture(scope="session")
def throwaway_pgdata(scratch_root: Path) -> Iterator[Path]:
    """One initialized cluster directory for the whole session (initdb takes seconds on a
    busy machine); fault and embedded tests start and stop it with their own options."""
    cluster = Cluster(scratch_root / "throwaway")
    cluster.initialize()
    yield cluster.pgdata
    cluster.stop(mode="immediate")


@pytest.fixture(scope="session")
def throwaway_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@pytest.fixture
def cluster(throwaway_pgdata: Path, throwaway_port: int) -> Cluster:
    """The throwaway cluster, running on 127.0.0.1 (TCP, as a real server would be)."""
    cluster = Cluster(throwaway_pgdata, port=throwaway_port, host="127.0.0.1")
    cluster.stop()  # it may run with other options
    cluster.start()
    return cluster
