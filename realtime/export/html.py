"""``realtime export REC.mcap --format html``: one self-contained, offline HTML report of a recording.

The file holds plotly.js (from the ``plotly`` package), the viewer's drawing code
(``realtime/viewer/static/skeleton.js``) and the recording's data as JSON: the 3D skeletons animated
over time with a slider, when each track id was seen, latency per stage and people per frame. It opens
from disk with no network. Long recordings are sampled to at most ``max_frames`` 3D frames (the
timelines and plots use every frame, binned to at most ``max_points``).
"""
from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np

from realtime.export.tracks import ExportError, progress
from realtime.record import RecordingError, RecordingReader
from realtime.transport.schema import Frame, Skeleton
from realtime.viewer import offline_page
from realtime.viewer.state import person_json, skeleton_json, stage_latencies_ms

#: A track unseen for longer than this (seconds) shows a gap in its timeline.
GAP_S = 0.5


def report_data(path: str | Path, source: str | None = None, track: int | None = None, max_frames: int = 600,
                max_points: int = 2000) -> dict[str, Any]:
    """Everything the report draws, from the recording at ``path`` (one source)."""
    path = Path(path)
    try:
        reader = RecordingReader(path)
        messages = [m for _t, _l, m in progress(reader, path)]
    except RecordingError as e:
        raise ExportError(str(e)) from None
    frames = [m for m in messages if isinstance(m, Frame)]
    skeletons = [m for m in messages if isinstance(m, Skeleton)]
    if not frames:
        raise ExportError(f"{path}: the recording has no frames")
    sources = sorted({f.source for f in frames})
    source = source or sources[0]
    if source not in sources:
        raise ExportError(f"{path}: no frames from source {source!r} (sources: {', '.join(sources)})")
    frames = [f for f in frames if f.source == source]
    if track is not None:
        for f in frames:
            f.people = [p for p in f.people if p.track_id == track]
    t0 = frames[0].t_capture
    times = np.array([f.t_capture - t0 for f in frames])
    stride = max(1, int(np.ceil(len(frames) / max_frames)))
    anim = [{"t": round(float(times[i]), 3), "seq": frames[i].seq,
             "people": [person_json(p) for p in frames[i].people if p.joints3d is not None]}
            for i in range(0, len(frames), stride)]
    seen: dict[int, list[list[float]]] = {}
    for t, f in zip(times, frames):
        for p in f.people:
            if p.track_id < 0:
                continue
            spans = seen.setdefault(p.track_id, [])
            if spans and t - spans[-1][1] <= GAP_S:
                spans[-1][1] = float(t)
            else:
                spans.append([float(t), float(t)])
    latencies = [stage_latencies_ms(f) for f in frames]
    stages = [s for s in ("queued", "received", "pose2d", "lift", "track", "publish", "total")
              if any(s in lat for lat in latencies)]
    bins = _bins(len(frames), max_points)
    series = {s: [_median([lat.get(s) for lat in latencies[a:b]]) for a, b in bins] for s in stages}
    totals = [lat["total"] for lat in latencies]
    duration = float(times[-1]) if len(times) else 0.0
    return {
        "title": path.name, "source": source, "sources": sources, "track": track,
        "skeleton": skeleton_json(skeletons[-1] if skeletons else None),
        "summary": {"frames": len(frames), "duration_s": round(duration, 2),
                    "fps": round((len(frames) - 1) / duration, 2) if duration > 0 else 0.0,
                    "tracks": len(seen), "people_per_frame": round(float(np.mean([len(f.people) for f in frames])), 2),
                    "latency_p50_ms": round(float(np.median(totals)), 1),
                    "latency_p95_ms": round(float(np.percentile(totals, 95)), 1),
                    "dropped": frames[-1].dropped, "sampled_every": stride,
                    "skipped_messages": reader.skipped, "truncated": reader.truncated},
        "frames": anim,
        "timelines": {str(k): [[round(a, 3), round(b, 3)] for a, b in v] for k, v in sorted(seen.items())},
        "series": {"t": [round(float(np.mean(times[a:b])), 3) for a, b in bins],
                   "people": [round(float(np.mean([len(f.people) for f in frames[a:b]])), 2) for a, b in bins],
                   "latency_ms": series},
    }


def _bins(n: int, most: int) -> list[tuple[int, int]]:
    edges = np.linspace(0, n, min(n, most) + 1).round().astype(int)
    return [(int(a), int(b)) for a, b in zip(edges[:-1], edges[1:]) if b > a]


def _median(values: list[float | None]) -> float | None:
    values = [v for v in values if v is not None]
    return round(float(np.median(values)), 2) if values else None


def write_report(path: str | Path, output: str | Path, source: str | None = None, track: int | None = None) -> Path:
    data = report_data(path, source, track)
    output = Path(output)
    output.parent.mkdir(parents=True, exist_ok=True)
    output.write_text(offline_page("report.html", data["title"], data, scripts=("report.js",)))
    return output
