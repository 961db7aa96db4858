"""Lifting 2D keypoints to the most probable 3D pose under the prior (Tome et al. 2017, 5.3).

Camera: weak perspective, the body rotated about the vertical axis by one of ``rotations``
quantised angles and seen from a camera pitched down by a known angle (or one of a few searched
elevations). For each view and mixture component the unknowns z = (s, t, b = s a) enter linearly,
so the MAP fit of the PPCA coefficients a ~ N(0, I) is a ridge least-squares problem over the
visible joints V:

    min_z  sum_{l in V} |y_l - s P R mu_l - t - P R W_l b|^2 + lambda_k |b|^2,   lambda_k = sigma_k^2 + noise2d^2

(the noise in model units scales with s in the image, which makes the ridge weight independent of s).
Joints are visible or missing (confidence below ``min_confidence``); confidences do not weight the
fit, so the few missing-joint patterns of a stream repeat and their work is cached.
The solution with the highest posterior over views and components wins.

The prior holds upright people only (mocap of walking, dancing, exercise...). A person whose torso
leans more than ``roll_above_deg`` from upright in the image (lying on the floor, crawling, upside
down) is lifted again with the image turned about them so that the torso points up (by its own
angle, and by the nearest quarter turn), and the best posterior wins; the turn is undone on the 3D
pose, so a person lying in the image lies in 3D (``LiftResult.roll_deg``). Upright people cost
nothing more.

Speed: everything for all joints visible is precomputed per (view, component): eliminating t
centres the design, and with the centred design A of (s, b), G = A^T A + ridge and G^-1 = C C^T,
the residual of the best fit is y^T Q y with Q = I - T - (A C)(A C)^T (T the centring projection).
Missing joints m are the same problem with their rows y_m free (they settle at their prediction),
so the residual is the Schur complement y^T Q y - (Q y)_m^T Q_mm^-1 (Q y)_m (y zero on m), and the
scale is the all-visible scale of y with y_m imputed. Only the small Q_mm^-1 (2|m| x 2|m| per view)
depends on the pattern: it is built in one batched inverse and kept in an LRU cache. The chosen
solution is then solved exactly.
"""
from __future__ import annotations

from collections import OrderedDict
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, Sequence

import numpy as np

from realtime.lifting.conventions import KeypointConvention
from realtime.lifting.prior import ROOT_INDEX, PosePrior, rotate_y
from realtime.skeleton import JOINTS3D, LSP14, UPRIGHT_LEAN_DEG, level_to_camera, torso_lean, turn_matrix

if TYPE_CHECKING:
    from realtime.lifting.camera import Camera

DEFAULT_ELEVATIONS = (-10.0, 0.0, 10.0, 20.0, 30.0)
_N2D = len(LSP14)
_ROWS = 2 * _N2D
_BITS = 1 << np.arange(_N2D)
#: Memory for cached missing-joint patterns: with 80 x 5 views one missing joint takes 0.2 MB, eight 2.5 MB.
PATTERN_CACHE_BYTES = 64 << 20
#: People scored per matrix product: keeps the (people x views x components) block in cache.
_CHUNK = 128


