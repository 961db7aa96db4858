"""Multi-person tracking on 2D keypoints: stable ids for the people of a video stream.

Association is tracking-by-detection in the SORT / ByteTrack family, specialised to poses:
each frame's detections are matched to the tracks' *predicted* poses by one optimal assignment
(``scipy.optimize.linear_sum_assignment``) over a cost that mixes a confidence-weighted keypoint
distance normalised by the person's height (an OKS-like term that separates two overlapping
people) with box overlap. Motion is predicted with an alpha-beta filter on the box centre (the
steady-state Kalman filter of a constant-velocity model: no covariances to carry per track).

Lifecycle: a detection starts a tentative track, which gets an id after ``confirm_frames``
consecutive matches; a confirmed track coasts on its prediction through missed detections and
occlusions for ``coast_s``; then it is lost, and a person reappearing near where it was lost,
with a similar size and body-proportion signature, within ``reid_s`` of its last sighting gets
its old id back. Ids come from a monotonic counter and are never reused by a tracker.
"""
from __future__ import annotations

import logging
from collections import Counter
from dataclasses import dataclass
from typing import Any, Mapping, Sequence

import numpy as np
from scipy.optimize import linear_sum_assignment

from realtime.config import TrackingConfig, load_config
from realtime.skeleton import LSP14

log = logging.getLogger(__name__)

N_KP = len(LSP14)
_I = {n: i for i, n in enumerate(LSP14)}
#: Limbs whose length, relative to the torso, form the appearance-free re-identification signature.
_SIGNATURE_LIMBS = np.array([
    (_I["head_top"], _I["neck"]),
    (_I["r_shoulder"], _I["r_elbow"]), (_I["l_shoulder"], _I["l_elbow"]),
    (_I["r_elbow"], _I["r_wrist"]), (_I["l_elbow"], _I["l_wrist"]),
    (_I["r_hip"], _I["r_knee"]), (_I["l_hip"], _I["l_knee"]),
    (_I["r_knee"], _I["r_ankle"]), (_I["l_knee"], _I["l_ankle"]),
])
_SHOULDERS = np.array([_I["r_shoulder"], _I["l_shoulder"]])
_HIPS = np.array([_I["r_hip"], _I["l_hip"]])
_INFEASIBLE = 1e6

# Alpha-beta gains of the box-centre motion filter (position, velocity).
_ALPHA, _BETA = 0.6, 0.2
# How fast the keypoint gate widens while a track is unobserved, in person heights per second:
# the speed change an unobserved walker can make before the prediction no longer holds.
_GATE_GROWTH = 0.5
# A keypoint missing from a detection keeps its last position, with its weight halved per frame.
_KEEP_DECAY = 0.5
# Re-identification: largest jump from the lost position, in heights, plus heights per second lost.
_REID_RADIUS, _REID_SPEED = 0.75, 0.75
# Largest size change (ratio) and signature difference accepted for re-identification.
_REID_SIZE_RATIO, _REID_SIGNATURE = 1.4, 0.25


class DetectionError(ValueError):
    """A detection cannot be used; the message names the detection and the field."""


@dataclass
class Track:
    """One person being followed; ``id`` is None until the track is confirmed."""
    id: int | None
    keypoints: np.ndarray      # (14, 2) last known position of each keypoint, px
    weight: np.ndarray         # (14,) confidence of each kept keypoint (decays while unseen)
    bbox: np.ndarray           # (4,) last box x0, y0, x1, y1
    centre: np.ndarray         # (2,) filtered box centre at t_last
    velocity: np.ndarray       # (2,) px/s
    signature: np.ndarray      # (len(_SIGNATURE_LIMBS),) limb lengths / torso, NaN = not yet seen
    hits: int
    t_first: float
    t_last: float

    @property
    def height(self) -> float:
        return max(float(self.bbox[3] - self.bbox[1]), 1.0)

    def predict(self, t: float) -> tuple[np.ndarray, np.ndarray]:
        """Predicted keypoints and box at time ``t`` (constant velocity of the box centre)."""
        shift = self.centre + self.velocity * (t - self.t_last) - _box_centre(self.bbox)
        return self.keypoints + shift, self.bbox + np.tile(shift, 2)


@dataclass(frozen=True)
class _Detection:
    keypoints: np.ndarray   # (14, 2)
    confidence: np.ndarray  # (14,), 0 = missing
    bbox: np.ndarray        # (4,)


