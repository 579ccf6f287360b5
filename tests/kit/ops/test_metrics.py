"""kit.ops.metrics: histogram buckets, merging workers' snapshots, the text exposition."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

from kit.ops.metrics import BUCKETS, Registry, Snapshot, SnapshotFiles, render
from tests.kit.ops.conftest import metric

LABELS = {"method": "GET", "route": "/a", "status": "200"}


def dead_pid() -> int:
    proc = subprocess.Popen([sys.executable, "-c", "pass"])
    proc.wait()
    return proc.pid


def test_histogram_buckets_are_cumulative_and_le_inclusive() -> None:
    registry = Registry()
    for seconds in (0.001, 0.002, 0.3, 99.0):
        registry.observe("GET", "/a", 200, seconds)
    text = render([registry.snapshot()]).decode()
    assert metric(text, "kit_http_request_duration_seconds_bucket", **LABELS, le="0.001") == 1
    assert metric(text, "kit_http_request_duration_seconds_bucket", **LABELS, le="0.0025") == 2
    assert metric(text, "kit_http_request_duration_seconds_bucket", **LABELS, le="0.5") == 3
    assert metric(text, "kit_http_request_duration_seconds_bucket", **LABELS, le="10.0") == 3
    assert metric(text, "kit_http_request_duration_seconds_bucket", **LABELS, le="+Inf") == 4
    assert metric(text, "kit_http_request_duration_seconds_count", **LABELS) == 4
    assert (
        metric(text, "kit_http_request_duration_seconds_sum", **LABELS)
        == 0.001 + 0.002 + 0.3 + 99.0
    )


def test_merge_sums_counters_of_all_workers_and_gauges_of_live_ones() -> None:
    buckets = [1] + [0] * len(BUCKETS)
    alive = Snapshot(
        pid=1,
        requests=[("GET", "/a", 200, 1, 0.001, buckets)],
        in_flight=2,
        loop_lag=0.01,
        pool=(4, 1),
    )
    gone = Snapshot(
        pid=dead_pid(),
        requests=[("GET", "/a", 200, 1, 0.001, buckets)],
        in_flight=5,
        loop_lag=9.0,
        loop_blocked=3,
        pool=(10, 0),
    )
    text = render([alive, gone]).decode()
    assert metric(text, "kit_http_requests_total", **LABELS) == 2
    assert metric(text, "kit_event_loop_blocked_total") == 3  # a counter: kept after exit
    assert metric(text, "kit_http_requests_in_flight") == 2
    assert metric(text, "kit_event_loop_lag_seconds") == 0.01
    assert metric(text, "kit_db_pool_size") == 4
    assert metric(text, "kit_db_pool_in_use") == 3


def test_labels_are_escaped() -> None:
    registry = Registry()
    registry.observe("GET", '/q"\\\n', 200, 0.1)
    assert 'route="/q\\"\\\\\\n"' in render([registry.snapshot()]).decode()


def test_snapshot_files_round_trip_and_skip_garbage(tmp_path: Path) -> None:
    registry = Registry()
    registry.observe("GET", "/a", 200, 0.1)
    SnapshotFiles(tmp_path).write(registry.snapshot())
    (tmp_path / "1.json").write_bytes(b"not json")
    (tmp_path / "2.json").write_bytes(b"[1,2]")
    reader = SnapshotFiles(tmp_path)
    reader.path = tmp_path / "reader.json"
    (snap,) = reader.read_others()
    assert snap.requests[0][:4] == ("GET", "/a", 200, 1)


def test_pool_stats_failure_is_not_a_scrape_failure() -> None:
    registry = Registry()

    def closed() -> tuple[int, int]:
        raise RuntimeError("the database pool is not open")

    registry.pool_stats = closed
    assert b"kit_db_pool_size" not in render([registry.snapshot()])
