"""Per-stage latency of published frames, from the timestamps every message carries.

``Frame.stages`` holds the unix time each stage finished with a frame, in pipeline order;
the latency of a stage is the time since the previous stage, and ``total`` is capture to
publish. Used by the publisher (heartbeats -> status line) and by tools/bench_pipeline.py.
"""
from __future__ import annotations

from collections import deque
from collections.abc import Iterable, Mapping

import numpy as np

#: Stage timestamps in pipeline order (see docs/protocol.md).
STAGE_ORDER = ("capture", "queued", "received", "pose2d", "lift", "track", "publish")


def stage_latencies(stages: Mapping[str, float], t_publish: float) -> dict[str, float]:
    """Milliseconds spent in each stage (named by the stage that ends it), plus ``total``."""
    times = {**stages, "publish": t_publish}
    present = [s for s in STAGE_ORDER if s in times]
    out = {b: (times[b] - times[a]) * 1e3 for a, b in zip(present, present[1:])}
    if "capture" in times:
        out["total"] = (t_publish - times["capture"]) * 1e3
    return out


def percentiles(values: Iterable[float], qs: tuple[float, ...] = (50, 95, 99)) -> dict[str, float]:
    v = np.asarray(list(values), dtype=np.float64)
    if v.size == 0:
        return {f"p{q:g}": float("nan") for q in qs}
    return {f"p{q:g}": float(np.percentile(v, q)) for q in qs}


class LatencyWindow:
    """The last ``size`` frames' stage latencies; summaries for heartbeats and the status line."""

    def __init__(self, size: int = 300) -> None:
        self._rows: deque[dict[str, float]] = deque(maxlen=size)

    def add(self, latencies: Mapping[str, float]) -> None:
        self._rows.append(dict(latencies))

    def summary(self, qs: tuple[float, ...] = (50, 95)) -> dict[str, dict[str, float]]:
        keys = [k for k in (*STAGE_ORDER, "total") if any(k in r for r in self._rows)]
        return {k: {name: round(v, 2) for name, v in percentiles((r[k] for r in self._rows if k in r), qs).items()}
                for k in keys}