class Tracker:
    """Gives each detected person a stable integer id across frames (see the module docstring)."""

    def __init__(self, config: TrackingConfig | None = None) -> None:
        self.config = config if config is not None else load_config().tracking
        self._tracks: list[Track] = []      # tentative and confirmed, not yet lost
        self._lost: list[Track] = []        # confirmed, ended, still re-identifiable
        self._next_id = 0
        self._t: float | None = None
        #: Rejected detections (and frames) by reason, for the status line.
        self.rejected: Counter[str] = Counter()

    @property
    def active_ids(self) -> list[int]:
        """Ids of confirmed tracks that are alive (seen within ``coast_s``)."""
        return [tr.id for tr in self._tracks if tr.id is not None]

    @property
    def tracks(self) -> list[Track]:
        """Confirmed live tracks (read-only use: e.g. to draw coasting predictions)."""
        return [tr for tr in self._tracks if tr.id is not None]

    def update(self, t_seconds: float, detections: Sequence[Mapping[str, Any]]) -> list[int | None]:
        """Associate this frame's detections; returns one id (None = not yet confirmed) each."""
        ids: list[int | None] = [None] * len(detections)
        t = float(t_seconds) if _is_number(t_seconds) else float("nan")
        if not np.isfinite(t):
            self.rejected["bad time"] += 1
            log.warning("tracker: frame with time %r skipped", t_seconds)
            return ids
        if self._t is not None and t < self._t:
            self.rejected["time went backwards"] += 1
            t = self._t
        self._t = t

        index, dets = [], []
        for i, raw in enumerate(detections):
            try:
                dets.append(_parse(i, raw, self.config.min_confidence, self.config.min_keypoints))
                index.append(i)
            except DetectionError as e:
                reason = str(e).split(": ", 1)[1]
                self.rejected[reason] += 1
                log.debug("tracker: %s", e)

        free = list(range(len(dets)))
        confirmed = [tr for tr in self._tracks if tr.id is not None]
        tentative = [tr for tr in self._tracks if tr.id is None]
        matches = self._associate(t, confirmed, dets, free)
        self._drop_stale_lost(t)
        matches += self._reidentify(t, dets, free)
        matches += self._associate(t, tentative, dets, free)
        matched_tracks = {id(tr) for tr, _ in matches}

        for tr, d in matches:
            _absorb(tr, dets[d], t)
            if tr.id is None and tr.hits >= self.config.confirm_frames:
                tr.id = self._new_id()
            ids[index[d]] = tr.id
        survivors = []
        for tr in self._tracks:
            if id(tr) in matched_tracks:
                survivors.append(tr)
            elif tr.id is None:
                continue  # a tentative track must be seen in consecutive frames
            elif t - tr.t_last > self.config.coast_s:
                self._lost.append(tr)
            else:
                survivors.append(tr)
        current = {id(tr) for tr in self._tracks}
        self._tracks = survivors + [tr for tr, _ in matches if id(tr) not in current]
        for d in free:
            tr = _new_track(dets[d], t)
            if self.config.confirm_frames <= 1:
                tr.id = self._new_id()
            ids[index[d]] = tr.id
            self._tracks.append(tr)
        return ids

    def _new_id(self) -> int:
        self._next_id += 1
        return self._next_id

    def _associate(self, t: float, tracks: list[Track], dets: list[_Detection],
                   free: list[int]) -> list[tuple[Track, int]]:
        """Optimal assignment of tracks to the free detections; removes matched ones from ``free``."""
        if not tracks or not free:
            return []
        cost = self.cost(t, tracks, [dets[d] for d in free])
        rows, cols = linear_sum_assignment(cost)
        ok = cost[rows, cols] <= self.config.max_cost
        matches = [(tracks[r], free[c]) for r, c in zip(rows[ok], cols[ok])]
        taken = {free[c] for c in cols[ok]}
        free[:] = [d for d in free if d not in taken]
        return matches

    def cost(self, t: float, tracks: list[Track], dets: list[_Detection]) -> np.ndarray:
        """(tracks, detections) association cost; above ``max_cost`` means "cannot be the same person"."""
        pred = [tr.predict(t) for tr in tracks]
        kp_t = np.stack([p[0] for p in pred])                       # (M, 14, 2)
        box_t = np.stack([p[1] for p in pred])                      # (M, 4)
        w_t = np.stack([tr.weight for tr in tracks])                # (M, 14)
        height = np.array([tr.height for tr in tracks])             # (M,)
        unseen = np.array([t - tr.t_last for tr in tracks])         # (M,)
        kp_d = np.stack([d.keypoints for d in dets])                # (N, 14, 2)
        w_d = np.stack([d.confidence for d in dets])                # (N, 14)
        box_d = np.stack([d.bbox for d in dets])                    # (N, 4)

        dist = np.linalg.norm(kp_t[:, None] - kp_d[None], axis=-1)  # (M, N, 14)
        w = w_t[:, None] * w_d[None]
        wsum = w.sum(-1)
        centre_dist = np.linalg.norm(_box_centre(box_t)[:, None] - _box_centre(box_d)[None], axis=-1)
        kp_dist = np.where(wsum > 1e-6, (w * dist).sum(-1) / np.maximum(wsum, 1e-6), centre_dist)
        gate = self.config.keypoint_gate + _GATE_GROWTH * unseen
        kp_term = kp_dist / (height * gate)[:, None]
        a = self.config.keypoint_weight
        cost = a * np.minimum(kp_term, 2.0) + (1.0 - a) * (1.0 - _iou(box_t, box_d))
        cost[kp_term > 1.0] = _INFEASIBLE
        return cost

    def _reidentify(self, t: float, dets: list[_Detection], free: list[int]) -> list[tuple[Track, int]]:
        """Match lost tracks to free detections by place, size and body proportions."""
        if not self._lost or not free:
            return []
        lost = self._lost
        cand = [dets[d] for d in free]
        foot_l = np.stack([_foot(tr.bbox) for tr in lost])
        foot_d = np.stack([_foot(d.bbox) for d in cand])
        h_l = np.array([tr.height for tr in lost])
        h_d = np.array([max(float(d.bbox[3] - d.bbox[1]), 1.0) for d in cand])
        gap = np.array([t - tr.t_last for tr in lost])
        radius = h_l * (_REID_RADIUS + _REID_SPEED * gap)
        place = np.linalg.norm(foot_l[:, None] - foot_d[None], axis=-1) / radius[:, None]
        size = np.abs(np.log(h_d[None] / h_l[:, None])) / np.log(_REID_SIZE_RATIO)
        sig_l = np.stack([tr.signature for tr in lost])
        sig_d = np.stack([_signature(d) for d in cand])
        diff = np.abs(sig_l[:, None] - sig_d[None])
        seen = np.isfinite(diff)
        n_seen = seen.sum(-1)
        shape = np.where(n_seen >= 3, np.where(seen, diff, 0).sum(-1) / np.maximum(n_seen, 1), 0.0)
        shape = shape / _REID_SIGNATURE
        cost = (place + size + shape) / 3.0
        cost[(place > 1) | (size > 1) | (shape > 1)] = _INFEASIBLE
        rows, cols = linear_sum_assignment(cost)
        ok = cost[rows, cols] < _INFEASIBLE
        matches = [(lost[r], free[c]) for r, c in zip(rows[ok], cols[ok])]
        revived = {id(lost[r]) for r in rows[ok]}
        self._lost = [tr for tr in lost if id(tr) not in revived]
        taken = {free[c] for c in cols[ok]}
        free[:] = [d for d in free if d not in taken]
        for tr, _ in matches:
            tr.velocity = np.zeros(2)  # the old motion says nothing about the new path
        return matches

    def _drop_stale_lost(self, t: float) -> None:
        self._lost = [tr for tr in self._lost if t - tr.t_last <= self.config.reid_s]


