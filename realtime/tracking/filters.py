"""Temporal smoothing of each track's 3D joints and root: the One Euro filter (Casiez et al., CHI 2012).

One Euro is a first-order low-pass whose cutoff rises with speed: slow motion is smoothed hard
(jitter gone), fast motion passes with little lag. It needs only the current sample, so it adds
no latency beyond its own low-pass lag, which is why it is the field's default for live mocap
(MediaPipe, DeepStream). Written here because it is ten lines of numpy and the PyPI packages are
scalar-only and unmaintained.

Speeds are taken per joint as the norm of its 3D velocity (not per coordinate), so a joint moving
diagonally is treated like one moving along an axis. Defaults are tuned for metres at 25-60 fps by
``tools/bench_tracking.py --tune`` on the validation subjects.

``space = "coefficients"`` filters in the pose prior's space instead: the lifter's model pose
(mean + basis x coefficients of the chosen component, metres, before the ground-plane rotation)
as one vector with one cutoff, so that every output is an affine mix of poses of the component's
subspace (equivalent to filtering the coefficients, with speeds in metres), and the heading as a
unit vector; a switch of component restarts the pose filter, since coefficients of different
components are not comparable.
"""
from __future__ import annotations

import math
from dataclasses import dataclass, field

import numpy as np

from realtime.config import FilterConfig, load_config


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
    heading: OneEuroFilter        # coefficient space: (cos, sin) of the ground-plane rotation
    pose: OneEuroFilter | None = None
    component: int = -1


class TrackFilter:
    """One Euro filters per track id for the 3D joints and the root; a new id starts fresh.

    ``prior`` (a :class:`realtime.lifting.PosePrior`) is needed for ``space = "coefficients"``;
    None loads the committed default then.
    """

    def __init__(self, config: FilterConfig | None = None, prior=None) -> None:
        self.config = config if config is not None else load_config().filter
        if self.config.space == "coefficients" and prior is None:
            from realtime.lifting import PosePrior
            prior = PosePrior.load()
        self.prior = prior
        self._state: dict[int, _TrackState] = {}

    def _new_state(self, t: float) -> _TrackState:
        c = self.config
        return _TrackState(OneEuroFilter(c.min_cutoff, c.beta, c.d_cutoff),
                           OneEuroFilter(c.root_min_cutoff, c.root_beta, c.d_cutoff), t,
                           OneEuroFilter(c.min_cutoff, c.beta, c.d_cutoff))

    def update(self, track_id: int, t_seconds: float, joints3d: np.ndarray,
               root: np.ndarray | None = None, *, component: int | None = None,
               coefficients: np.ndarray | None = None,
               rotation_deg: float | None = None) -> tuple[np.ndarray, np.ndarray | None]:
        """Filtered (J, 3) joints and (3,) root (None when ``root`` is None) of one track at one time.

        In coefficient space, pass the lifter's ``component``, ``coefficients`` and ``rotation_deg``
        for this person; without them (or for an invalid lift) the joints are filtered directly.
        """
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
        in_prior = (self.config.space == "coefficients" and component is not None
                    and 0 <= component < self.prior.n_components and coefficients is not None and rotation_deg is not None
                    and np.isfinite(coefficients).all() and np.isfinite(rotation_deg))
        if in_prior:
            joints_f = self._filter_in_prior(state, t, int(component), np.asarray(coefficients, float),
                                             float(rotation_deg))
        else:
            joints_f = state.joints(t, joints3d)
        root_f = None if root is None else state.root(t, root[None])[0]
        return joints_f, root_f

    def _filter_in_prior(self, state: _TrackState, t: float, component: int, coefficients: np.ndarray,
                         rotation_deg: float) -> np.ndarray:
        from realtime.lifting.prior import ROOT_INDEX, rotate_y
        p, c = self.prior, self.config
        if component != state.component:
            n = p.means.shape[1]
            state.pose = OneEuroFilter(c.min_cutoff, c.beta, c.d_cutoff, speed_scale=1.0 / math.sqrt(n))
            state.component = component
        model = (p.means[component] + p.bases[component] @ coefficients) * p.metric_scale
        pose = state.pose(t, model.reshape(1, -1)).reshape(model.shape)
        theta = math.radians(rotation_deg)
        cs = state.heading(t, np.array([[math.cos(theta), math.sin(theta)]]))[0]
        joints = rotate_y(pose[None], np.array([math.atan2(cs[1], cs[0])]))[0]
        return joints - joints[ROOT_INDEX]

    def forget(self, alive_ids) -> None:
        """Drop the state of tracks not in ``alive_ids``; a track seen again later starts fresh."""
        alive = set(alive_ids)
        for tid in [k for k in self._state if k not in alive]:
            del self._state[tid]

    def __len__(self) -> int:
        return len(self._state)
