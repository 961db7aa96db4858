"""Lifting 2D keypoints to the most probable 3D pose under the prior (Tome et al. 2017, 5.3).

Camera: weak perspective, the body rotated about the vertical axis by one of ``rotations``
quantised angles and seen from a camera pitched down by a known angle (or one of a few searched
elevations). For each view and mixture component the unknowns (s, t, b = s a) enter linearly, so
the MAP fit of the PPCA coefficients a ~ N(0, I) is a ridge least-squares problem:

    min_z  sum_l w_l |y_l - s P R mu_l - t - P R W_l b|^2 + lambda_k |b|^2,   lambda_k = sigma_k^2 + noise2d^2

(the noise in model units scales with s in the image, which makes the ridge weight independent of s;
the translation t is eliminated in closed form).
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

from realtime.lifting.prior import ROOT_INDEX, PosePrior, rotate_y
from realtime.skeleton import JOINTS3D, LSP14

#: Confidences are rounded to this step before weighting, so that people with the same visibility
#: and confidence pattern share one solve.
WEIGHT_STEP = 0.05
DEFAULT_ELEVATIONS = (-10.0, 0.0, 10.0, 20.0, 30.0)
_N2D = len(LSP14)
_PATTERN_CACHE = 32
#: People scored per matrix product: keeps the (people x views x components) block in cache.
_CHUNK = 256


@dataclass(frozen=True)
class _Solver:
    """Everything the fit needs for one joint-weight pattern, over all views and components.

    The 2D input is centred on its weighted mean, so with the centred design's G (+ ridge) and
    ginv = C C^T the regularised residual of the best z is y^T W y - |(W y)^T A C|^2 and the scale
    is (W y)^T A ginv e_0: two matrix products score all views and components of a batch at once.
    The chosen solution is then solved exactly with ginv.
    """

    ginv: np.ndarray        # (V,K,P,P)
    mean: np.ndarray        # (V,K,2,P) weighted mean of the design over joints: t = -mean z
    whiten: np.ndarray      # (28, P*V*K) float32, columns ordered (p, v, k)
    scale_row: np.ndarray   # (28, V*K) float32
    uncertainty: np.ndarray  # (V,K,16) posterior RMS 3D error per joint (m)


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
    ``cost`` is the weighted mean squared reprojection residual relative to the person's 2D RMS
    size; ``component``, ``rotation_deg``, ``elevation_deg`` and ``coefficients`` (N,J) name the
    chosen solution.
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
    """Batched 2D -> 3D lifting with a :class:`PosePrior`.

    The model and views are fixed at construction; only a small cache of per-weight-pattern
    solvers grows, so use one Lifter per thread or process.
    """

    def __init__(self, prior: PosePrior, rotations: int = 80, camera_pitch_deg: float | None = None,
                 elevations_deg: tuple[float, ...] | list[float] = DEFAULT_ELEVATIONS,
                 min_visible_joints: int = 6, min_confidence: float = 0.05, noise2d: float | None = None):
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
        proj = (_rot_x(self._phi) @ _rot_y(self._theta))[:, :2]             # (V,2,3)
        k, j = prior.n_components, prior.n_basis
        self._p = p = 1 + j
        n_views = len(proj)
        a = np.empty((n_views, k, _N2D, 2, p))
        a[..., 0] = np.einsum("vcx,klx->vklc", proj, prior.means[:, :_N2D])
        a[..., 1:] = np.einsum("vcx,klxj->vklcj", proj, prior.bases[:, :_N2D])
        self._a = a                                                         # (V,K,14,2,P)
        self._lam = prior.noise + (prior.noise2d if noise2d is None else noise2d) ** 2  # (K,)
        self._ridge = np.zeros((k, p, p))
        self._ridge[:, np.arange(1, p), np.arange(1, p)] = self._lam[:, None]
        outer = np.einsum("vklcp,vklcq->vklpq", a, a)                       # (V,K,14,P,P)
        self._outer_by_joint = np.ascontiguousarray(np.moveaxis(outer, 2, 0).reshape(_N2D, -1))
        self._a_by_joint = np.ascontiguousarray(np.moveaxis(a, 2, 0).reshape(_N2D, -1))
        self._bases_by_k = prior.bases.reshape(k, -1, j)                    # (K,48,J)
        self._log_weights = np.log(prior.weights)
        self._bases_flat = prior.bases.reshape(-1, j)                       # (K*16*3, J)
        self._lam_vk = np.tile(self._lam, n_views).astype(np.float32)
        self._log_weights_vk = np.tile(self._log_weights, n_views).astype(np.float32)
        self._full = self._solver(np.ones(_N2D))
        self._patterns: OrderedDict[bytes, _Solver] = OrderedDict()

    def _solver(self, weights: np.ndarray) -> "_Solver":
        """Precomputed scoring matrices for one joint-weight pattern (see :class:`_Solver`).

        The translation is eliminated by its own normal equation, t = -mean_w(A) z, which turns
        the design into its weighted-centred version and leaves z = (s, b).
        """
        n_views, k, _, _, p = self._a.shape
        total = weights.sum()
        mean = (weights @ self._a_by_joint).reshape(n_views, k, 2, p) / total
        g = (weights @ self._outer_by_joint).reshape(n_views, k, p, p) + self._ridge \
            - total * np.matmul(mean.transpose(0, 1, 3, 2), mean)
        ginv = np.linalg.inv(g)
        chol = np.linalg.cholesky(ginv)                                     # ginv = C C^T
        design = self._a.reshape(n_views, k, 2 * _N2D, p)
        whiten = np.matmul(design, chol).transpose(2, 3, 0, 1)              # A C, as (r, q, v, k)
        scale_row = np.matmul(design, ginv[..., :1])[..., 0].transpose(2, 0, 1)   # A ginv e_0
        cov_a = ginv[..., 1:, 1:] * self._lam[:, None, None]                # posterior cov of a
        spread = np.matmul(self._bases_by_k, cov_a)                         # (V,K,48,J)
        var = (spread * self._bases_by_k).sum(-1).reshape(n_views, k, -1, 3).sum(-1)
        uncertainty = np.sqrt(var + 3 * self.prior.noise[:, None]) * self.prior.metric_scale
        uncertainty[..., ROOT_INDEX] = 0.0
        return _Solver(ginv, mean, np.ascontiguousarray(whiten.reshape(2 * _N2D, -1), dtype=np.float32),
                       np.ascontiguousarray(scale_row.reshape(2 * _N2D, -1), dtype=np.float32), uncertainty)

    def _pattern_solver(self, weights: np.ndarray) -> "_Solver":
        key = weights.tobytes()
        solver = self._patterns.get(key)
        if solver is None:
            solver = self._patterns[key] = self._solver(weights)
            if len(self._patterns) > _PATTERN_CACHE:
                self._patterns.popitem(last=False)
        else:
            self._patterns.move_to_end(key)
        return solver

    @classmethod
    def from_config(cls, config, prior: PosePrior | None = None) -> "Lifter":
        """Build from a :class:`realtime.config.LiftingConfig` (loading its prior unless given)."""
        pitch = config.camera_pitch_deg
        return cls(prior or PosePrior.load(config.prior or None), rotations=config.rotations,
                   camera_pitch_deg=None if math.isnan(pitch) else pitch,
                   elevations_deg=tuple(config.elevations_deg),
                   min_visible_joints=config.min_visible_joints, min_confidence=config.min_confidence)

    def _energy(self, solvers: list["_Solver"], group: np.ndarray, wy: np.ndarray, ssq: np.ndarray,
                n_eff: np.ndarray) -> np.ndarray:
        """Negative log posterior of the best fit for every person x (view, component), float32."""
        energy = np.empty((len(wy), len(self._lam_vk)), np.float32)
        ssq, n_eff = ssq.astype(np.float32)[:, None], n_eff.astype(np.float32)[:, None]
        for g, solver in enumerate(solvers):
            members = np.flatnonzero(group == g)
            for start in range(0, len(members), _CHUNK):
                chunk = members[start : start + _CHUNK]
                ywf = wy[chunk].astype(np.float32)
                u = ywf @ solver.whiten
                u *= u
                cost = ssq[chunk] - np.add.reduce(u.reshape(len(ywf), self._p, -1), axis=1)
                s = ywf @ solver.scale_row
                s2lam = s * s * self._lam_vk
                with np.errstate(divide="ignore", invalid="ignore"):
                    e = cost / (2 * s2lam) + n_eff[chunk] * np.log(s2lam) - self._log_weights_vk
                energy[chunk] = np.where(s > 1e-6, e, np.inf)
        return energy

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

        k, p = self.prior.n_components, self._p
        wy = (yn * w[..., None]).reshape(len(idx), -1)
        solvers = [self._full]
        group = np.zeros(len(idx), dtype=np.int64)
        rest = np.flatnonzero(~full)
        if len(rest):
            patterns, inverse = np.unique(w[rest], axis=0, return_inverse=True)
            solvers += [self._pattern_solver(pattern) for pattern in patterns]
            group[rest] = inverse.ravel() + 1
        ssq = (wy * yn.reshape(len(idx), -1)).sum(1)
        energy = self._energy(solvers, group, wy, ssq, w.sum(1))
        best = np.argmin(energy, axis=1)
        plausible = np.isfinite(energy[np.arange(len(idx)), best])
        view, comp = np.divmod(best, k)
        ginv = np.empty((len(idx), p, p))
        mean = np.empty((len(idx), 2, p))
        unc = np.empty((len(idx), len(JOINTS3D)))
        for g, solver in enumerate(solvers):
            members = group == g
            ginv[members] = solver.ginv[view[members], comp[members]]
            mean[members] = solver.mean[view[members], comp[members]]
            unc[members] = solver.uncertainty[view[members], comp[members]]
        h = np.matmul(wy[:, None], self._a[view, comp].reshape(len(idx), 2 * _N2D, p))[:, 0]
        zb = np.matmul(ginv, h[..., None])[..., 0]
        sb, bb = zb[:, 0], zb[:, 1:]
        tb = -np.matmul(mean, zb[..., None])[..., 0]
        residual = ssq - (zb * h).sum(1) - self._lam[comp] * (bb**2).sum(1)
        with np.errstate(divide="ignore", invalid="ignore"):
            coeff = bb / sb[:, None]
        n_joints = len(JOINTS3D)
        deform = (coeff @ self._bases_flat.T).reshape(len(idx), k, n_joints, 3)[np.arange(len(idx)), comp]
        level = rotate_y(self.prior.means[comp] + deform, self._theta[view])   # model units
        cos_e, sin_e = np.cos(self._phi[view])[:, None], np.sin(self._phi[view])[:, None]
        image = np.stack([level[:, :_N2D, 0], cos_e * level[:, :_N2D, 1] - sin_e * level[:, :_N2D, 2]], -1)
        reproj = ((sb[:, None, None] * image + tb[:, None]) * rms[:, None, None] + centre[:, None]) * [1.0, -1.0]
        root_px = (tb * rms[:, None] + centre) * [1.0, -1.0]
        level = (level - level[:, ROOT_INDEX : ROOT_INDEX + 1]) * self.prior.metric_scale

        fields = dict(joints3d=level, uncertainty=unc, component=comp, coefficients=coeff,
                      cost=residual / wsum,
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