@dataclass(frozen=True)
class _Pattern:
    """The pattern-dependent part of the scoring for one set of missing rows, over all views."""

    rows: np.ndarray        # (R,) indices of the missing rows of the flattened (14,2) keypoints
    whiten: np.ndarray      # (R, Q, V*K) float32: the rows of A C (centred design)
    qinv: np.ndarray        # (R, R, V*K) float32: Q_mm^-1
    scale_row: np.ndarray   # (R, V*K) float32: the rows of A G^-1 e_0 (centred design)
    occam: np.ndarray | None  # (V*K,) float32: the evidence's Occam term with these joints missing (None: off)

    @property
    def nbytes(self) -> int:
        occam = 0 if self.occam is None else self.occam.nbytes
        return self.whiten.nbytes + self.qinv.nbytes + self.scale_row.nbytes + occam


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
    ``cost`` is the mean squared reprojection residual over the visible joints relative to the
    person's 2D RMS size; ``component``, ``rotation_deg``, ``elevation_deg`` and ``coefficients`` (N,J) name the
    chosen solution. ``elevation_energy`` (N,E) is the best negative log posterior at each of the lifter's
    elevations (``Lifter.elevations_deg``), what a camera's pitch is estimated from over many people.
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
    elevation_energy: np.ndarray
    roll_deg: np.ndarray

    def assign(self, people: Sequence[Any], camera: "Camera", width: int, height: int) -> None:
        """Give each of ``people`` (``realtime.transport.schema.Person``, in the order lifted) its 3D
        pose, per-joint uncertainty and root: :meth:`assign_row` for every row."""
        for i, p in enumerate(people):
            self.assign_row(p, i, camera, width, height)

    def assign_row(self, person: Any, row: int, camera: "Camera", width: int, height: int) -> None:
        """Row ``row``'s 3D pose (float64), per-joint uncertainty, root and the pitch it was lifted at as
        ``person``'s, the root placed with ``camera`` in a ``width`` x ``height`` image; all None when
        the row was not lifted."""
        ok = bool(self.valid[row]) and bool(np.all(np.isfinite(self.joints3d[row])))
        person.joints3d = self.joints3d[row].astype(np.float64) if ok else None
        person.uncertainty = self.uncertainty[row].astype(np.float64) if ok else None
        s = float(self.scale[row])
        u, v = (float(x) for x in self.translation[row])
        usable = ok and s > 0 and np.isfinite(u + v)
        person.root = (np.asarray(camera.level_root(u, v, s, width, height, float(self.elevation_deg[row])))
                       if usable else None)
        person.pitch_deg = float(self.elevation_deg[row]) if ok else None


def _rot_y(theta: np.ndarray) -> np.ndarray:
    c, s = np.cos(theta), np.sin(theta)
    z, o = np.zeros_like(theta), np.ones_like(theta)
    return np.stack([np.stack([c, z, s], -1), np.stack([z, o, z], -1), np.stack([-s, z, c], -1)], -2)


def _rot_x(phi: np.ndarray) -> np.ndarray:
    c, s = np.cos(phi), np.sin(phi)
    z, o = np.zeros_like(phi), np.ones_like(phi)
    return np.stack([np.stack([o, z, z], -1), np.stack([z, c, -s], -1), np.stack([z, s, c], -1)], -2)


def _rot_z(psi: np.ndarray) -> np.ndarray:
    c, s = np.cos(psi), np.sin(psi)
    z, o = np.zeros_like(psi), np.ones_like(psi)
    return np.stack([np.stack([c, -s, z], -1), np.stack([s, c, z], -1), np.stack([z, z, o], -1)], -2)


def _turn_image(points: np.ndarray, centre: np.ndarray, angle: np.ndarray) -> np.ndarray:
    """(N,L,2) image points (y down) turned by ``angle`` (N,) radians, clockwise on screen, about (N,2) centres."""
    return np.matmul(points - centre[:, None], turn_matrix(angle)) + centre[:, None]


