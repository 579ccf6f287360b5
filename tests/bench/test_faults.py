"""Faults between hosts (bench/faults.py) on real hosts: network namespaces on a bridge, Postgres,
the catalog and orders each on its own, iptables dropping packets and a delaying proxy.

Each scenario sends orders before, during and after a fault on one link and checks what a
client may rely on: never a 500 or a hang, every refusal a 503/504 with Retry-After within the
deadline, every acknowledged order stored and confirmed, and steady success once it ends.
"""

from __future__ import annotations

import os
from collections.abc import Iterator
from pathlib import Path

import pytest

from bench import faults
from bench.hosts import Network

pytestmark = [
    pytest.mark.slow,
    pytest.mark.skipif(Network.available() is not None, reason=str(Network.available())),
]

# The deadline is kept by the servers; the bound here only allows for a busy machine.
LATE = faults.REQUEST_TIMEOUT + 3.0


@pytest.fixture(scope="module")
def stack(tmp_path_factory: pytest.TempPathFactory) -> Iterator[faults.Stack]:
    work = tmp_path_factory.mktemp("faults")
    os.chmod(work, 0o755)  # the Postgres system user reaches its data directory
    for parent in Path(work).parents:
        if parent == Path("/"):
            break
        os.chmod(parent, os.stat(parent).st_mode | 0o011)
    with faults.stack("granian", work) as built:
        yield built


@pytest.fixture(scope="module")
def products(stack: faults.Stack) -> list[int]:
    return stack.seed()


def test_hosts_reach_each_other_only_through_the_bridge(stack: faults.Stack) -> None:
    catalog, pg = stack.net["catalog"], stack.net["postgres"]
    assert (
        catalog.run("ip", "-4", "-o", "addr", "show", "scope", "global").stdout.count("inet ") == 1
    )
    pg.drop()
    try:
        probe = f"echo > /dev/tcp/{pg.address}/{faults.PG_PORT}"
        connect = catalog.run("timeout", "2", "bash", "-c", probe, check=False)
        assert connect.returncode == 124  # dropped, not refused: the connect just waits
    finally:
        pg.heal()


@pytest.mark.parametrize(
    ("link", "fault"),
    [
        ("orders-catalog", "partition"),
        ("orders-postgres", "blackhole"),
        ("catalog-postgres", "loss"),
        ("orders-catalog", "latency"),
    ],
)
def test_a_fault_between_hosts_is_survived(
    stack: faults.Stack, products: list[int], link: str, fault: str
) -> None:
    outcome = faults.run_scenario(stack, products, link, fault, during=6.0, after=8.0)
    assert outcome.requests > 0
    assert outcome.server_errors == 0, outcome
    assert outcome.no_answer == 0, outcome
    assert set(outcome.by_status) <= {"201", "503", "504"}, outcome
    assert outcome.slowest_s <= LATE, outcome
    assert outcome.retry_after_missing == 0, outcome
    # nothing acknowledged is lost; a commit whose answer the fault swallowed may be stored
    # without an acknowledgement (the client saw a 503/504 and may retry)
    assert outcome.acknowledged_not_stored == 0, outcome
    assert outcome.acknowledged_not_confirmed == 0, outcome
    assert outcome.recovery_s is not None, outcome  # steady success again before the end
