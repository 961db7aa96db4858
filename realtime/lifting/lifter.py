"""Lifting 2D keypoints to the most probable 3D pose under the prior (Tome et al. 2017, 5.3).

Camera: weak perspective, the body rotated about the vertical axis by one of ``rotations``
quantised angles and seen from a camera pitched down by a known angle (or one of a few searched
elevations). For each view and mixture component the unknowns z = (s, t_x, t_y, b = s a) enter
linearly, so the MAP fit of the PPCA coefficients a ~ N(0, I) is a ridge least-squares problem:

    min_z  sum_l w_l |y_l - s P R mu_l - t - P R W_l b|^2 + lambda_k |b|^2,   lambda_k = sigma_k^2 + noise2d^2

(the noise in model units scales with s in the image, which makes the ridge weight independent of s).
Everything that depends only on the model and the view is precomputed; people whose joints are all
seen with equal confidence share one precomputed inverse per (view, component), other weight
patterns get their normal equations summed from per-joint outer products and solved once per pattern.
The solution with the highest posterior over views and components wins.
"""
from __future__ import annotations

import math
from collections import OrderedDict
from dataclasses import dataclass

import numpy as np

from realtime.lifting.prior import ROOT_INDEX, PosePrior
from realtime.skeleton import JOINTS3D, LSP14

#: 2D noise in model units (the prior's size normalisation: sum of squared limb lengths 1, a
#: standing person is about 1.3 units tall) added to each component's PPCA noise: about 1.5% of
#: height, which keeps the fit from bending the pose to follow small keypoint errors.
NOISE2D = 0.02
#: Confidences are rounded to this step before weighting, so that people with the same visibility
#: and confidence pattern share one solve.
WEIGHT_STEP = 0.05
DEFAULT_ELEVATIONS = (-10.0, 0.0, 10.0, 20.0, 30.0)
_N2D = len(LSP14)
_PATTERN_CACHE = 64


@dataclass(frozen=True)
class LiftResult:
    """3D poses for N people; invalid people (too few visible joints) have NaN joints.

    ``joints3d`` (N,16,3) metres, pelvis-relative, in the camera's level frame: x right, y up
    (gravity), z towards the camera; the camera itself is pitched down by ``elevation_deg``
    (rotate by R_x(elevation) to get true camera axes). ``uncertainty`` (N,16) is the per-joint
    posterior RMS 3D error in metres of the chosen PPCA component given the 2D evidence.
    ``scale`` is pixels per metre and ``translation`` the pixel position of the projected pelvis,
    so a runtime with focal length f (px) can place the pelvis at depth f / scale.
    ``reprojected2d`` (N,14,2) px is the 3D pose projected back into the image (paper 5.4).
    """

    joints3d: np.ndarray
    joint_names: list[str]
    valid: np.ndarray
    uncertainty: np.ndarray
    cost: np.ndarray
    component: np.ndarray
    rotation_deg: np.ndarray
    elevation_deg: np.ndarray
    coefficients: np.ndarray
    scale: np.ndarray
    translation: np.ndarray
    reprojected2d: np.ndarray


def _rot_y(theta: np.ndarray) -> np.ndarray:
    c, s = np.cos(theta), np.sin(theta)
    z, o = np.zeros_like(theta), np.ones_like(theta)
    return np.stack([np.stack([c, z, s], -1), np.stack([z, o, z], -1), np.stack([-s, z, c], -1)], -2)


def _rot_x(phi: np.ndarray) -> np.ndarray:
    c, s = np.cos(phi), np.sin(phi)
    z, o = np.zeros_like(phi), np.ones_like(phi)
    return np.stack([np.stack([o, z, z], -1), np.stack([z, c, -s], -1), np.stack([z, s, c], -1)], -2)


