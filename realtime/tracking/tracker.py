"""Multi-person tracking on 2D keypoints: stable ids for the people of a video stream.

Association is tracking-by-detection in the SORT / ByteTrack family, specialised to poses:
each frame's detections are matched to the tracks' *predicted* poses by one optimal assignment
(``scipy.optimize.linear_sum_assignment``) over a cost that mixes a confidence-weighted keypoint
distance normalised by the person's height (it separates two overlapping people) with box
overlap. Motion is predicted with an alpha-beta filter on the keypoints with one shared image
velocity per person (the steady-state Kalman filter of a constant-velocity model: no covariances
to carry per track), driven by the median keypoint residual so that joints appearing or
disappearing behind someone else, which move the box, do not move the velocity.

Lifecycle: a detection starts a tentative track, which gets an id after ``confirm_frames``
consecutive matches; a confirmed track coasts on its prediction through missed detections and
occlusions for ``coast_s``; then it is lost, and a person reappearing near where it was lost,
with a similar size and body-proportion signature, within ``reid_s`` of its last sighting gets
its old id back. Ids come from a monotonic counter and are never reused by a tracker.

All tracks live in one set of stacked arrays, so a frame costs a fixed handful of numpy calls
whatever the number of people.
"""
from __future__ import annotations

import logging
from collections import Counter
from dataclasses import dataclass, fields
from typing import TYPE_CHECKING, Callable, Sequence

import numpy as np
from scipy.optimize import linear_sum_assignment

from realtime.config import TrackingConfig
from realtime.boxes import iou_matrix
from realtime.skeleton import LSP14
from realtime.tracking.ids import TrackIds
from realtime.transport.schema import Person

if TYPE_CHECKING:
    from realtime.tracking.filters import TrackFilter

log = logging.getLogger(__name__)

N_KP = len(LSP14)
_I = {n: i for i, n in enumerate(LSP14)}
#: Limbs whose length, relative to the torso, form the appearance-free re-identification signature.
_SIG_A, _SIG_B = np.array([
    (_I["head_top"], _I["neck"]),
    (_I["r_shoulder"], _I["r_elbow"]), (_I["l_shoulder"], _I["l_elbow"]),
    (_I["r_elbow"], _I["r_wrist"]), (_I["l_elbow"], _I["l_wrist"]),
    (_I["r_hip"], _I["r_knee"]), (_I["l_hip"], _I["l_knee"]),
    (_I["r_knee"], _I["r_ankle"]), (_I["l_knee"], _I["l_ankle"]),
]).T
_SHOULDERS = [_I["r_shoulder"], _I["l_shoulder"]]
_HIPS = [_I["r_hip"], _I["l_hip"]]
_INFEASIBLE = 1e6

# Alpha-beta gains of the motion filter (keypoint positions, shared velocity).
_ALPHA, _BETA = 0.7, 0.05
# How fast the keypoint gate widens while a track is unobserved, in person heights per second:
# the speed change an unobserved walker can make before the prediction no longer holds.
_GATE_GROWTH = 0.5
# Added to a tentative track's costs: in a near tie, a confirmed person keeps the detection.
_TENTATIVE_PENALTY = 0.05
# A keypoint missing from a detection keeps its predicted position, with its weight halved per frame.
_KEEP_DECAY = 0.5
# Weight of a new detection in the running body-proportion signature.
_SIG_RATE = 0.2
# Re-identification: largest jump from the lost position, in heights, plus heights per second lost.
_REID_RADIUS, _REID_SPEED = 0.75, 0.75
# Largest size change (ratio) and mean signature difference accepted for re-identification.
_REID_SIZE_RATIO, _REID_SIGNATURE = 1.4, 0.25

TENTATIVE, ACTIVE, LOST = 0, 1, 2


class DetectionError(ValueError):
    """A detection cannot be used; the message names the detection and the field."""


@dataclass(frozen=True)
class Track:
    """A snapshot of one confirmed, live track (for drawing and status; the tracker owns the state)."""
    id: int
    keypoints: np.ndarray     # (14, 2) px, predicted positions for keypoints not seen lately
    bbox: np.ndarray          # (4,) last box
    velocity: np.ndarray      # (2,) px/s
    t_last: float             # last time a detection was matched


