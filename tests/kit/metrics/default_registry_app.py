"""An app whose metrics are prometheus-client's own, in its default registry, defined the usual
way: /metrics must show them next to kit's, merged over the workers."""

from __future__ import annotations

import os

from prometheus_client import Counter, Gauge

from kit import App

HITS = Counter("plain_hits", "Hits of /hit, counted in the default registry.", ["colour"])
LAST_HIT_PID = Gauge("plain_last_hit_pid", "The pid of the worker hit last (one per worker).")
QUEUED = Gauge(
    "plain_queued", "Work queued, summed over the live workers.", multiprocess_mode="livesum"
)
CLASH = Counter("kit_plain_clash", "Uses a name kit keeps for itself.")

app = App(title="plain")


@app.get("/hit")
async def hit(colour: str = "red") -> dict[str, int]:
    HITS.labels(colour=colour).inc()
    LAST_HIT_PID.set(os.getpid())
    QUEUED.set(2)
    CLASH.inc()
    return {"pid": os.getpid()}
