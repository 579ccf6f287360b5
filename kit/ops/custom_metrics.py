"""A service's own metrics: prometheus-client's API, merged across workers with kit's numbers.

``Counter``, ``Gauge``, ``Histogram`` and ``Summary`` are prometheus-client's classes with two
changes: they register in kit's registry (so /metrics shows them next to kit's series, merged
over the server's workers), and a metric refuses to grow past ``max_series`` label sets: further
label sets are counted under ``OTHER`` in every label, and a warning is logged once.

    from kit.ops.custom_metrics import Counter

    ORDERS = Counter("orders_created", "Orders created.", ["channel"])
    ORDERS.labels(channel="web").inc()

Merging: counters, histograms and summaries add up over every worker that ever ran (totals never
go down when a worker is replaced); a gauge's ``multiprocess_mode`` says how it merges:
``livesum`` (the default), ``sum``, ``livemax``, ``max``, ``livemin``, ``min``, or ``all`` /
``liveall`` for one series per worker, labelled ``pid``.
"""

from __future__ import annotations

import logging
from collections.abc import Iterable
from typing import Any

import prometheus_client
from prometheus_client import CollectorRegistry

from kit.ops.metrics import CUSTOM_SOURCES, CustomFamily

__all__ = ["MAX_SERIES", "OTHER", "REGISTRY", "Counter", "Gauge", "Histogram", "Summary"]

logger = logging.getLogger("kit.metrics")
REGISTRY = CollectorRegistry(auto_describe=True)
MAX_SERIES = 200  # label sets per metric; like routes, label values must come from a small set
OTHER = "<other>"
GAUGE_MODES = ("livesum", "sum", "livemax", "max", "livemin", "min", "all", "liveall")
_gauge_modes: dict[str, str] = {}  # gauge name -> multiprocess_mode


class _Guarded:
    """Caps a metric's label sets at ``max_series``: the route guard of kit's own series."""

    _labelnames: tuple[str, ...]
    _labelvalues: tuple[str, ...]
    _metrics: dict[Any, Any]
    _name: str
    max_series: int = MAX_SERIES
    _warned: bool = False

    def __init__(
        self,
        name: str,
        documentation: str,
        labelnames: Iterable[str] = (),
        *,
        max_series: int = MAX_SERIES,
        registry: CollectorRegistry | None = REGISTRY,
        **kwargs: Any,
    ) -> None:
        """prometheus-client's arguments, in kit's registry by default, plus ``max_series``."""
        self.max_series = max_series
        # the metric class this is mixed into (Counter, Gauge, ...) takes the rest
        super().__init__(name, documentation, labelnames, registry=registry, **kwargs)  # type: ignore[call-arg]

    def labels(self, *labelvalues: object, **labelkwargs: object) -> Any:
        key: tuple[str, ...] | None = None
        if labelkwargs and not labelvalues and set(labelkwargs) == set(self._labelnames):
            key = tuple(str(labelkwargs[name]) for name in self._labelnames)
        elif labelvalues and not labelkwargs and len(labelvalues) == len(self._labelnames):
            key = tuple(str(value) for value in labelvalues)
        if key is not None and key not in self._metrics and len(self._metrics) >= self.max_series:
            if not self._warned:
                self._warned = True
                logger.warning(
                    "metric %s reached %d label sets: new ones are counted as %r",
                    self._name,
                    self.max_series,
                    OTHER,
                )
            key = (OTHER,) * len(self._labelnames)
        if key is None:  # wrong names or count: prometheus-client raises its own error
            return super().labels(*labelvalues, **labelkwargs)  # type: ignore[misc]
        return super().labels(*key)  # type: ignore[misc]


class Counter(_Guarded, prometheus_client.Counter):
    pass


class Histogram(_Guarded, prometheus_client.Histogram):
    pass


class Summary(_Guarded, prometheus_client.Summary):
    pass


class Gauge(_Guarded, prometheus_client.Gauge):
    _MULTIPROC_MODES = frozenset(GAUGE_MODES)

    def __init__(
        self,
        name: str,
        documentation: str,
        labelnames: Iterable[str] = (),
        *,
        multiprocess_mode: str = "livesum",
        **kwargs: Any,
    ) -> None:
        if multiprocess_mode not in GAUGE_MODES:
            raise ValueError(
                f"multiprocess_mode={multiprocess_mode!r}: use one of {', '.join(GAUGE_MODES)}"
            )
        super().__init__(
            name, documentation, labelnames, multiprocess_mode=multiprocess_mode, **kwargs
        )
        if not self._labelvalues:  # the parent, not a labelled child
            _gauge_modes[self._name] = multiprocess_mode


def collect(registry: CollectorRegistry = REGISTRY) -> list[CustomFamily]:
    """This process's values, in the form kit's worker snapshots carry them."""
    families: list[CustomFamily] = []
    for family in registry.collect():
        kind = family.type
        samples = [
            (s.name, s.labels, s.value)
            for s in family.samples
            # creation times and per-worker timestamps do not merge into one number
            if not s.name.endswith("_created") and not s.name.endswith("_gcreated")
        ]
        mode = _gauge_modes.get(family.name, "livesum") if kind == "gauge" else ""
        families.append((family.name, kind, family.documentation, mode, samples))
    return families


CUSTOM_SOURCES.append(collect)