class Lifter:
    """Batched 2D -> 3D lifting with a :class:`PosePrior`.

    The model and views are fixed at construction; only an LRU cache of per-missing-joint-pattern
    matrices grows (see ``cache_info``), so use one Lifter per thread or process. ``convention``
    says where the 2D source puts its keypoints relative to the prior's joints (None = on them): the
    model's keypoints are that fixed linear combination of its joints, folded into the design.
    """

    def __init__(self, prior: PosePrior, rotations: int = 80, camera_pitch_deg: float | None = None,
                 elevations_deg: tuple[float, ...] | list[float] = DEFAULT_ELEVATIONS,
                 min_visible_joints: int = 5, min_confidence: float = 0.05, noise2d: float | None = None,
                 convention: KeypointConvention | None = None, roll_above_deg: float = UPRIGHT_LEAN_DEG,
                 evidence: bool = False):
        if rotations < 1:
            raise ValueError(f"rotations: must be >= 1, got {rotations}")
        if not 2 <= min_visible_joints <= _N2D:
            raise ValueError(f"min_visible_joints: must be in 2..{_N2D}, got {min_visible_joints}")
        elevations = [camera_pitch_deg] if camera_pitch_deg is not None else list(elevations_deg)
        if not elevations:
            raise ValueError("elevations_deg: empty while camera_pitch_deg is unknown")
        if not 0.0 <= roll_above_deg <= 180.0:
            raise ValueError(f"roll_above_deg: must be in 0..180, got {roll_above_deg}")
        self.prior = prior
        self.roll_above_deg = float(roll_above_deg)
        self.min_visible_joints = min_visible_joints
        self.min_confidence = min_confidence
        self.camera_pitch_deg = camera_pitch_deg
        self.elevations_deg = tuple(float(e) for e in elevations)
        self.convention = convention
        #: (14,16): the 2D keypoints as combinations of the prior's joints.
        self._keypoint_map = (np.eye(len(JOINTS3D)) if convention is None else convention.matrix)[:_N2D]
        thetas = np.linspace(0.0, 2 * np.pi, rotations, endpoint=False)
        self._theta = np.tile(thetas, len(elevations))
        self._phi = np.repeat(np.radians(np.asarray(elevations, float)), rotations)
        self._phi_deg = np.repeat(np.asarray(elevations, float), rotations)  # reported exactly as configured
        proj = (_rot_x(self._phi) @ _rot_y(self._theta))[:, :2]             # (V,2,3)
        k, j = prior.n_components, prior.n_basis
        p = 3 + j                                                           # z = (s, t_x, t_y, b)
        n_views = len(proj)
        a = np.zeros((n_views, k, _N2D, 2, p))
        means = np.einsum("lm,kmx->klx", self._keypoint_map, prior.means)
        bases = np.einsum("lm,kmxj->klxj", self._keypoint_map, prior.bases)
        a[..., 0] = np.einsum("vcx,klx->vklc", proj, means)
        a[..., 0, 1] = a[..., 1, 2] = 1.0
        a[..., 3:] = np.einsum("vcx,klxj->vklcj", proj, bases)
        self._a = a.reshape(n_views, k, _ROWS, p)                           # (V,K,28,P)
        self._lam = prior.noise + (prior.noise2d if noise2d is None else noise2d) ** 2  # (K,)
        self._ridge = np.zeros((k, p, p))
        self._ridge[:, np.arange(3, p), np.arange(3, p)] = self._lam[:, None]
        self._ginv = np.linalg.inv(np.matmul(self._a.transpose(0, 1, 3, 2), self._a) + self._ridge)
        # Scoring eliminates t by centring: the (s, b) columns of the design, centred over joints.
        self._q = q = 1 + j
        centred = a[..., [0, *range(3, p)]]
        centred = (centred - centred.mean(axis=2, keepdims=True)).reshape(n_views, k, _ROWS, q)
        ginv = np.linalg.inv(np.matmul(centred.transpose(0, 1, 3, 2), centred) + self._ridge[:, 2:, 2:])
        whiten = np.matmul(centred, np.linalg.cholesky(ginv))               # A C, (V,K,28,Q)
        self._whiten64 = np.ascontiguousarray(whiten.transpose(2, 3, 0, 1).reshape(_ROWS, q, -1))
        self._whiten = self._whiten64.reshape(_ROWS, -1).astype(np.float32)  # (28, Q*V*K), columns (q, v, k)
        scale_row = np.matmul(centred, ginv[..., :1])[..., 0]               # A G^-1 e_0, (V,K,28)
        self._scale_row = np.ascontiguousarray(scale_row.transpose(2, 0, 1).reshape(_ROWS, -1), dtype=np.float32)
        self._bases_by_k = prior.bases.reshape(k, -1, j)                    # (K,48,J)
        self._lam_vk = np.tile(self._lam, n_views).astype(np.float32)
        # The evidence (off by default: a study, docs/benchmarks.md): the coefficients integrated out
        # rather than set to their best, which adds 1/2 log det(I + B^T B / lambda_k) per view and
        # component, B the design's basis columns over the visible rows.
        self.evidence = evidence
        self._basis_rows = (a[..., 3:].reshape(n_views * k, _ROWS, j) / np.sqrt(np.tile(self._lam, n_views))[:, None, None]
                            if evidence else None)
        self._occam = self._occam_term(np.zeros(0, int)) if evidence else None
        self._log_weights_vk = np.tile(np.log(prior.weights), n_views).astype(np.float32)
        self._patterns: OrderedDict[int, _Pattern] = OrderedDict()
        self._hits = self._misses = self._cache_bytes = 0

    def cache_info(self) -> dict[str, int]:
        """Missing-joint pattern cache: ``hits`` and ``misses`` so far, ``size`` (patterns held) and ``bytes``."""
        return {"hits": self._hits, "misses": self._misses, "size": len(self._patterns), "bytes": self._cache_bytes}

    def _occam_term(self, rows: np.ndarray) -> np.ndarray:
        """1/2 log det(I + B^T B / lambda) per view and component, without the missing ``rows``."""
        assert self._basis_rows is not None
        b = np.delete(self._basis_rows, rows, axis=1)
        return (0.5 * np.linalg.slogdet(np.eye(b.shape[-1]) + np.matmul(b.transpose(0, 2, 1), b))[1]).astype(np.float32)

    def _pattern(self, key: int, missing: np.ndarray) -> _Pattern:
        """Q_mm^-1 and the missing rows of A C and A G^-1 e_0 for one (14,) missing-joint mask (bits ``key``)."""
        pattern = self._patterns.get(key)
        if pattern is not None:
            self._hits += 1
            self._patterns.move_to_end(key)
            return pattern
        self._misses += 1
        rows = np.flatnonzero(np.repeat(missing, 2))
        ac = self._whiten64[rows]                                           # (R,Q,VK)
        same_axis = rows[:, None] % 2 == rows[None] % 2                     # the centring's share of Q
        q = (np.eye(len(rows)) - same_axis / _N2D)[..., None] - np.einsum("rpv,spv->rsv", ac, ac)
        qinv = np.linalg.inv(q.transpose(2, 0, 1)).transpose(1, 2, 0)
        occam = self._occam_term(rows) if self.evidence else self._occam
        pattern = self._patterns[key] = _Pattern(rows, ac.astype(np.float32), qinv.astype(np.float32),
                                                  self._scale_row[rows], occam)
        self._cache_bytes += pattern.nbytes
        while self._cache_bytes > PATTERN_CACHE_BYTES and len(self._patterns) > 1:
            self._cache_bytes -= self._patterns.popitem(last=False)[1].nbytes
        return pattern

    def _energy(self, y0: np.ndarray, missing: np.ndarray) -> np.ndarray:
        """Negative log posterior of the best fit for every person x (view, component), float32.

        ``y0`` (N,28) holds the normalised keypoints with missing rows zeroed.
        """
        n, q = len(y0), self._q
        energy = np.empty((n, len(self._lam_vk)), np.float32)
        y32 = y0.astype(np.float32)
        axis_mean = y32.reshape(n, _N2D, 2).mean(1)                         # (N,2): Q's centring part
        centred_ssq = np.einsum("nr,nr->n", y32, y32) - _N2D * np.einsum("nc,nc->n", axis_mean, axis_mean)
        n_vis = (_N2D - missing.sum(1)).astype(np.float32)[:, None]
        keys, first, group = np.unique(missing @ _BITS, return_index=True, return_inverse=True)
        for g, (key, person) in enumerate(zip(keys.tolist(), first)):
            pattern = self._pattern(key, missing[person]) if key else None
            members = np.flatnonzero(group == g)
            for start in range(0, len(members), _CHUNK):
                chunk = members[start : start + _CHUNK]
                y = y32[chunk]
                u = (y @ self._whiten).reshape(len(chunk), q, -1)
                cost = centred_ssq[chunk, None] - np.einsum("npv,npv->nv", u, u)
                s = y @ self._scale_row
                if pattern is not None:
                    qm = -np.einsum("rpv,npv->nrv", pattern.whiten, u)       # (Q y)_m
                    qm -= axis_mean[chunk][:, pattern.rows % 2, None]
                    imputed = -np.einsum("rsv,nsv->nrv", pattern.qinv, qm)  # y_m at the optimum
                    cost += np.einsum("nrv,nrv->nv", qm, imputed)
                    s += np.einsum("rv,nrv->nv", pattern.scale_row, imputed)
                s2lam = s * s * self._lam_vk
                with np.errstate(divide="ignore", invalid="ignore"):
                    e = cost / (2 * s2lam) + n_vis[chunk] * np.log(s2lam) - self._log_weights_vk
                if self.evidence:
                    e += self._occam if pattern is None else pattern.occam
                energy[chunk] = np.where(s > 1e-6, e, np.inf)
        return energy

    def lift(self, keypoints2d: np.ndarray, confidence: np.ndarray, focal_px: float | np.ndarray | None = None,
             centre_px: Sequence[float] | np.ndarray | None = None) -> LiftResult:
        """Lift (N,14,2) pixel keypoints (image y down, LSP-14 order) with (N,14) confidences.

        The model is weak perspective: every joint seen at the pelvis's depth. Given the camera's
        ``focal_px`` (scalar or (N,)) and principal point ``centre_px`` ((2,) or (N,2) px), the lift
        is corrected for perspective once: each keypoint moved towards or away from the principal
        point by its lifted depth over the pelvis's (``focal / scale``), the way a weak-perspective
        camera would have seen it, and lifted again. A limb reaching towards the camera looks longer
        than weak perspective allows, and a person off the image centre is seen obliquely.
        ``reprojected2d`` is then in the image's perspective too.
        """
        kp = np.asarray(keypoints2d, dtype=np.float64)
        conf = np.asarray(confidence, dtype=np.float64)
        if kp.ndim != 3 or kp.shape[1:] != (_N2D, 2):
            raise ValueError(f"keypoints2d: expected shape (N, {_N2D}, 2), got {kp.shape}")
        if conf.shape != kp.shape[:2]:
            raise ValueError(f"confidence: expected shape {kp.shape[:2]}, got {conf.shape}")
        with np.errstate(invalid="ignore"):
            seen = np.isfinite(kp).all(-1) & (conf >= self.min_confidence) & (conf > 0)
        if (focal_px is None) != (centre_px is None):
            raise ValueError("focal_px and centre_px: give both (a perspective lift) or neither")
        out = self._lift(kp, seen)
        if focal_px is None:
            return out
        focal = np.broadcast_to(np.asarray(focal_px, np.float64), (len(kp),))
        centre = np.broadcast_to(np.asarray(centre_px, np.float64), (len(kp), 2))[:, None]
        if not (np.isfinite(focal).all() and (focal > 0).all() and np.isfinite(centre).all()):
            raise ValueError("focal_px must be positive and centre_px finite")
        weak = centre + (kp - centre) * _depth_ratio(out, focal)[..., None]
        again = self._lift(weak, seen)
        ratio = _depth_ratio(again, focal)[..., None]
        again.reprojected2d[:] = centre + (again.reprojected2d - centre) / ratio
        lost = np.flatnonzero(out.valid & ~again.valid)        # the first lift stands where the second failed
        for name, value in vars(again).items():
            if isinstance(value, np.ndarray):
                value[lost] = getattr(out, name)[lost]
        return again

    def _lift(self, kp: np.ndarray, seen: np.ndarray) -> LiftResult:
        """The weak-perspective lift of :meth:`lift`: upright, and turned for people leaning over."""
        out, energy = self._solve(kp, seen)
        if self.roll_above_deg >= 180.0:
            return out
        lean = torso_lean(kp, seen)
        with np.errstate(invalid="ignore"):
            turned = np.flatnonzero(out.valid & (np.abs(lean) > np.radians(self.roll_above_deg)))
        if len(turned):
            for turn in _turns(lean[turned]):
                self._lift_turned(out, energy, kp[turned], seen[turned], turn, turned)
        return out

    def hypotheses(self, keypoints2d: np.ndarray, confidence: np.ndarray
                   ) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """Every solution :meth:`lift` chooses from for ONE person: each (view, component), and for a
        person leaning over ``roll_above_deg`` each of those in the image turned about them too. A
        diagnostic of what the choice costs (``tools/bench_lifting.py --part real``), not a runtime
        path. Returns (H,16,3) joints in metres (pelvis-relative, level frame, any turn undone), (H,)
        negative log posteriors (:meth:`lift` keeps the lowest) and (H,) elevations in degrees."""
        kp = np.asarray(keypoints2d, np.float64).reshape(1, _N2D, 2)
        with np.errstate(invalid="ignore"):
            seen = np.isfinite(kp).all(-1) & (np.asarray(confidence, np.float64).reshape(1, _N2D) >= self.min_confidence)
        lean = torso_lean(kp, seen)
        turns = [np.zeros(1)] + (_turns(lean) if abs(lean[0]) > np.radians(self.roll_above_deg) else [])
        found = [self._hypotheses(kp, seen, turn) for turn in turns]
        return tuple(np.concatenate(parts) for parts in zip(*found))  # type: ignore[return-value]

    def _hypotheses(self, kp: np.ndarray, seen: np.ndarray, turn: np.ndarray):
        """:meth:`hypotheses` in the image turned by ``-turn`` (1,) radians about the person."""
        visible = np.where(seen[..., None], kp, 0.0)
        if turn[0]:
            visible = _turn_image(visible, visible.sum(1) / seen.sum(1)[:, None], -turn)
        y0 = _normalised(visible, seen)[0]
        energy = self._energy(y0, ~seen)[0].astype(np.float64)
        view, comp = np.divmod(np.arange(len(energy)), self.prior.n_components)
        design = self._a[view, comp] * np.repeat(seen[0], 2)[None, :, None]
        z = np.linalg.solve(np.matmul(design.transpose(0, 2, 1), design) + self._ridge[comp],
                            np.einsum("r,hrp->hp", y0[0], design)[..., None])[..., 0]
        with np.errstate(divide="ignore", invalid="ignore"):
            coeff = z[:, 3:] / z[:, :1]
        level = self._level_pose(coeff, comp, view)
        joints = (level - level[:, ROOT_INDEX : ROOT_INDEX + 1]) * self.prior.metric_scale
        if turn[0]:
            joints = np.einsum("hxy,hly->hlx", _undo_turn(self._phi[view], np.full(len(view), turn[0])), joints)
        return joints, np.where(z[:, 0] > 1e-6, energy, np.inf), self._phi_deg[view]

    def _level_pose(self, coeff: np.ndarray, comp: np.ndarray, view: np.ndarray) -> np.ndarray:
        """(N,16,3) poses in model units, level frame: component ``comp``'s mean plus its basis times
        (N,J) ``coeff``, turned to ``view``'s rotation about the vertical."""
        return rotate_y(self.prior.means[comp] + np.einsum("nj,nmxj->nmx", coeff, self.prior.bases[comp]),
                        self._theta[view])

    def _lift_turned(self, out: LiftResult, energy: np.ndarray, kp: np.ndarray, seen: np.ndarray,
                     lean: np.ndarray, rows: np.ndarray) -> None:
        """Lift ``rows`` again in their image turned by ``-lean`` (torso up); where that fits better,
        put its solution into ``out`` with the turn undone (2D back in the image, 3D in the level frame)."""
        visible = np.where(seen[..., None], kp, 0.0)
        centre = visible.sum(1) / seen.sum(1)[:, None]
        alt, alt_energy = self._solve(_turn_image(visible, centre, -lean), seen)
        better = np.flatnonzero(alt.valid & (alt_energy < energy[rows]))
        if not len(better):
            return
        b, dst, angle = better, rows[better], lean[better]
        undo = _undo_turn(np.radians(alt.elevation_deg[b]), angle)
        out.joints3d[dst] = np.einsum("nxy,nly->nlx", undo, alt.joints3d[b])
        out.translation[dst] = _turn_image(alt.translation[b][:, None], centre[b], angle)[:, 0]
        out.reprojected2d[dst] = _turn_image(alt.reprojected2d[b], centre[b], angle)
        for name in ("uncertainty", "cost", "component", "rotation_deg", "elevation_deg", "coefficients", "scale"):
            getattr(out, name)[dst] = getattr(alt, name)[b]
        out.roll_deg[dst] = np.degrees(angle)
        energy[dst] = alt_energy[b]

    def _solve(self, kp: np.ndarray, seen: np.ndarray) -> tuple[LiftResult, np.ndarray]:
        """The upright lift of (N,14,2) keypoints with (N,14) visibility, and each person's best
        negative log posterior (inf where not lifted)."""
        n = len(kp)
        valid = seen.sum(1) >= self.min_visible_joints
        out = _empty_result(n, self.prior.n_basis, len(self.elevations_deg))
        best_energy = np.full(n, np.inf)
        idx = np.flatnonzero(valid)
        if len(idx) == 0:
            return out, best_energy
        seen = seen[idx]
        n_vis = seen.sum(1)
        y0, centre, rms = _normalised(kp[idx], seen)

        energy = self._energy(y0, ~seen)
        out.elevation_energy[idx] = energy.reshape(len(idx), len(self.elevations_deg), -1).min(-1)
        best = np.argmin(energy, axis=1)
        plausible = np.isfinite(energy[np.arange(len(idx)), best])
        k = self.prior.n_components
        view, comp = np.divmod(best, k)
        h = np.matmul(y0[:, None], self._a[view, comp])[:, 0]               # y0 is 0 on missing rows
        ginv = self._ginv[view, comp]
        part = np.flatnonzero(~seen.all(1))
        if len(part):
            design = self._a[view[part], comp[part]] * np.repeat(seen[part], 2, axis=1)[..., None]
            ginv[part] = np.linalg.inv(np.matmul(design.transpose(0, 2, 1), design) + self._ridge[comp[part]])
        z = np.matmul(ginv, h[..., None])[..., 0]
        sb, tb, bb = z[:, 0], z[:, 1:3], z[:, 3:]
        ssq = (y0 * y0).sum(1)
        residual = ssq - (z * h).sum(1) - self._lam[comp] * (bb**2).sum(1)
        cov_a = ginv[:, 3:, 3:] * self._lam[comp][:, None, None]            # posterior cov of a
        basis = self._bases_by_k[comp]
        var = (np.matmul(basis, cov_a) * basis).sum(-1).reshape(len(idx), -1, 3).sum(-1)
        unc = np.sqrt(var + 3 * self.prior.noise[comp][:, None]) * self.prior.metric_scale
        unc[:, ROOT_INDEX] = 0.0
        with np.errstate(divide="ignore", invalid="ignore"):
            coeff = bb / sb[:, None]
        level = self._level_pose(coeff, comp, view)                           # model units
        cos_e, sin_e = np.cos(self._phi[view])[:, None], np.sin(self._phi[view])[:, None]
        points = np.einsum("lm,nmx->nlx", self._keypoint_map, level)            # the source's keypoints
        image = np.stack([points[..., 0], cos_e * points[..., 1] - sin_e * points[..., 2]], -1)
        reproj = ((sb[:, None, None] * image + tb[:, None]) * rms[:, None, None] + centre[:, None]) * [1.0, -1.0]
        root_px = (tb * rms[:, None] + centre) * [1.0, -1.0]
        level = (level - level[:, ROOT_INDEX : ROOT_INDEX + 1]) * self.prior.metric_scale

        fields = dict(joints3d=level, uncertainty=unc, component=comp, coefficients=coeff,
                      cost=residual / n_vis,
                      rotation_deg=np.degrees(self._theta[view]), elevation_deg=self._phi_deg[view],
                      scale=sb * rms / self.prior.metric_scale, translation=root_px, reprojected2d=reproj)
        for name, value in fields.items():
            getattr(out, name)[idx[plausible]] = value[plausible]
        out.valid[idx[plausible]] = True
        out.roll_deg[idx[plausible]] = 0.0
        best_energy[idx] = energy[np.arange(len(idx)), best]
        return out, best_energy