def _is_number(x: Any) -> bool:
    try:
        float(x)
    except (TypeError, ValueError):
        return False
    return True


def _parse(i: int, raw: Mapping[str, Any], min_confidence: float, min_keypoints: int) -> _Detection:
    """Validate one detection; NaN keypoints count as missing, a missing box is taken from the keypoints."""
    if not isinstance(raw, Mapping):
        raise DetectionError(f"detection {i}: not a mapping with keypoints2d/confidence/bbox")
    arrays = {}
    for key, shape in (("keypoints2d", (N_KP, 2)), ("confidence", (N_KP,)), ("bbox", (4,))):
        if key not in raw or raw[key] is None:
            if key == "bbox":
                continue
            raise DetectionError(f"detection {i}: '{key}' is missing")
        try:
            a = np.asarray(raw[key], dtype=np.float64)
        except (TypeError, ValueError):
            raise DetectionError(f"detection {i}: '{key}' is not numeric") from None
        if a.shape != shape:
            raise DetectionError(f"detection {i}: '{key}' has shape {a.shape}, expected {shape}")
        arrays[key] = a
    kp = arrays["keypoints2d"]
    conf = np.nan_to_num(arrays["confidence"], nan=0.0, posinf=0.0, neginf=0.0).clip(0.0, 1.0)
    conf[~np.isfinite(kp).all(-1) | (conf < min_confidence)] = 0.0
    kp = np.where(conf[:, None] > 0, kp, 0.0)
    if np.count_nonzero(conf) < min_keypoints:
        raise DetectionError(f"detection {i}: 'keypoints2d' has fewer than {min_keypoints} usable keypoints")
    box = arrays.get("bbox")
    if box is None or not np.isfinite(box).all() or box[2] <= box[0] or box[3] <= box[1]:
        vis = kp[conf > 0]
        box = np.concatenate([vis.min(0), vis.max(0)])
        if box[3] - box[1] < 1.0:
            raise DetectionError(f"detection {i}: 'bbox' is invalid and the keypoints span no height")
    return _Detection(kp, conf, box)


