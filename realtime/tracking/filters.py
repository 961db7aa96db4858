"""Temporal smoothing of each track's 3D joints and root: the One Euro filter (Casiez et al., CHI 2012).

One Euro is a first-order low-pass whose cutoff rises with speed: slow motion is smoothed hard
(jitter gone), fast motion passes with little lag. It needs only the current sample, so it adds
no latency beyond its own low-pass lag, which is why it is the field's default for live mocap
(MediaPipe, DeepStream). Written here because it is ten lines of numpy and the PyPI packages are
scalar-only and unmaintained.

Speeds are taken per joint as the norm of its 3D velocity (not per coordinate), so a joint moving
diagonally is treated like one moving along an axis. Defaults are tuned for metres at 25-60 fps by
``tools/bench_tracking.py --tune`` on the validation subjects. (Filtering in the pose prior's
coefficient space instead was measured and dropped: it restarts at every switch of mixture component
and removed a third as much jitter, docs/tracking.md.)
"""
from __future__ import annotations

import math
from dataclasses import dataclass, field

import numpy as np

from realtime.config import FilterConfig


def _alpha(cutoff: np.ndarray | float, dt: np.ndarray) -> np.ndarray:
    """Smoothing factor of a first-order low-pass with ``cutoff`` Hz for a step of ``dt`` s."""
    tau = 1.0 / (2.0 * math.pi * np.asarray(cutoff))
    return 1.0 / (1.0 + tau / dt)


@dataclass
class OneEuroFilter:
    """One Euro filter over an array of shape (..., D): one speed (and cutoff) per row of D values.

    Elements that are NaN in an update are passed through as NaN and keep their state, so a frame
    without a valid pose neither corrupts nor resets the filter.
    """
    min_cutoff: float = 1.0
    beta: float = 0.0
    d_cutoff: float = 1.0
    speed_scale: float = 1.0    # speed = speed_scale * |row velocity| (e.g. 1/sqrt(J) for an RMS over J joints)
    _x: np.ndarray | None = field(default=None, repr=False)
    _dx: np.ndarray | None = field(default=None, repr=False)
    _t: np.ndarray | None = field(default=None, repr=False)

    def __call__(self, t: float, x: np.ndarray) -> np.ndarray:
        x = np.asarray(x, dtype=np.float64)
        if self._x is None or self._x.shape != x.shape:
            self._x = np.full(x.shape, np.nan)
            self._dx = np.zeros(x.shape)
            self._t = np.full(x.shape[:-1] + (1,), -np.inf)
        row_ok = np.isfinite(x).all(-1, keepdims=True)
        started = np.isfinite(self._x).all(-1, keepdims=True)
        dt = t - self._t
        step = row_ok & started & (dt > 0)
        dt_safe = np.where(step, dt, 1.0)

        dx = (x - self._x) / dt_safe
        a_d = _alpha(self.d_cutoff, dt_safe)
        dx_hat = self._dx + a_d * (dx - self._dx)
        speed = self.speed_scale * np.linalg.norm(dx_hat, axis=-1, keepdims=True)
        a = _alpha(self.min_cutoff + self.beta * speed, dt_safe)
        x_hat = self._x + a * (x - self._x)

        first = row_ok & ~started
        self._x = np.where(step, x_hat, np.where(first, x, self._x))
        self._dx = np.where(step, dx_hat, np.where(first, 0.0, self._dx))
        self._t = np.where(step | first, t, self._t)
        return np.where(row_ok, self._x, np.nan)


@dataclass
class _TrackState:
    joints: OneEuroFilter
    root: OneEuroFilter
    t_last: float


class TrackFilter:
    """One Euro filters per track id for the 3D joints and the root; a new id starts fresh."""

    def __init__(self, config: FilterConfig | None = None) -> None:
        """``config``: the settings (None = the defaults of :class:`realtime.config.FilterConfig`)."""
        self.config = config if config is not None else FilterConfig()
        self._state: dict[int, _TrackState] = {}

    def _new_state(self, t: float) -> _TrackState:
        c = self.config
        return _TrackState(OneEuroFilter(c.min_cutoff, c.beta, c.d_cutoff),
                           OneEuroFilter(c.root_min_cutoff, c.root_beta, c.d_cutoff), t)

    def update(self, track_id: int, t_seconds: float, joints3d: np.ndarray,
               root: np.ndarray | None = None) -> tuple[np.ndarray, np.ndarray | None]:
        """Filtered (J, 3) joints and (3,) root (None when ``root`` is None) of one track at one time."""
        joints3d = np.asarray(joints3d, dtype=np.float64)
        if joints3d.ndim != 2 or joints3d.shape[-1] != 3:
            raise ValueError(f"track {track_id}: joints3d has shape {joints3d.shape}, expected (J, 3)")
        if root is not None:
            root = np.asarray(root, dtype=np.float64)
            if root.shape != (3,):
                raise ValueError(f"track {track_id}: root has shape {root.shape}, expected (3,)")
        if not self.config.enabled:
            return joints3d.copy(), None if root is None else root.copy()
        t = float(t_seconds)
        if not math.isfinite(t):
            raise ValueError(f"track {track_id}: time {t_seconds!r} is not finite")
        state = self._state.get(track_id)
        if state is None or not t - state.t_last <= self.config.reset_after_s:
            state = self._state[track_id] = self._new_state(t)
        state.t_last = t
        joints_f = state.joints(t, joints3d)
        root_f = None if root is None else state.root(t, root[None])[0]
        return joints_f, root_f

    def forget(self, alive_ids) -> None:
        """Drop the state of tracks not in ``alive_ids``; a track seen again later starts fresh."""
        alive = set(alive_ids)
        for tid in [k for k in self._state if k not in alive]:
            del self._state[tid]

    def __len__(self) -> int:
        return len(self._state)