@dataclass
class _Tracks:
    """Every track's state, one row per track."""
    ids: np.ndarray          # (M,) int, -1 while tentative
    state: np.ndarray        # (M,) TENTATIVE | ACTIVE | LOST
    keypoints: np.ndarray    # (M, 14, 2) px at t_last
    weight: np.ndarray       # (M, 14) confidence of each kept keypoint (decays while unseen)
    bbox: np.ndarray         # (M, 4)
    velocity: np.ndarray     # (M, 2) px/s
    signature: np.ndarray    # (M, 9) limb lengths / torso, NaN = not seen yet
    hits: np.ndarray         # (M,) matched detections so far
    t_last: np.ndarray       # (M,)

    @classmethod
    def empty(cls) -> "_Tracks":
        return cls(np.zeros(0, np.int64), np.zeros(0, np.int8), np.zeros((0, N_KP, 2)), np.zeros((0, N_KP)),
                   np.zeros((0, 4)), np.zeros((0, 2)), np.zeros((0, len(_SIG_A))), np.zeros(0, np.int64),
                   np.zeros(0))

    def __len__(self) -> int:
        return len(self.ids)

    def take(self, rows: np.ndarray) -> "_Tracks":
        return _Tracks(*(getattr(self, f.name)[rows] for f in fields(self)))

    def extend(self, other: "_Tracks") -> "_Tracks":
        return _Tracks(*(np.concatenate([getattr(self, f.name), getattr(other, f.name)]) for f in fields(self)))


@dataclass(frozen=True)
class _Detections:
    keypoints: np.ndarray   # (N, 14, 2)
    confidence: np.ndarray  # (N, 14), 0 = missing
    bbox: np.ndarray        # (N, 4)

    def __len__(self) -> int:
        return len(self.bbox)


