"""prometheus-client's default registry at /metrics: a user's Counter defined the usual way,
merged over a real multi-worker server; what cannot be shown is said once at startup."""

from __future__ import annotations

import os
import time
from collections import Counter as Tally
from pathlib import Path

import httpx
import prometheus_client
from prometheus_client import CollectorRegistry
from prometheus_client.parser import text_string_to_metric_families

from kit import App
from kit.ops.custom_exposition import default_registry_families
from kit.ops.metrics import Snapshot, render
from kit.testing import ServerProcess, TestClient
from services.catalog.tests.servers import any_runtime
from tests.kit.obs.test_custom_metrics import dead_pid

REPO = Path(__file__).resolve().parents[3]
APP = "tests.kit.metrics.default_registry_app:app"
Samples = dict[tuple[str, tuple[tuple[str, str], ...]], float]


def parse(text: str) -> tuple[Samples, list[str]]:
    """Every sample, and every family name (a name twice would be a broken exposition)."""
    samples: Samples = {}
    names = []
    for family in text_string_to_metric_families(text):
        names.append(family.name)
        for sample in family.samples:
            samples[(sample.name, tuple(sorted(sample.labels.items())))] = sample.value
    return samples, names


def test_a_counter_of_the_default_registry_shows_in_process() -> None:
    counter = prometheus_client.Counter("plain_inproc", "Defined the usual way.")
    try:
        counter.inc(3)
        with TestClient(App()) as client:
            samples, names = parse(client.get("/metrics").text)
        assert samples[("plain_inproc_total", ())] == 3
        assert [n for n, c in Tally(names).items() if c > 1] == []
        assert "process_cpu_seconds" in names  # the default collectors come along
    finally:
        prometheus_client.REGISTRY.unregister(counter)


def test_gauges_merge_by_their_multiprocess_mode() -> None:
    registry = CollectorRegistry()
    every = prometheus_client.Gauge("t_every", "Default mode: one per worker.", registry=registry)
    summed = prometheus_client.Gauge(
        "t_summed", "Summed.", multiprocess_mode="livesum", registry=registry
    )
    recent = prometheus_client.Gauge(
        "t_recent", "Not mergeable.", multiprocess_mode="mostrecent", registry=registry
    )
    snapshots = []
    for pid, value in ((os.getpid(), 1), (dead_pid(), 2)):
        every.set(value * 10)
        summed.set(value)
        recent.set(value)
        snapshots.append(Snapshot(pid=pid, requests=[], custom=default_registry_families(registry)))
    samples, _ = parse(render(snapshots).decode())
    this, gone = (str(snapshot.pid) for snapshot in snapshots)
    # "all" (prometheus-client's default): one series per worker, exited ones too
    assert samples[("t_every", (("pid", this),))] == 10
    assert samples[("t_every", (("pid", gone),))] == 20
    assert samples[("t_summed", ())] == 1  # livesum: the exited worker no longer counts
    # a mode kit cannot merge: one series per live worker
    assert [labels for name, labels in samples if name == "t_recent"] == [(("pid", this),)]


def test_merged_over_the_workers_of_a_real_server(tmp_path: Path) -> None:
    server = ServerProcess(
        APP,
        "--workers",
        "2",
        runtime=any_runtime(),
        env={"KIT_LOG_FORMAT": "json"},
        cwd=REPO,
        log=tmp_path,
        stop_timeout=15,
    ).start()
    try:
        pids: Tally[int] = Tally()
        sent = 0
        while len(pids) < 2 and sent < 300:  # new connections spread over both workers
            response = httpx.get(server.url + "/hit", headers={"Connection": "close"})
            pids[response.json()["pid"]] += 1
            sent += 1
        assert len(pids) == 2, pids
        deadline = time.monotonic() + 30
        while time.monotonic() < deadline:  # workers publish their numbers every second
            samples, names = parse(httpx.get(server.url + "/metrics").text)
            if samples.get(("plain_hits_total", (("colour", "red"),))) == sent:
                break
            time.sleep(0.2)
        assert samples.get(("plain_hits_total", (("colour", "red"),))) == sent, samples
        per_worker = {labels for name, labels in samples if name == "plain_last_hit_pid"}
        assert per_worker == {(("pid", str(pid)),) for pid in pids}
        assert samples[("plain_queued", ())] == 4  # 2 in each live worker
        assert "kit_plain_clash" not in names
        assert [n for n, c in Tally(names).items() if c > 1] == []
    finally:
        server.stop()
    output = server.output()
    said = [line for line in output.splitlines() if "kit_plain_clash" in line]
    assert said, output[-2000:]
    assert "kit_ names are kit's own" in said[0]
