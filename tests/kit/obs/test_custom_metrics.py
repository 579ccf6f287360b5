"""The service's own metrics: merged across workers, buckets, the label-set cap, the format."""

from __future__ import annotations

import os
import subprocess
import sys
import time
from typing import Any

import httpx
import pytest
from prometheus_client import CollectorRegistry
from prometheus_client.parser import text_string_to_metric_families

from kit.ops.custom_metrics import OTHER, Counter, Gauge, Histogram, collect
from kit.ops.metrics import Snapshot, render


def samples(text: str) -> dict[tuple[str, tuple[tuple[str, str], ...]], float]:
    """Every sample of an exposition, parsed by prometheus-client's own parser."""
    out = {}
    for family in text_string_to_metric_families(text):
        for sample in family.samples:
            out[(sample.name, tuple(sorted(sample.labels.items())))] = sample.value
    return out


def dead_pid() -> int:
    proc = subprocess.Popen([sys.executable, "-c", "pass"])
    proc.wait()
    return proc.pid


def test_histogram_buckets_are_cumulative_and_le_inclusive() -> None:
    registry = CollectorRegistry()
    histogram = Histogram("t_size", "Sizes.", buckets=(1, 10, 100), registry=registry)
    for value in (0.5, 1, 7, 10, 11, 1000):
        histogram.observe(value)
    text = render([Snapshot(pid=1, requests=[], custom=collect(registry))]).decode()
    got = samples(text)
    assert got[("t_size_bucket", (("le", "1.0"),))] == 2
    assert got[("t_size_bucket", (("le", "10.0"),))] == 4
    assert got[("t_size_bucket", (("le", "100.0"),))] == 5
    assert got[("t_size_bucket", (("le", "+Inf"),))] == 6
    assert got[("t_size_count", ())] == 6
    assert got[("t_size_sum", ())] == 0.5 + 1 + 7 + 10 + 11 + 1000


def test_label_sets_past_the_cap_are_counted_as_other() -> None:
    registry = CollectorRegistry()
    counter = Counter("t_calls", "Calls.", ["user"], max_series=2, registry=registry)
    for user in ("ann", "bob", "cat", "dan", "ann"):
        counter.labels(user=user).inc()
    counter.labels("eve").inc(2)  # positional values are capped the same way
    text = render([Snapshot(pid=1, requests=[], custom=collect(registry))]).decode()
    got = samples(text)
    assert got[("t_calls_total", (("user", "ann"),))] == 2
    assert got[("t_calls_total", (("user", "bob"),))] == 1
    assert got[("t_calls_total", (("user", OTHER),))] == 4
    assert ("t_calls_total", (("user", "cat"),)) not in got


def test_wrong_labels_still_fail_as_in_prometheus_client() -> None:
    counter = Counter("t_wrong", "Wrong.", ["a"], registry=CollectorRegistry())
    with pytest.raises(ValueError, match="Incorrect label names"):
        counter.labels(b="x")
    with pytest.raises(ValueError, match="Incorrect label count"):
        counter.labels("x", "y")


def test_gauge_modes_merge_over_live_and_exited_workers() -> None:
    registry = CollectorRegistry()
    live_sum = Gauge("t_queue", "Queue.", registry=registry)
    most = Gauge("t_peak", "Peak.", multiprocess_mode="max", registry=registry)
    each = Gauge("t_each", "Each.", multiprocess_mode="all", registry=registry)
    counter = Counter("t_done", "Done.", registry=registry)
    gone = dead_pid()
    snapshots = []
    for pid, value in ((os.getpid(), 3.0), (gone, 5.0)):
        for metric in (live_sum, most, each):
            metric.set(value)
        counter.inc()
        snapshots.append(Snapshot(pid=pid, requests=[], custom=collect(registry)))
    got = samples(render(snapshots).decode())
    assert got[("t_queue", ())] == 3  # livesum: the exited worker's gauge is gone
    assert got[("t_peak", ())] == 5  # max: over every worker that reported
    assert got[("t_each", (("pid", str(gone)),))] == 5
    assert got[("t_done_total", ())] == 1 + 2  # counters: cumulative snapshots add up


def test_unknown_gauge_mode_is_refused() -> None:
    with pytest.raises(ValueError, match="livesum"):
        Gauge("t_bad", "Bad.", multiprocess_mode="mostrecent", registry=CollectorRegistry())


def test_counter_incremented_in_two_workers_sums_at_one_scrape(serve: Any, runtime: str) -> None:
    server = serve(runtime, workers=2)
    pids: dict[int, int] = {}
    sent = 0
    while len(pids) < 2 and sent < 300:  # new connections spread over both workers
        response = httpx.get(
            server.url + "/count", params={"size": 5}, headers={"Connection": "close"}
        )
        pid = response.json()["pid"]
        pids[pid] = pids.get(pid, 0) + 1
        sent += 1
    assert len(pids) == 2, pids
    deadline = time.monotonic() + 10
    seen = []
    while time.monotonic() < deadline:  # workers publish their numbers every second
        text = httpx.get(server.url + "/metrics", headers={"Connection": "close"}).text
        got = samples(text)  # the whole exposition, kit's series too, parses
        seen.append(got.get(("obs_hits_total", (("colour", "red"),)), 0))
        if seen[-1] == sent:
            break
        time.sleep(0.2)
    assert seen[-1] == sent, (seen, pids)
    assert got[("obs_size_bucket", (("le", "1.0"),))] == 0
    assert got[("obs_size_bucket", (("le", "10.0"),))] == sent
    assert got[("obs_size_count", ())] == sent
    assert (
        got[
            ("kit_http_requests_total", (("method", "GET"), ("route", "/count"), ("status", "200")))
        ]
        == sent
    )
