"""What the page draws, from the stream's wire messages: the browser messages of ``realtime view``.

Kept apart from the server so it can be tested and reused without sockets. Three kinds of browser
message, each a JSON text: ``skeleton`` (joint names, parents, the 2D limbs), ``frame`` (a source's
newest people in 3D and 2D, with the stream's fps and per-stage latency) and ``view2d`` (a camera
preview with the people *of that very frame*: the preview carries the frame's ``seq``, so the overlay
is drawn over the image it was detected in; without previews, the people alone).
"""
from __future__ import annotations

import base64
import json
import time
from collections import OrderedDict, deque
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from realtime import skeleton
from realtime.transport.schema import Frame, Preview, SchemaError, Skeleton, unpack

#: Stage timestamps in pipeline order (docs/protocol.md); the last step is ``track`` -> publish.
STAGES = ("capture", "queued", "received", "pose2d", "lift", "track")
#: Seconds of frames the fps and latency figures cover.
WINDOW_S = 3.0
#: Without a preview for this long, a source's 2D view is drawn from its frames alone.
PREVIEW_STALE_S = 2.0
_KEEP = 32  # previews / 2D people kept per source while waiting for their partner


def _round(a: np.ndarray | None, digits: int) -> list | None:
    return None if a is None else np.round(np.asarray(a, np.float64), digits).tolist()


def person_json(p: Any, with_3d: bool = True) -> dict[str, Any]:
    d = {"id": int(p.track_id), "score": round(float(p.score), 3), "bbox": _round(p.bbox, 1),
         "kp": _round(p.keypoints2d, 1), "conf": _round(p.confidence, 3)}
    if with_3d:
        d["j3"] = _round(p.joints3d, 4)
        d["root"] = _round(p.root, 4)
    return d


def skeleton_json(s: Skeleton | None = None) -> dict[str, Any]:
    s = s or Skeleton()
    return {"type": "skeleton", "joint_names": s.joint_names, "parents": s.parents,
            "keypoint_names": s.keypoint_names, "limbs2d": [list(l) for l in skeleton.LIMBS2D]}


def stage_latencies_ms(frame: Frame) -> dict[str, float]:
    """Each stage's share of the capture -> publish latency (ms), in pipeline order."""
    out: dict[str, float] = {}
    previous = None
    for name in STAGES:
        if name in frame.stages:
            if previous is not None:
                out[name] = (frame.stages[name] - previous) * 1e3
            previous = frame.stages[name]
    if previous is not None:
        out["publish"] = (frame.t_publish - previous) * 1e3
    out["total"] = (frame.t_publish - frame.t_capture) * 1e3
    return out


@dataclass
class SourceView:
    """One source's recent frames (for its rates) and the halves of the 2D view waiting for each other."""

    recent: deque = field(default_factory=deque)                       # (t_publish, latencies, people)
    previews: OrderedDict = field(default_factory=OrderedDict)         # seq -> Preview
    people2d: OrderedDict = field(default_factory=OrderedDict)         # seq -> (Frame, people json)
    last_preview: float = -1e9
    dropped: int = 0


class ViewState:
    """Feed it the stream's messages (:meth:`on_message`); it returns the browser messages to send as
    ``(key, json text)``, where a newer message of the same key replaces an unsent older one."""

    def __init__(self) -> None:
        self.skeleton = skeleton_json()
        self.sources: dict[str, SourceView] = {}
        self.frames = self.previews = self.rejected = 0
        self.last_error = ""

    def on_message(self, topic: bytes, payload: bytes, now: float | None = None) -> list[tuple[str, str]]:
        now = time.monotonic() if now is None else now
        try:
            message = unpack(payload)
        except SchemaError as e:
            self.rejected += 1
            self.last_error = f"{topic!r}: {e}"
            return []
        if isinstance(message, Skeleton):
            self.skeleton = skeleton_json(message)
            return [("skeleton", json.dumps(self.skeleton))]
        if isinstance(message, Preview):
            return self._on_preview(message, now)
        return self._on_frame(message, now)

    def _source(self, name: str) -> SourceView:
        return self.sources.setdefault(name, SourceView())

    def _on_preview(self, p: Preview, now: float) -> list[tuple[str, str]]:
        self.previews += 1
        view = self._source(p.source)
        view.last_preview = now
        waiting = view.people2d.get(p.seq)
        if waiting is not None:  # its frame came first
            return [self._view2d(p.source, waiting[0], waiting[1], p)]
        view.previews[p.seq] = p
        while len(view.previews) > _KEEP:
            view.previews.popitem(last=False)
        return []

    def _on_frame(self, f: Frame, now: float) -> list[tuple[str, str]]:
        self.frames += 1
        view = self._source(f.source)
        view.dropped = f.dropped
        latencies = stage_latencies_ms(f)
        view.recent.append((f.t_publish, latencies, len(f.people)))
        while view.recent and view.recent[-1][0] - view.recent[0][0] > WINDOW_S:
            view.recent.popleft()
        people = [person_json(p) for p in f.people]
        out = [(f"frame/{f.source}", json.dumps({
            "type": "frame", "source": f.source, "seq": f.seq, "t": f.t_capture, "width": f.width,
            "height": f.height, "people": people, "stats": self.stats(f.source)}))]
        preview = view.previews.pop(f.seq, None)
        if preview is not None:
            for seq in [s for s in view.previews if s < f.seq]:
                del view.previews[seq]
            out.append(self._view2d(f.source, f, people, preview))
        elif now - view.last_preview > PREVIEW_STALE_S:
            out.append(self._view2d(f.source, f, people, None))
        else:  # a preview of this frame may still come
            view.people2d[f.seq] = (f, people)
            while len(view.people2d) > _KEEP:
                view.people2d.popitem(last=False)
        return out

    def _view2d(self, source: str, f: Frame, people: list[dict], preview: Preview | None) -> tuple[str, str]:
        image = None if preview is None else "data:image/jpeg;base64," + base64.b64encode(preview.jpeg).decode()
        return (f"view2d/{source}", json.dumps({
            "type": "view2d", "source": source, "seq": f.seq, "width": f.width, "height": f.height,
            "image": image, "people": [{k: v for k, v in p.items() if k not in ("j3", "root")} for p in people]}))

    def stats(self, source: str) -> dict[str, Any]:
        """fps, people per frame and the median latency of each stage over the last WINDOW_S."""
        recent = self._source(source).recent
        span = recent[-1][0] - recent[0][0] if len(recent) > 1 else 0.0
        names = [n for n in (*STAGES[1:], "publish", "total") if any(n in lat for _, lat, _ in recent)]
        latency = {n: round(float(np.median([lat[n] for _, lat, _ in recent if n in lat])), 1) for n in names}
        totals = [lat["total"] for _, lat, _ in recent]
        return {"fps": round((len(recent) - 1) / span, 1) if span > 0 else 0.0,
                "people": round(float(np.mean([n for _, _, n in recent])), 2) if recent else 0.0,
                "latency_ms": latency,
                "total_p95_ms": round(float(np.percentile(totals, 95)), 1) if totals else 0.0,
                "dropped": self._source(source).dropped}
