"""Text exposition of the service's own metrics, merged over the workers' snapshots.

Counters, histograms and summaries add up over every snapshot; a gauge merges by the mode its
snapshot names (see kit.ops.custom_metrics). Kept apart from kit.ops.custom_metrics so that
kit.ops.metrics can render without importing the user-facing classes.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Iterable
from typing import Any

from prometheus_client import generate_latest
from prometheus_client.metrics_core import Metric

logger = logging.getLogger("kit.metrics")


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


# prometheus-client's gauge modes kit merges as they say; the rest ("mostrecent") per worker
_MERGEABLE_MODES = ("livesum", "sum", "livemax", "max", "livemin", "min", "all", "liveall")
_warned: set[str] = set()


def _gauge_mode(collector: Any) -> str:
    mode = getattr(collector, "_multiprocess_mode", None)
    return mode if mode in _MERGEABLE_MODES else "liveall"


def default_registry_families(
    registry: Any = None, skip: Callable[[str], str] | None = None
) -> list[Any]:
    """prometheus-client's default registry (metrics defined the usual way, a library's, the
    process and GC collectors), as kit's worker snapshots carry them: counters, histograms and
    summaries add up over workers; a gauge merges by its ``multiprocess_mode`` (default
    ``all``: one series per worker, labelled ``pid``)."""
    import prometheus_client

    registry = prometheus_client.REGISTRY if registry is None else registry
    collectors = getattr(registry, "_names_to_collectors", {})
    families = []
    try:
        collected = list(registry.collect())
    except Exception as exc:  # a collector of the user's failed: kit's own metrics still answer
        _warn_once("", f"prometheus-client's default registry failed to collect: {exc!r}")
        return []
    for family in collected:
        reason = skip(family.name) if skip is not None else ""
        if reason:
            _warn_once(family.name, reason)
            continue
        samples = [
            (s.name, s.labels, s.value)
            for s in family.samples
            if not s.name.endswith("_created") and not s.name.endswith("_gcreated")
        ]
        mode = ""
        if family.type == "gauge":
            mode = _gauge_mode(collectors.get(family.name))
        families.append((family.name, family.type, family.documentation, mode, samples))
    return families


def _warn_once(key: str, message: str) -> None:
    if key not in _warned:
        _warned.add(key)
        logger.warning(message)