class Lifter:
    """Batched 2D -> 3D lifting with a :class:`PosePrior` (immutable after construction)."""

    def __init__(self, prior: PosePrior, rotations: int = 80, camera_pitch_deg: float | None = None,
                 elevations_deg: tuple[float, ...] | list[float] = DEFAULT_ELEVATIONS,
                 min_visible_joints: int = 6, min_confidence: float = 0.05, noise2d: float = NOISE2D):
        if rotations < 1:
            raise ValueError(f"rotations: must be >= 1, got {rotations}")
        if not 2 <= min_visible_joints <= _N2D:
            raise ValueError(f"min_visible_joints: must be in 2..{_N2D}, got {min_visible_joints}")
        if camera_pitch_deg is not None and math.isnan(camera_pitch_deg):
            camera_pitch_deg = None
        elevations = [camera_pitch_deg] if camera_pitch_deg is not None else list(elevations_deg)
        if not elevations:
            raise ValueError("elevations_deg: empty while camera_pitch_deg is unknown")
        self.prior = prior
        self.min_visible_joints = min_visible_joints
        self.min_confidence = min_confidence
        self.camera_pitch_deg = camera_pitch_deg
        thetas = np.linspace(0.0, 2 * np.pi, rotations, endpoint=False)
        self._theta = np.tile(thetas, len(elevations))
        self._phi = np.repeat(np.radians(np.asarray(elevations, float)), rotations)
        self._yaw = _rot_y(self._theta)
        proj = (_rot_x(self._phi) @ self._yaw)[:, :2]                      # (V,2,3)
        k, j = prior.n_components, prior.n_basis
        self._p = p = 3 + j
        mu = prior.means[:, :_N2D]                                          # (K,14,3)
        w = prior.bases[:, :_N2D]                                           # (K,14,3,J)
        n_views = len(proj)
        a = np.zeros((n_views, k, _N2D, 2, p))
        a[..., 0] = np.einsum("vcx,klx->vklc", proj, mu)
        a[..., 0, 1] = 1.0
        a[..., 1, 2] = 1.0
        a[..., 3:] = np.einsum("vcx,klxj->vklcj", proj, w)
        self._a = a
        self._lam = prior.noise + noise2d**2                                # (K,)
        self._ridge = np.zeros((k, p, p))
        self._ridge[:, np.arange(3, p), np.arange(3, p)] = self._lam[:, None]
        self._outer = np.einsum("vklcp,vklcq->vklpq", a, a)                 # (V,K,14,P,P)
        self._a_flat = np.ascontiguousarray(a.reshape(n_views * k, 2 * _N2D, p).transpose(1, 0, 2)
                                            .reshape(2 * _N2D, -1))
        self._full_ginv = np.linalg.inv(self._outer.sum(2) + self._ridge)
        self._full_solve = np.ascontiguousarray(
            np.einsum("vkpq,vkrq->rvkp", self._full_ginv, a.reshape(n_views, k, 2 * _N2D, p))
            .reshape(2 * _N2D, -1))
        self._log_weights = np.log(prior.weights)
        self._patterns: OrderedDict[bytes, np.ndarray] = OrderedDict()

    @classmethod
    def from_config(cls, config, prior: PosePrior | None = None) -> "Lifter":
        """Build from a :class:`realtime.config.LiftingConfig` (loading its prior unless given)."""
        pitch = config.camera_pitch_deg
        return cls(prior or PosePrior.load(config.prior or None), rotations=config.rotations,
                   camera_pitch_deg=None if math.isnan(pitch) else pitch,
                   elevations_deg=tuple(config.elevations_deg),
                   min_visible_joints=config.min_visible_joints, min_confidence=config.min_confidence)

    def _pattern_ginv(self, weights: np.ndarray) -> np.ndarray:
        key = weights.tobytes()
        ginv = self._patterns.get(key)
        if ginv is None:
            ginv = np.linalg.inv(np.einsum("l,vklpq->vkpq", weights, self._outer) + self._ridge)
            self._patterns[key] = ginv
            if len(self._patterns) > _PATTERN_CACHE:
                self._patterns.popitem(last=False)
        else:
            self._patterns.move_to_end(key)
        return ginv

    def lift(self, keypoints2d: np.ndarray, confidence: np.ndarray) -> LiftResult:
        """Lift (N,14,2) pixel keypoints (image y down, LSP-14 order) with (N,14) confidences."""
        kp = np.asarray(keypoints2d, dtype=np.float64)
        conf = np.asarray(confidence, dtype=np.float64)
        if kp.ndim != 3 or kp.shape[1:] != (_N2D, 2):
            raise ValueError(f"keypoints2d: expected shape (N, {_N2D}, 2), got {kp.shape}")
        if conf.shape != kp.shape[:2]:
            raise ValueError(f"confidence: expected shape {kp.shape[:2]}, got {conf.shape}")
        n = len(kp)
        seen = np.isfinite(kp).all(-1) & np.isfinite(conf) & (conf >= self.min_confidence) & (conf > 0)
        w = np.where(seen, np.round(np.clip(np.nan_to_num(conf), 0, 1) / WEIGHT_STEP) * WEIGHT_STEP, 0.0)
        w = np.where(seen, np.maximum(w, WEIGHT_STEP), 0.0)
        valid = seen.sum(1) >= self.min_visible_joints
        out = _empty_result(n, self.prior.n_basis)
        idx = np.flatnonzero(valid)
        if len(idx) == 0:
            return out
        w = w[idx] / (w[idx].sum(1, keepdims=True) / seen[idx].sum(1, keepdims=True))
        full = seen[idx].all(1) & (w == w[:, :1]).all(1)
        w[full] = 1.0
        y = np.where(seen[idx, :, None], kp[idx] * [1.0, -1.0], 0.0)
        wsum = w.sum(1)
        centre = (w[..., None] * y).sum(1) / wsum[:, None]
        rms = np.sqrt((w * ((y - centre[:, None]) ** 2).sum(-1)).sum(1) / wsum)
        rms = np.where(rms > 0, rms, 1.0)
        yn = np.where(seen[idx, :, None], (y - centre[:, None]) / rms[:, None, None], 0.0)

        n_views, k, p = len(self._theta), self.prior.n_components, self._p
        z = np.empty((len(idx), n_views, k, p))
        cost = np.empty((len(idx), n_views, k))
        ginvs = [self._full_ginv]
        group = np.zeros(len(idx), dtype=np.int64)
        rest = np.flatnonzero(~full)
        if len(rest):
            patterns, inverse = np.unique(w[rest], axis=0, return_inverse=True)
            ginvs += [self._pattern_ginv(pattern) for pattern in patterns]
            group[rest] = inverse.ravel() + 1
        for g, ginv in enumerate(ginvs):
            members = np.flatnonzero(group == g)
            if len(members) == 0:
                continue
            ywf = (yn[members] * w[members, :, None]).reshape(len(members), -1)
            h = (ywf @ self._a_flat).reshape(len(members), n_views, k, p)
            if g == 0:
                zm = (ywf @ self._full_solve).reshape(h.shape)
            else:
                zm = np.einsum("vkpq,nvkq->nvkp", ginv, h)
            z[members] = zm
            cost[members] = (ywf * yn[members].reshape(len(members), -1)).sum(1)[:, None, None] \
                - np.einsum("nvkp,nvkp->nvk", zm, h)

        s = z[..., 0]
        n_eff = w.sum(1)[:, None, None]
        with np.errstate(divide="ignore", invalid="ignore"):
            energy = cost / (2 * s**2 * self._lam) + n_eff * np.log(s**2 * self._lam) - self._log_weights
        energy = np.where(s > 1e-6, energy, np.inf)
        flat = energy.reshape(len(idx), -1)
        best = np.argmin(flat, axis=1)
        plausible = np.isfinite(flat[np.arange(len(idx)), best])
        view, comp = np.unravel_index(best, (n_views, k))
        zb = z[np.arange(len(idx)), view, comp]
        sb, tb, bb = zb[:, 0], zb[:, 1:3], zb[:, 3:]
        with np.errstate(divide="ignore", invalid="ignore"):
            coeff = bb / sb[:, None]
        model = self.prior.means[comp] + np.einsum("nlxj,nj->nlx", self.prior.bases[comp], coeff)
        level = np.einsum("nxy,nly->nlx", self._yaw[view], model) * self.prior.metric_scale
        level -= level[:, ROOT_INDEX : ROOT_INDEX + 1]

        proj = (_rot_x(self._phi[view]) @ self._yaw[view])[:, :2]
        reproj = sb[:, None, None] * np.einsum("ncx,nlx->nlc", proj, model[:, :_N2D]) + tb[:, None]
        reproj = (reproj * rms[:, None, None] + centre[:, None]) * [1.0, -1.0]
        root_px = (tb * rms[:, None] + centre) * [1.0, -1.0]

        ginv_b = np.empty((len(idx), p - 3, p - 3))
        for g, ginv in enumerate(ginvs):
            members = group == g
            ginv_b[members] = ginv[view[members], comp[members], 3:, 3:]
        cov_a = ginv_b * self._lam[comp, None, None]
        bases = self.prior.bases[comp]
        var = np.einsum("nlxj,njm,nlxm->nl", bases, cov_a, bases) + 3 * self.prior.noise[comp, None]
        unc = np.sqrt(var) * self.prior.metric_scale
        unc[:, ROOT_INDEX] = 0.0

        fields = dict(joints3d=level, uncertainty=unc, component=comp, coefficients=coeff,
                      cost=(cost[np.arange(len(idx)), view, comp] - self._lam[comp] * (bb**2).sum(1)) / wsum,
                      rotation_deg=np.degrees(self._theta[view]), elevation_deg=np.degrees(self._phi[view]),
                      scale=sb * rms / self.prior.metric_scale, translation=root_px, reprojected2d=reproj)
        for name, value in fields.items():
            getattr(out, name)[idx[plausible]] = value[plausible]
        out.valid[idx[plausible]] = True
        return out


def _empty_result(n: int, n_basis: int) -> LiftResult:
    nan = lambda *shape: np.full(shape, np.nan)  # noqa: E731
    return LiftResult(
        joints3d=nan(n, len(JOINTS3D), 3), joint_names=list(JOINTS3D), valid=np.zeros(n, bool),
        uncertainty=nan(n, len(JOINTS3D)), cost=nan(n), component=np.full(n, -1),
        rotation_deg=nan(n), elevation_deg=nan(n), coefficients=nan(n, n_basis), scale=nan(n),
        translation=nan(n, 2), reprojected2d=nan(n, _N2D, 2))
