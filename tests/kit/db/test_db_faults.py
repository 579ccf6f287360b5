"""Fault tests on a throwaway PostgreSQL cluster (TCP on loopback) that the tests stop and
start: the app answers 503 while it is down and recovers by itself when it is back."""

import logging
import socket
import threading

import anyio
import pytest
from starlette.testclient import TestClient

from kit import App
from kit.db import Connection, Database, DatabaseStartupError
from kit.db.embedded import Cluster
from kit.settings import Settings


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def make_app(url: str, settings: Settings) -> App:
    app = App(database=Database(url=url), settings=settings)

    @app.get("/value")
    async def value(conn: Connection) -> int:
        return int(await conn.fetchval("SELECT 42"))

    return app


def test_database_stopped_during_traffic_gives_503_then_recovers(
    cluster: Cluster, settings: Settings, caplog: pytest.LogCaptureFixture
) -> None:
    app = make_app(cluster.url(), settings)
    statuses: list[int] = []
    stop = threading.Event()
    with caplog.at_level(logging.WARNING), TestClient(app) as client:

        def traffic() -> None:
            while not stop.is_set():
                statuses.append(client.get("/value").status_code)

        worker = threading.Thread(target=traffic)
        worker.start()
        try:
            while len(statuses) < 20:
                stop.wait(0.01)
            cluster.stop(mode="fast")
            seen = len(statuses)
            while len(statuses) < seen + 20:  # requests keep being answered while it is down
                stop.wait(0.01)
            down = statuses[seen:]
            cluster.start()
            for _ in range(300):  # the pool reconnects lazily, no restart
                if client.get("/value").status_code == 200:
                    break
                stop.wait(0.02)
        finally:
            stop.set()
            worker.join()
        assert set(statuses[:20]) == {200}
        assert set(down) == {503}
        recovered = [client.get("/value") for _ in range(20)]
        assert [r.status_code for r in recovered] == [200] * 20
        assert recovered[0].json() == 42
    # the outage is told once when it starts and once when it ends, not once per 503
    outage = [r.getMessage() for r in caplog.records if r.name == "kit.db"]
    assert len(outage) == 2, outage
    assert outage[0].startswith("database unavailable, answering 503")
    assert outage[1].startswith("database available again")


def test_a_connection_killed_mid_request_is_503_and_replaced(
    cluster: Cluster, settings: Settings
) -> None:
    app = make_app(cluster.url(), settings.with_(db_pool_min=1, db_pool_max=1))

    @app.get("/die")
    async def die(conn: Connection) -> None:
        await conn.execute("SELECT pg_terminate_backend(pg_backend_pid())")

    with TestClient(app) as client:
        response = client.get("/die")
        assert response.status_code == 503
        assert "terminat" not in response.text
        assert client.get("/value").json() == 42


def test_unreachable_at_startup_retries_then_fails_with_one_line(
    settings: Settings, capsys: pytest.CaptureFixture[str]
) -> None:
    port = free_port()  # nothing listens here
    app = make_app(
        f"postgresql://postgres@127.0.0.1:{port}/postgres", settings.with_(db_connect_timeout=0.5)
    )
    with pytest.raises(DatabaseStartupError) as raised, TestClient(app):
        pass
    message = str(raised.value)
    assert f"127.0.0.1:{port}/postgres" in message
    assert "attempts" in message
    assert "KIT_DB_CONNECT_TIMEOUT" in message
    err_lines = [line for line in capsys.readouterr().err.splitlines() if "cannot connect" in line]
    assert err_lines == [f"kit: {message}"]


def test_startup_waits_for_a_database_that_comes_up(cluster: Cluster, settings: Settings) -> None:
    late = cluster
    late.stop()
    app = make_app(late.url(), settings.with_(db_connect_timeout=20))
    starter = threading.Timer(0.5, late.start)
    try:
        starter.start()
        with TestClient(app) as client:
            assert client.get("/value").json() == 42
    finally:
        starter.join()


def test_bad_credentials_fail_at_once(cluster: Cluster, settings: Settings) -> None:
    app = make_app(cluster.url("no_such_database"), settings.with_(db_connect_timeout=30))
    with (
        pytest.raises(DatabaseStartupError, match=r"1 attempt;.*InvalidCatalogName"),
        TestClient(app),
    ):
        pass


@pytest.mark.anyio
async def test_ping(cluster: Cluster, settings: Settings) -> None:
    database = Database(url=cluster.url())
    assert not await database.ping()  # not open yet
    await database.open(settings)
    try:
        assert await database.ping(timeout=1.0)
        cluster.stop(mode="immediate")
        assert not await database.ping(timeout=1.0)
    finally:
        await anyio.to_thread.run_sync(cluster.start)
        await database.close()
