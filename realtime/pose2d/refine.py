"""The paper's 3D -> 2D feedback (Tome et al. 2017, 5.4-5.5) on a pretrained CPM's belief maps.

The 2D pose decoded from the CPM's maps is lifted to the most probable 3D pose under the pose
prior; that pose, projected back into each crop, is drawn as Gaussian *projected pose belief maps*
and fused with the CNN's maps, ``b = (1 - w) cpm + w projected`` (5.5), before decoding again.
Where the CPM has several candidate peaks for a joint the fusion favours the one the plausible 3D
pose agrees with (fitted to all joints, that pose tends to follow a strong wrong peak itself; see
``BeliefRefiner.project`` for the leave-one-out variant); where the CPM finds nothing the projection
fills the joint in.

The paper learns w end to end inside a CPM it trains; our CPM is pretrained and frozen, so w is a
hyperparameter (chosen on a validation split, see ``tools/bench_2d.py --refine``) and the fusion
runs after the last stage instead of between stages.

Confidences come from the fused maps: a joint the CPM found where the 3D pose agrees keeps about
``(1 - w) c + w``; a joint filled in from the projection alone (CPM belief ~0 there) gets about
``w`` (the projected map's peak is 1), so filled joints are always marked by a confidence of at
most ``w`` plus what little the CPM believed.
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING, Sequence

import numpy as np

from realtime.pose2d.crops import Crop
from realtime.pose2d.decode import peak_pixels, pixel_values, subpixel_peaks
from realtime.skeleton import turn_matrix

if TYPE_CHECKING:
    from realtime.lifting import Lifter, LiftResult, PosePrior

#: Width of the CPM's own peaks in belief-map pixels: the median curvature of the log-belief at
#: confident peaks on the annotated images is that of a Gaussian with sigma 1.9.
CPM_SIGMA = 2.0
#: The feedback needs a plausible reprojection, not the best 3D pose: 24 ground-plane rotations at
#: one camera elevation (between level photos and CCTV looking down) give the same PCK on the
#: annotated images as the lifter's default 80 x 5 views (tools/bench_2d.py --refine), with a
#: sixteenth of the views to score (`tools/bench_lifting.py --part stream` times this lifter).
ROTATIONS = 24
ELEVATIONS_DEG = (10.0,)


@dataclass(frozen=True)
class Refined:
    """Keypoints in belief-map pixels and confidences after fusion, and which people were lifted."""

    keypoints: np.ndarray       # (N, J, 2) x, y in map pixels
    confidence: np.ndarray      # (N, J) from the fused maps
    cpm_confidence: np.ndarray  # (N, J) the CPM's own peak beliefs: the image evidence alone
    lifted: np.ndarray          # (N,) bool: the 3D pose was valid, so the maps were fused
    #: The last lift of all seen joints (image pixels in), or None when nothing was lifted: the
    #: people's 3D poses, so that the lifting workers need not lift them again.
    lift: "LiftResult | None" = None


@dataclass(frozen=True)
class BeliefRefiner:
    """Fuses projected 3D pose belief maps into a batch of CPM belief maps (paper 5.4-5.5)."""

    lifter: "Lifter"
    #: Fusion weight of the projected maps: a scalar or one per joint, in [0, 1].
    weight: float | np.ndarray = 0.3
    #: Gaussian sigma of the projected maps, in belief-map pixels.
    sigma: float = CPM_SIGMA
    #: Lift -> project -> fuse rounds; each lifts the previous round's fused keypoints.
    iterations: int = 1
    #: Project each seen joint from a lift of the *other* joints (see ``project``).
    leave_one_out: bool = False

    def __post_init__(self) -> None:
        w = np.asarray(self.weight, np.float64)
        if w.ndim > 1 or not np.all((w >= 0) & (w <= 1)):
            raise ValueError(f"refine weight: must be a scalar or per-joint vector in [0, 1], got {self.weight!r}")
        if not self.sigma > 0:
            raise ValueError(f"refine sigma: must be > 0 belief-map pixels, got {self.sigma!r}")
        if self.iterations < 1:
            raise ValueError(f"refine iterations: must be >= 1, got {self.iterations!r}")

    @classmethod
    def create(cls, prior: "PosePrior | None" = None, weight: float | np.ndarray = 0.3, sigma: float = CPM_SIGMA,
               iterations: int = 1, leave_one_out: bool = False) -> "BeliefRefiner":
        """A standalone refiner with its own light lifter (see ``ROTATIONS``) on ``prior`` (None = the
        committed default), for studies and tests. The pipeline's refiners lift with the lifting workers'
        lifter instead (``PoseEstimator2D.refiner``), so that each person is lifted once."""
        from realtime.lifting import Lifter, PosePrior

        lifter = Lifter(prior or PosePrior.load(), rotations=ROTATIONS, elevations_deg=ELEVATIONS_DEG)
        return cls(lifter, weight, sigma, iterations, leave_one_out)

    def project(self, keypoints: np.ndarray, seen: np.ndarray, lens: dict[str, np.ndarray] | None = None
                ) -> tuple[np.ndarray, np.ndarray, "LiftResult"]:
        """Where the most probable 3D pose puts each joint: ``(N, J, 2)`` image pixels and ``(N, J)``
        whether that joint has a projection (its lift was valid); and the lift of all seen joints.
        ``lens``: each person's camera as ``Lifter.lift``'s perspective arguments, ``focal_px`` (N,)
        and ``centre_px`` (N, 2) (None: weak perspective).

        The paper lifts all joints at once. With a frozen CPM that projection follows a wrong joint
        (the lift trusts every seen joint, and the prior is flexible enough to reach it), so the
        fusion would only confirm the mistake. Leaving the joint out of its own lift makes its
        projection the prediction of the *other* joints under the prior; a missing joint is already
        left out by the one lift of all seen joints.
        """
        base = self.lifter.lift(keypoints, seen.astype(np.float64), **(lens or {}))
        projected, has = base.reprojected2d.copy(), np.repeat(base.valid[:, None], seen.shape[1], axis=1)
        if not self.leave_one_out:
            return projected, has, base
        person, joint = np.nonzero(seen & base.valid[:, None])
        if len(person):
            weights = seen[person].astype(np.float64)
            weights[np.arange(len(person)), joint] = 0.0
            out = self.lifter.lift(keypoints[person], weights,
                                   **{k: np.asarray(v)[person] for k, v in (lens or {}).items()})
            projected[person, joint] = out.reprojected2d[np.arange(len(person)), joint]
            has[person, joint] = out.valid
        return projected, has, base

    def refine(self, maps: np.ndarray, crops: Sequence[Crop], threshold: float = 0.0,
               keypoints: np.ndarray | None = None, confidence: np.ndarray | None = None,
               has_map: np.ndarray | None = None, lens: dict[str, np.ndarray] | None = None) -> Refined:
        """Fuse and decode ``(N, H, W, J)`` belief maps of ``crops`` (one per map, all of one size).

        By default the network's 2D pose is the maps' own peaks (the CPM). A network that decodes
        its maps its own way (MoveNet: arg-max near a regressed position, plus an offset) passes its
        ``keypoints`` (map pixels) and ``confidence`` instead: a joint keeps that position unless
        the fusion moves its peak to another pixel. Joints without a map (``has_map`` False: derived
        ones) are left as they are. ``lens``: the crops' cameras, as :meth:`project` takes them.
        """
        maps = np.asarray(maps, np.float32)
        if maps.ndim != 4:
            raise ValueError(f"refine: belief maps must be (N, H, W, J), got shape {maps.shape}")
        n, h, w, j = maps.shape
        if len(crops) != n:
            raise ValueError(f"refine: {n} belief maps but {len(crops)} crops")
        own = keypoints is not None
        if own:
            own_keypoints = np.asarray(keypoints, np.float64)
            cpm_confidence = np.asarray(confidence, np.float32)
            cpm_px = np.clip(np.rint(own_keypoints[..., 0]).astype(int), 0, w - 1)
            cpm_py = np.clip(np.rint(own_keypoints[..., 1]).astype(int), 0, h - 1)
            keypoints = own_keypoints
        else:
            cpm_py, cpm_px = peak_pixels(maps)
            keypoints, cpm_confidence = subpixel_peaks(lambda y, x: pixel_values(maps, y, x), cpm_py, cpm_px,
                                                       (h, w), threshold)
        mapped = np.ones(j, bool) if has_map is None else np.asarray(has_map, bool)
        confidence = cpm_confidence
        lifted = np.zeros(n, bool)
        if n == 0 or not np.any(self.weight) or not mapped.any():
            return Refined(keypoints, confidence, cpm_confidence, lifted)
        to_map = _MapFrame(crops, h)
        weight = np.broadcast_to(np.asarray(self.weight, np.float32), (j,)) * mapped
        lift = None
        for _ in range(self.iterations):
            projected, has, lift = self.project(to_map.to_image(keypoints), confidence > 0, lens)
            lifted = has.any(axis=1)
            if not lifted.any():
                break
            projected = np.where(has[..., None], to_map.from_image(projected, np.ones(n, bool)), keypoints)
            fusion = _Fusion(maps, projected, np.where(has, weight, np.float32(0)), self.sigma)
            py, px = fusion.peak_pixels(cpm_py, cpm_px)
            fused_keypoints, fused_confidence = subpixel_peaks(fusion.value, py, px, (h, w), threshold)
            if own:
                stays = (py == cpm_py) & (px == cpm_px)
                fused_keypoints = np.where(stays[..., None], own_keypoints, fused_keypoints)
            fused_keypoints = np.where(mapped[None, :, None], fused_keypoints, keypoints)
            fused_confidence = np.where(mapped[None, :], fused_confidence, confidence)
            keypoints = np.where(lifted[:, None, None], fused_keypoints, keypoints)
            confidence = np.where(lifted[:, None], fused_confidence, confidence)
        return Refined(keypoints, confidence, cpm_confidence, lifted, lift)


class _Fusion:
    """The fused maps ``(1 - w) cpm + w projected``, evaluated only where they can peak.

    Beyond ``3 sigma`` of its centre a projected map is below 1 % of its height, so a fused map's
    maximum is either within that window around the projected joint or (up to that 1 % of w) the
    CPM's own maximum: comparing the two costs ~170 pixels per joint instead of the whole map.
    """

    def __init__(self, maps: np.ndarray, projected: np.ndarray, weight: np.ndarray, sigma: float):
        self.maps = maps
        self.x, self.y = projected[..., 0], projected[..., 1]
        self.w = weight.astype(np.float32)
        self.two_var = 2.0 * sigma ** 2
        self.radius = int(np.ceil(3.0 * sigma))

    def value(self, y: np.ndarray, x: np.ndarray) -> np.ndarray:
        g = np.exp(-((x - self.x) ** 2 + (y - self.y) ** 2) / self.two_var)
        return ((1.0 - self.w) * pixel_values(self.maps, y, x) + self.w * g).astype(np.float32)

    def peak_pixels(self, cpm_py: np.ndarray, cpm_px: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        n, h, w, j = self.maps.shape
        offsets = np.arange(-self.radius, self.radius + 1)
        ys = np.clip(np.rint(self.y).astype(int)[..., None] + offsets, 0, h - 1)        # (N, J, S)
        xs = np.clip(np.rint(self.x).astype(int)[..., None] + offsets, 0, w - 1)
        patch = self.maps[np.arange(n)[:, None, None, None], ys[..., :, None], xs[..., None, :],
                          np.arange(j)[None, :, None, None]]                                # (N, J, S, S)
        gy = np.exp(-(ys - self.y[..., None]) ** 2 / self.two_var)
        gx = np.exp(-(xs - self.x[..., None]) ** 2 / self.two_var)
        w_ = self.w[..., None, None]
        fused = ((1.0 - w_) * patch + w_ * (gy[..., :, None] * gx[..., None, :])).reshape(n, j, -1)
        best = fused.argmax(axis=2)
        by, bx = np.divmod(best, len(offsets))
        window_y = np.take_along_axis(ys, by[..., None], axis=2)[..., 0]
        window_x = np.take_along_axis(xs, bx[..., None], axis=2)[..., 0]
        at_cpm_peak = self.value(cpm_py, cpm_px) >= np.take_along_axis(fused, best[..., None], axis=2)[..., 0]
        return np.where(at_cpm_peak, cpm_py, window_y), np.where(at_cpm_peak, cpm_px, window_x)


def gaussian_maps(points: np.ndarray, height: int, width: int, sigma: float) -> np.ndarray:
    """``(N, H, W, J)`` maps with a unit-height Gaussian at each of ``points (N, J, 2)`` (map pixels).

    Separable: the outer product of one row and one column profile per joint, so the cost is one
    multiply per map pixel.
    """
    points = np.asarray(points, np.float32)
    xs = np.arange(width, dtype=np.float32)
    ys = np.arange(height, dtype=np.float32)
    gx = np.exp(-(xs - points[..., 0:1]) ** 2 / np.float32(2 * sigma ** 2))   # (N, J, W)
    gy = np.exp(-(ys - points[..., 1:2]) ** 2 / np.float32(2 * sigma ** 2))   # (N, J, H)
    return gy.transpose(0, 2, 1)[:, :, None, :] * gx.transpose(0, 2, 1)[:, None, :, :]


class _MapFrame:
    """Belief-map pixels <-> image pixels for a batch of square crops (vectorised ``Crop`` maths, turns
    included)."""

    def __init__(self, crops: Sequence[Crop], map_size: int):
        size = crops[0].size
        self.centre = np.array([c.centre for c in crops], np.float64)[:, None, :]      # (N, 1, 2)
        self.k = (np.array([c.side for c in crops], np.float64) / size)[:, None, None]  # image px per crop px
        self.turn = turn_matrix(np.array([c.angle for c in crops], np.float64))       # (N,2,2), as Crop's
        self.stride = size / map_size
        self.half = size / 2.0 - 0.5

    def to_image(self, points: np.ndarray) -> np.ndarray:
        crop = (points + 0.5) * self.stride - 0.5
        return np.matmul((crop - self.half) * self.k, self.turn) + self.centre

    def from_image(self, points: np.ndarray, rows: np.ndarray) -> np.ndarray:
        local = np.matmul(points - self.centre[rows], np.swapaxes(self.turn[rows], -1, -2))
        crop = local / self.k[rows] + self.half
        return (crop + 0.5) / self.stride - 0.5