class Tracker:
    """Gives each detected person a stable integer id across frames (see the module docstring)."""

    def __init__(self, config: TrackingConfig | None = None, ids: Callable[[], int] | None = None) -> None:
        """``config``: the settings (None = the defaults of :class:`realtime.config.TrackingConfig`);
        ``ids``: where new ids come from (a :class:`realtime.tracking.ids.TrackIds` shared by several
        trackers keeps them unique across sources; None = this tracker's own, 1, 2, ...)."""
        self.config = config if config is not None else TrackingConfig()
        self._tracks = _Tracks.empty()
        self._ids = ids if ids is not None else TrackIds()
        self._t: float | None = None
        #: Rejected detections (and frames) by reason, for the status line.
        self.rejected: Counter[str] = Counter()

    @property
    def active_ids(self) -> list[int]:
        """Ids of confirmed tracks that are alive (seen within ``coast_s``)."""
        return self._tracks.ids[self._tracks.state == ACTIVE].tolist()

    @property
    def tracks(self) -> list[Track]:
        """Confirmed live tracks."""
        tr = self._tracks
        return [Track(int(tr.ids[i]), tr.keypoints[i].copy(), tr.bbox[i].copy(), tr.velocity[i].copy(),
                      float(tr.t_last[i])) for i in np.flatnonzero(tr.state == ACTIVE)]

    def update(self, t_seconds: float, detections: Sequence[Person]) -> list[int | None]:
        """Associate this frame's people (:class:`realtime.transport.schema.Person`, e.g. what
        ``PoseEstimator2D`` returns); returns one id (None = not yet confirmed) each. Anything but a
        Person is a TypeError; a person with too few usable keypoints is skipped and counted."""
        for i, d in enumerate(detections):
            if not isinstance(d, Person):
                raise TypeError(f"Tracker.update: detection {i} is a {type(d).__name__}, expected a "
                                "realtime.transport.schema.Person")
        ids: list[int | None] = [None] * len(detections)
        try:
            t = float(t_seconds)
        except (TypeError, ValueError):
            t = float("nan")
        if not np.isfinite(t):
            self.rejected["bad time"] += 1
            log.warning("tracker: frame with time %r skipped", t_seconds)
            return ids
        if self._t is not None and t < self._t:
            self.rejected["time went backwards"] += 1
            t = self._t
        self._t = t
        index, dets = self._parse(detections)

        tr = self._tracks
        det_track = np.full(len(dets), -1)
        live = np.flatnonzero(tr.state != LOST)
        free = np.arange(len(dets))
        if len(live) and len(dets):
            rows, cols = _assign(self._cost(t, live, dets), self.config.max_cost)
            det_track[cols] = live[rows]
            free = np.flatnonzero(det_track < 0)
        lost = np.flatnonzero((tr.state == LOST) & (t - tr.t_last <= self.config.reid_s))
        if len(lost) and len(free):
            rows, cols = _assign(self._reid_cost(t, lost, dets, free), _INFEASIBLE / 2)
            det_track[free[cols]] = lost[rows]
            tr.velocity[lost[rows]] = 0.0  # the old motion and place say nothing about the new path
            tr.keypoints[lost[rows]] = dets.keypoints[free[cols]]
            tr.state[lost[rows]] = ACTIVE
            free = np.flatnonzero(det_track < 0)

        matched = det_track >= 0
        rows = det_track[matched]
        self._absorb(rows, dets, np.flatnonzero(matched), t)
        confirm = (tr.state[rows] == TENTATIVE) & (tr.hits[rows] >= self.config.confirm_frames)
        for r in rows[confirm]:
            tr.ids[r] = self._new_id()
            tr.state[r] = ACTIVE
        seen = np.zeros(len(tr), bool)
        seen[rows] = True
        tr.state[(tr.state == ACTIVE) & ~seen & (t - tr.t_last > self.config.coast_s)] = LOST
        keep = ~((tr.state == TENTATIVE) & ~seen) & ~((tr.state == LOST) & (t - tr.t_last > self.config.reid_s))
        for d, r in zip(np.flatnonzero(matched), rows):
            if tr.ids[r] >= 0:
                ids[index[d]] = int(tr.ids[r])
        if not keep.all():
            tr = tr.take(keep)
        if len(free):
            born = _new_tracks(dets, free, t)
            if self.config.confirm_frames <= 1:
                born.ids[:] = [self._new_id() for _ in free]
                born.state[:] = ACTIVE
                for d, tid in zip(free, born.ids):
                    ids[index[d]] = int(tid)
            tr = tr.extend(born)
        self._tracks = tr
        return ids

    def _new_id(self) -> int:
        return self._ids()

    def _parse(self, detections: Sequence[Person]) -> tuple[list[int], _Detections]:
        """Stack the usable detections; the others are counted in ``rejected`` by reason."""
        n = len(detections)
        index = list(range(n))
        kp = np.array([d.keypoints2d for d in detections], dtype=np.float64).reshape(n, N_KP, 2)
        conf = np.array([d.confidence for d in detections], dtype=np.float64).reshape(n, N_KP)
        box = np.array([d.bbox for d in detections], dtype=np.float64).reshape(n, 4)
        conf = np.where(np.isfinite(conf), conf, 0.0).clip(0.0, 1.0)
        conf[~np.isfinite(kp).all(-1) | (conf < self.config.min_confidence)] = 0.0
        kp = np.where(conf[..., None] > 0, kp, 0.0)
        usable = (conf > 0).sum(1) >= self.config.min_keypoints
        for i in np.flatnonzero(~usable):
            self._reject(DetectionError(f"detection {index[i]}: 'keypoints2d' has fewer than "
                                        f"{self.config.min_keypoints} usable keypoints"))
        kp, conf, box = kp[usable], conf[usable], box[usable]
        index = [i for i, u in zip(index, usable) if u]
        bad_box = ~np.isfinite(box).all(1) | (box[:, 2] <= box[:, 0]) | (box[:, 3] <= box[:, 1])
        for i in np.flatnonzero(bad_box):
            vis = kp[i][conf[i] > 0]
            box[i] = np.concatenate([vis.min(0), vis.max(0)])
        flat = box[:, 3] - box[:, 1] < 1.0
        for i in np.flatnonzero(flat):
            self._reject(DetectionError(f"detection {index[i]}: 'bbox' is invalid and the keypoints span no height"))
        if flat.any():
            kp, conf, box = kp[~flat], conf[~flat], box[~flat]
            index = [i for i, f in zip(index, flat) if not f]
        return index, _Detections(kp, conf, box)

    def _reject(self, e: DetectionError) -> None:
        self.rejected[str(e).split(": ", 1)[1]] += 1
        log.debug("tracker: %s", e)

    def _cost(self, t: float, rows: np.ndarray, dets: _Detections) -> np.ndarray:
        """(tracks, detections) association cost; above ``max_cost`` means "cannot be the same person"."""
        tr = self._tracks
        unseen = t - tr.t_last[rows]                                          # (M,)
        shift = tr.velocity[rows] * unseen[:, None]
        kp_t = tr.keypoints[rows] + shift[:, None]                            # (M, 14, 2)
        box_t = tr.bbox[rows] + np.concatenate([shift, shift], axis=1)
        height = np.maximum(tr.bbox[rows, 3] - tr.bbox[rows, 1], 1.0)
        dist = _length(kp_t[:, None] - dets.keypoints[None])                 # (M, N, 14)
        w = tr.weight[rows][:, None] * dets.confidence[None]
        wsum = w.sum(-1)
        centre = _length(_centre(box_t)[:, None] - _centre(dets.bbox)[None])
        kp_dist = np.where(wsum > 1e-6, (w * dist).sum(-1) / np.maximum(wsum, 1e-6), centre)
        gate = self.config.keypoint_gate + _GATE_GROWTH * unseen
        kp_term = kp_dist / (height * gate)[:, None]
        a = self.config.keypoint_weight
        cost = a * np.minimum(kp_term, 2.0) + (1.0 - a) * (1.0 - iou_matrix(box_t, dets.bbox))
        cost += np.where(tr.state[rows] == TENTATIVE, _TENTATIVE_PENALTY, 0.0)[:, None]
        cost[kp_term > 1.0] = _INFEASIBLE
        return cost

    def _reid_cost(self, t: float, rows: np.ndarray, dets: _Detections, free: np.ndarray) -> np.ndarray:
        """(lost tracks, free detections) cost by place, size and body proportions."""
        tr = self._tracks
        h_l = np.maximum(tr.bbox[rows, 3] - tr.bbox[rows, 1], 1.0)
        h_d = np.maximum(dets.bbox[free, 3] - dets.bbox[free, 1], 1.0)
        radius = h_l * (_REID_RADIUS + _REID_SPEED * (t - tr.t_last[rows]))
        place = _length(_foot(tr.bbox[rows])[:, None] - _foot(dets.bbox[free])[None]) / radius[:, None]
        size = np.abs(np.log(h_d[None] / h_l[:, None])) / np.log(_REID_SIZE_RATIO)
        diff = np.abs(tr.signature[rows][:, None] - _signature(dets.keypoints[free], dets.confidence[free])[None])
        seen = np.isfinite(diff)
        n_seen = seen.sum(-1)
        shape = np.where(n_seen >= 3, np.where(seen, diff, 0).sum(-1) / np.maximum(n_seen, 1), 0.0) / _REID_SIGNATURE
        cost = (place + size + shape) / 3.0
        cost[(place > 1) | (size > 1) | (shape > 1)] = _INFEASIBLE
        return cost

    def _absorb(self, rows: np.ndarray, dets: _Detections, d: np.ndarray, t: float) -> None:
        """Update matched tracks with their detections (alpha-beta step on the keypoints)."""
        if not len(rows):
            return
        tr = self._tracks
        dt = t - tr.t_last[rows]
        pred = tr.keypoints[rows] + (tr.velocity[rows] * np.maximum(dt, 0.0)[:, None])[:, None]
        kp, conf = dets.keypoints[d], dets.confidence[d]
        seen = conf > 0
        both = seen & (tr.weight[rows] > 0)
        residual = np.where(both[..., None], kp - pred, np.nan)
        enough = (both.sum(1) >= 2) & (dt > 0)
        if enough.any():
            tr.velocity[rows[enough]] += (_BETA / dt[enough])[:, None] * _nanmedian(residual[enough])
        tr.keypoints[rows] = np.where(seen[..., None], pred + _ALPHA * (kp - pred), pred)
        tr.weight[rows] = np.where(seen, conf, tr.weight[rows] * _KEEP_DECAY)
        tr.bbox[rows] = dets.bbox[d]
        sig = _signature(kp, conf)
        old = tr.signature[rows]
        tr.signature[rows] = np.where(np.isfinite(sig) & np.isfinite(old), old + _SIG_RATE * (sig - old),
                                      np.where(np.isfinite(sig), sig, old))
        tr.hits[rows] += 1
        tr.t_last[rows] = t