def _box_centre(box: np.ndarray) -> np.ndarray:
    return 0.5 * (box[..., :2] + box[..., 2:])


def _foot(box: np.ndarray) -> np.ndarray:
    """Bottom centre of a box: where a standing person meets the ground."""
    return np.array([0.5 * (box[0] + box[2]), box[3]])


def _iou(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """(M, N) intersection over union of boxes a (M, 4) and b (N, 4)."""
    lo = np.maximum(a[:, None, :2], b[None, :, :2])
    hi = np.minimum(a[:, None, 2:], b[None, :, 2:])
    inter = np.prod(np.clip(hi - lo, 0.0, None), axis=-1)
    area_a = np.prod(a[:, 2:] - a[:, :2], axis=-1)
    area_b = np.prod(b[:, 2:] - b[:, :2], axis=-1)
    return inter / np.maximum(area_a[:, None] + area_b[None] - inter, 1e-9)


def _signature(d: _Detection) -> np.ndarray:
    """Limb lengths over torso length (NaN where a limb or the torso is not visible)."""
    kp, c = d.keypoints, d.confidence
    sig = np.full(len(_SIGNATURE_LIMBS), np.nan)
    if not (c[_SHOULDERS] > 0).all() or not (c[_HIPS] > 0).all():
        return sig
    torso = np.linalg.norm(kp[_SHOULDERS].mean(0) - kp[_HIPS].mean(0))
    if torso < 1.0:
        return sig
    a, b = _SIGNATURE_LIMBS[:, 0], _SIGNATURE_LIMBS[:, 1]
    seen = (c[a] > 0) & (c[b] > 0)
    sig[seen] = np.linalg.norm(kp[a[seen]] - kp[b[seen]], axis=-1) / torso
    return sig


def _new_track(d: _Detection, t: float) -> Track:
    return Track(id=None, keypoints=d.keypoints.copy(), weight=d.confidence.copy(), bbox=d.bbox.copy(),
                 centre=_box_centre(d.bbox), velocity=np.zeros(2), signature=_signature(d),
                 hits=1, t_first=t, t_last=t)


def _absorb(tr: Track, d: _Detection, t: float) -> None:
    """Update a track with its matched detection (alpha-beta step on the box centre)."""
    dt = t - tr.t_last
    z = _box_centre(d.bbox)
    if dt > 0:
        pred = tr.centre + tr.velocity * dt
        residual = z - pred
        tr.centre = pred + _ALPHA * residual
        tr.velocity = tr.velocity + (_BETA / dt) * residual
    else:
        tr.centre = z
    seen = d.confidence > 0
    shift = z - _box_centre(tr.bbox)
    tr.keypoints = np.where(seen[:, None], d.keypoints, tr.keypoints + shift)
    tr.weight = np.where(seen, d.confidence, tr.weight * _KEEP_DECAY)
    tr.bbox = d.bbox.copy()
    sig = _signature(d)
    new = np.isfinite(sig)
    old = np.isfinite(tr.signature)
    tr.signature = np.where(new & old, 0.8 * tr.signature + 0.2 * sig, np.where(new, sig, tr.signature))
    tr.hits += 1
    tr.t_last = t
