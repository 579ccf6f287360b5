"""kit.middleware.request_id: ids from the client, validated, or generated."""

from __future__ import annotations

import importlib
import os
import re
import warnings

import pytest

from kit.middleware import request_id
from kit.middleware.observe import ObserveMiddleware
from kit.middleware.request_id import incoming_request_id
from tests.kit.middleware.apps import client, starlette

pytestmark = pytest.mark.anyio


@pytest.mark.parametrize(
    ("sent", "kept"),
    [
        (b"abc-123", True),
        (b"a" * 128, True),
        (b"0af7651916cd43dd8448eb211c80319c", True),
        (b"a" * 129, False),
        (b"", False),
        (b"has space", False),
        (b"new\nline", False),
        (b'quote"d', False),
        ("ünicode".encode(), False),
    ],
)
async def test_request_id_from_the_client_is_validated(sent: bytes, kept: bool) -> None:
    assert (incoming_request_id([(b"x-request-id", sent)]) == sent) is kept
    async with client(starlette((ObserveMiddleware, {}))) as c:
        response = await c.get("/whoami", headers=[(b"x-request-id", sent)])
    returned = response.headers["x-request-id"]
    assert response.json() == {"request_id": returned}
    if kept:
        assert returned.encode() == sent
    else:
        assert re.fullmatch("[0-9a-f]{32}", returned)


async def test_request_ids_are_generated_unique_and_scoped_to_the_request() -> None:
    async with client(starlette((ObserveMiddleware, {}))) as c:
        ids = {(await c.get("/whoami")).headers["x-request-id"] for _ in range(20)}
    assert len(ids) == 20
    assert request_id() is None


def test_generated_ids_are_unique_across_forked_workers() -> None:
    generate = importlib.import_module("kit.middleware.request_id").new_request_id
    ids = {generate() for _ in range(1000)}
    read, write = os.pipe()
    with warnings.catch_warnings():  # 3.12+ warns about forking a process with threads
        warnings.simplefilter("ignore", DeprecationWarning)
        pid = os.fork()
    if pid == 0:  # a worker forked from the server's process, as servers start them
        try:
            os.write(write, "\n".join(generate() for _ in range(1000)).encode())
        finally:
            os._exit(0)
    os.close(write)
    with os.fdopen(read) as child:
        child_ids = set(child.read().split("\n"))
    os.waitpid(pid, 0)
    assert len(child_ids) == 1000
    assert all(re.fullmatch("[0-9a-f]{32}", rid) for rid in child_ids)
    assert not ids & child_ids
    assert {rid[:16] for rid in ids}.isdisjoint(rid[:16] for rid in child_ids)