def _assign(cost: np.ndarray, max_cost: float) -> tuple[np.ndarray, np.ndarray]:
    rows, cols = linear_sum_assignment(cost)
    ok = cost[rows, cols] <= max_cost
    return rows[ok], cols[ok]


def _nanmedian(x: np.ndarray) -> np.ndarray:
    """Median over axis 1 ignoring NaN, for (K, n, 2) with at least one value per row (numpy's is slow)."""
    x = np.sort(x, axis=1)  # NaN sort last
    n = np.isfinite(x[:, :, 0]).sum(1)
    k = np.arange(len(x))
    return 0.5 * (x[k, (n - 1) // 2] + x[k, n // 2])


def _new_tracks(dets: _Detections, d: np.ndarray, t: float) -> _Tracks:
    n = len(d)
    return _Tracks(np.full(n, -1), np.full(n, TENTATIVE, np.int8), dets.keypoints[d].copy(),
                   dets.confidence[d].copy(), dets.bbox[d].copy(), np.zeros((n, 2)),
                   _signature(dets.keypoints[d], dets.confidence[d]), np.ones(n, np.int64), np.full(n, t))


def _centre(box: np.ndarray) -> np.ndarray:
    return 0.5 * (box[..., :2] + box[..., 2:])


def _foot(box: np.ndarray) -> np.ndarray:
    """Bottom centre of boxes: where a standing person meets the ground."""
    return np.stack([0.5 * (box[..., 0] + box[..., 2]), box[..., 3]], axis=-1)




def _length(v: np.ndarray) -> np.ndarray:
    """Euclidean length over the last axis (cheaper than np.linalg.norm for small arrays)."""
    return np.sqrt(np.einsum("...c,...c->...", v, v))


def _signature(kp: np.ndarray, conf: np.ndarray) -> np.ndarray:
    """(N, 9) limb lengths over torso length (NaN where a limb or the torso is not visible)."""
    seen = conf > 0
    torso_ok = seen[:, _SHOULDERS].all(1) & seen[:, _HIPS].all(1)
    torso = _length(0.5 * (kp[:, _SHOULDERS].sum(1) - kp[:, _HIPS].sum(1)))
    torso_ok &= torso >= 1.0
    limbs = _length(kp[:, _SIG_A] - kp[:, _SIG_B]) / np.maximum(torso, 1.0)[:, None]
    return np.where(seen[:, _SIG_A] & seen[:, _SIG_B] & torso_ok[:, None], limbs, np.nan)


def track_people(tracker: Tracker, track_filter: "TrackFilter", t_seconds: float, people: Sequence[Person]) -> None:
    """One frame's people through the tracker and the track filter, in place: a confirmed person gets
    their ``track_id`` and, when lifted, their track's smoothed ``joints3d`` and ``root``; the filter
    forgets tracks no longer alive. What the publisher does to every frame it publishes (and
    ``realtime.video`` in one process)."""
    ids = tracker.update(t_seconds, people)
    for person, track_id in zip(people, ids):
        if track_id is None:
            continue
        person.track_id = track_id
        if person.joints3d is not None:
            person.joints3d, person.root = track_filter.update(track_id, t_seconds, person.joints3d, person.root)
    track_filter.forget(tracker.active_ids)
