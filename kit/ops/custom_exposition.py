"""Text exposition of the service's own metrics, merged over the workers' snapshots.

Counters, histograms and summaries add up over every snapshot; a gauge merges by the mode its
snapshot names (see kit.ops.custom_metrics). Kept apart from kit.ops.custom_metrics so that
kit.ops.metrics can render without importing the user-facing classes.
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

from prometheus_client import generate_latest
from prometheus_client.metrics_core import Metric


def _merge(
    snapshots: Iterable[Any], live: set[int]
) -> dict[str, tuple[str, str, dict[tuple[str, tuple[tuple[str, str], ...]], float]]]:
    """Each family's samples summed (or max/min, per gauge mode) over the workers' snapshots."""
    merged: dict[str, tuple[str, str, dict[tuple[str, tuple[tuple[str, str], ...]], float]]] = {}
    for snapshot in snapshots:
        alive = snapshot.pid in live
        for name, kind, documentation, mode, samples in snapshot.custom:
            if name not in merged:
                merged[name] = (kind, documentation, {})
            values = merged[name][2]
            if kind not in ("counter", "histogram", "summary") and not mode:
                mode = "livemax"  # info, enum, stateset: the same in every worker
            if mode.startswith("live") and not alive:
                continue
            for sample_name, labels, value in samples:
                if mode.endswith("all"):
                    labels = {**labels, "pid": str(snapshot.pid)}
                key = (sample_name, tuple(sorted(labels.items())))
                if key not in values:
                    values[key] = value
                elif mode.endswith("max"):
                    values[key] = max(values[key], value)
                elif mode.endswith("min"):
                    values[key] = min(values[key], value)
                else:
                    values[key] += value
    return merged


class _Merged:
    """A collector over the merged families, for prometheus-client's exposition."""

    def __init__(self, snapshots: Iterable[Any], live: set[int]) -> None:
        self.merged = _merge(snapshots, live)

    def collect(self) -> Iterable[Metric]:
        for name, (kind, documentation, values) in self.merged.items():
            family = Metric(name, documentation, kind)
            for (sample_name, labels), value in values.items():
                family.add_sample(sample_name, dict(labels), value)
            yield family


def render_custom(snapshots: Iterable[Any], live: set[int]) -> bytes:
    """Text exposition of the service's own metrics merged over the workers' snapshots."""
    return generate_latest(_Merged(snapshots, live))