def _depth_ratio(out: LiftResult, focal: np.ndarray) -> np.ndarray:
    """(N,14): each keypoint's depth from the camera over its pelvis's (``focal / scale``), from a lift
    (1 where the person was not lifted), kept within 0.5..2: a weak-perspective guess of a body
    reaching past the camera would otherwise flip it."""
    towards = level_to_camera(out.joints3d[:, :_N2D], out.elevation_deg)[..., 2]   # z of the camera's axes
    with np.errstate(divide="ignore", invalid="ignore"):
        ratio = 1.0 - towards / (focal / out.scale)[:, None]
    ok = out.valid[:, None] & np.isfinite(ratio)
    return np.where(ok, np.clip(ratio, 0.5, 2.0), 1.0)


def _normalised(kp: np.ndarray, seen: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """(N,14,2) image keypoints (y down) as the lifter fits them: y up, centred on the visible joints'
    mean and divided by their RMS spread, missing ones zero; (N,28), with the (N,2) centre (y up) and
    (N,) spread that undo it."""
    y = np.where(seen[..., None], kp * [1.0, -1.0], 0.0)
    n_vis = seen.sum(1)
    centre = y.sum(1) / n_vis[:, None]
    rms = np.sqrt((seen * ((y - centre[:, None]) ** 2).sum(-1)).sum(1) / n_vis)
    rms = np.where(rms > 0, rms, 1.0)
    y0 = np.where(seen[..., None], (y - centre[:, None]) / rms[:, None, None], 0.0).reshape(len(kp), -1)
    return y0, centre, rms


def _turns(lean: np.ndarray) -> list[np.ndarray]:
    """The turns a person leaning by ``lean`` (radians) is lifted again in: the torso's own angle and the
    nearest quarter turn (the torso is a noisy body axis: a crawling person's hips sit low; and lying
    people mostly lie along or across the view)."""
    return [lean, np.round(lean / (np.pi / 2)) * (np.pi / 2)]


def _undo_turn(phi: np.ndarray, angle: np.ndarray) -> np.ndarray:
    """(N,3,3): a pose lifted in the image turned by ``-angle`` back into the level frame of a camera
    pitched by ``phi`` (the image's turn is a turn of the camera frame about its optical axis)."""
    return np.swapaxes(_rot_x(phi), -1, -2) @ _rot_z(-angle) @ _rot_x(phi)


def _empty_result(n: int, n_basis: int, n_elevations: int = 1) -> LiftResult:
    nan = lambda *shape: np.full(shape, np.nan)  # noqa: E731
    return LiftResult(
        joints3d=nan(n, len(JOINTS3D), 3), joint_names=list(JOINTS3D), valid=np.zeros(n, bool),
        uncertainty=nan(n, len(JOINTS3D)), cost=nan(n), component=np.full(n, -1),
        rotation_deg=nan(n), elevation_deg=nan(n), coefficients=nan(n, n_basis), scale=nan(n),
        translation=nan(n, 2), reprojected2d=nan(n, _N2D, 2), elevation_energy=nan(n, n_elevations),
        roll_deg=nan(n))
