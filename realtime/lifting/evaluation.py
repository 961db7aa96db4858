"""Synthetic 2D views of mocap poses, held-out clips and 3D error metrics, shared by training,
benchmark and tests.

Poses are seen by random perspective cameras (azimuth all round, a pitch range, varied focal
lengths and distances); the ground truth is returned in the same level camera frame the lifter
outputs (pelvis-relative, y up, rotated only about the vertical).
"""
from __future__ import annotations

from dataclasses import dataclass, replace
from pathlib import Path
from typing import TYPE_CHECKING, Sequence

import numpy as np

from realtime.lifting.prior import ROOT_INDEX, bone_sum_squares, rotate_y
from realtime.skeleton import JOINTS3D, LSP14

if TYPE_CHECKING:
    from realtime.lifting.prior import PosePrior
    from realtime.mocap.dataset import Dataset

_N2D = len(LSP14)
#: The 14 LSP joints (the first 14 of JOINTS3D): the mocap benchmark's scored set.
LSP_JOINTS: tuple[int, ...] = tuple(range(_N2D))
_STATURE_CHAIN = [("head_top", "neck"), ("neck", "thorax"), ("thorax", "pelvis")]
_LEGS = [("r_hip", "r_knee"), ("r_knee", "r_ankle"), ("l_hip", "l_knee"), ("l_knee", "l_ankle")]


def stature(poses: np.ndarray) -> np.ndarray:
    """Pose-independent height (m): head-to-pelvis chain plus mean leg length, (N,)."""
    seg = lambda a, b: np.linalg.norm(poses[:, JOINTS3D.index(a)] - poses[:, JOINTS3D.index(b)], axis=-1)  # noqa: E731
    return sum(seg(a, b) for a, b in _STATURE_CHAIN) + 0.5 * sum(seg(a, b) for a, b in _LEGS)


@dataclass(frozen=True)
class Views:
    keypoints2d: np.ndarray   # (N,14,2) px, image y down
    confidence: np.ndarray    # (N,14)
    truth: np.ndarray         # (N,16,3) m, pelvis-relative, level camera frame
    elevation_deg: np.ndarray  # (N,)
    height_px: np.ndarray     # (N,)
    focal_px: np.ndarray      # (N,) the camera's focal length
    centre_px: np.ndarray     # (2,) its principal point (the image centre)

    def camera(self) -> dict[str, np.ndarray]:
        """The cameras as ``Lifter.lift``'s perspective arguments."""
        return {"focal_px": self.focal_px, "centre_px": self.centre_px}


def random_views(poses: np.ndarray, rng: np.random.Generator, elevation_deg: tuple[float, float] = (-20.0, 40.0),
                 focal_px: tuple[float, float] = (500.0, 2000.0), height_px: tuple[float, float] = (150.0, 600.0),
                 image_size: tuple[int, int] = (1920, 1080), elevation_step: float = 0.0) -> Views:
    """Project (N,16,3) metre poses with one random perspective camera each.

    ``elevation_step`` > 0 rounds pitches to its multiples, so a known-pitch lifter can be built per pitch.
    """
    n = len(poses)
    centred = poses - poses[:, ROOT_INDEX : ROOT_INDEX + 1]
    level = rotate_y(centred, rng.uniform(0, 2 * np.pi, n))
    elevation = rng.uniform(*elevation_deg, n)
    phi = np.radians(np.round(elevation / elevation_step) * elevation_step if elevation_step else elevation)
    f = rng.uniform(*focal_px, n)
    tall = stature(poses)
    dist = f * tall / rng.uniform(*height_px, n)
    c, s = np.cos(phi)[:, None], np.sin(phi)[:, None]
    cam = level.copy()
    cam[..., 1] = c * level[..., 1] - s * level[..., 2]
    cam[..., 2] = s * level[..., 1] + c * level[..., 2]
    offset = rng.uniform(-0.1, 0.1, (n, 2)) * dist[:, None]
    depth = dist[:, None] - cam[..., 2]
    u = image_size[0] / 2 + f[:, None] * (cam[..., 0] + offset[:, :1]) / depth
    v = image_size[1] / 2 - f[:, None] * (cam[..., 1] + offset[:, 1:]) / depth
    kp = np.stack([u, v], -1)[:, :_N2D]
    return Views(kp, np.ones((n, _N2D)), level, np.degrees(phi), f * tall / dist, f,
                 np.array(image_size, np.float64) / 2)


def add_noise(views: Views, fraction: float, rng: np.random.Generator) -> Views:
    """Gaussian 2D noise with std ``fraction`` of each person's height in pixels."""
    noise = rng.normal(size=views.keypoints2d.shape) * (fraction * views.height_px)[:, None, None]
    return replace(views, keypoints2d=views.keypoints2d + noise)


def drop_joints(views: Views, count: int, rng: np.random.Generator) -> Views:
    """Mark ``count`` random joints per person missing (confidence 0, coordinates garbage)."""
    n = len(views.keypoints2d)
    missing = np.argsort(rng.random((n, _N2D)), axis=1)[:, :count]
    conf = views.confidence.copy()
    kp = views.keypoints2d.copy()
    rows = np.arange(n)[:, None]
    conf[rows, missing] = 0.0
    kp[rows, missing] = rng.uniform(-5000, 5000, (n, count, 2))
    return replace(views, keypoints2d=kp, confidence=conf)


def _scale_to_truth(pred: np.ndarray, truth: np.ndarray) -> np.ndarray:
    """Scale each prediction so its limb-length size matches the truth's (the metric 'true height')."""
    return pred * np.sqrt(bone_sum_squares(truth) / bone_sum_squares(pred))[:, None, None]


def mpjpe(pred: np.ndarray, truth: np.ndarray, joints: Sequence[int] = LSP_JOINTS,
          rescale: bool = True) -> np.ndarray:
    """Mean per-joint position error (m) over ``joints`` (default the 14 LSP joints), pelvis-relative;
    ``rescale`` first scales each prediction to the truth's size (else the prior's own metric size)."""
    pred = pred - pred[:, ROOT_INDEX : ROOT_INDEX + 1]
    truth = truth - truth[:, ROOT_INDEX : ROOT_INDEX + 1]
    if rescale:
        pred = _scale_to_truth(pred, truth)
    joints = list(joints)
    return np.linalg.norm(pred[:, joints] - truth[:, joints], axis=-1).mean(1)


def pa_mpjpe(pred: np.ndarray, truth: np.ndarray, joints: Sequence[int] = LSP_JOINTS) -> np.ndarray:
    """MPJPE (m) over ``joints`` (default the 14 LSP joints) after Procrustes alignment (rotation,
    scale, translation)."""
    joints = list(joints)
    p = pred[:, joints] - pred[:, joints].mean(1, keepdims=True)
    t = truth[:, joints] - truth[:, joints].mean(1, keepdims=True)
    u, sv, vt = np.linalg.svd(np.einsum("nlx,nly->nxy", p, t))
    d = np.sign(np.linalg.det(u @ vt))
    sv[:, -1] *= d
    u[:, :, -1] *= d[:, None]
    rot = u @ vt
    scale = sv.sum(1) / (p**2).sum((1, 2))
    aligned = scale[:, None, None] * np.einsum("nlx,nxy->nly", p, rot)
    return np.linalg.norm(aligned - t, axis=-1).mean(1)


def _trained_subjects(prior: "PosePrior") -> set[str]:
    """The subjects ``prior`` was fitted on (``prior.info["subjects"]``, as ``subject_key`` writes
    them); empty for a prior without that record."""
    from realtime.mocap.dataset import subject_key

    return {subject_key(s) for s in prior.info.get("subjects") or ()}


#: The shipped prior's setting fitted on the shared CMU set's train + val subjects only
#: (``tools/train_prior.py --final train+val``): the shipped prior (``--final all``) has seen every
#: shared subject, so held-out numbers on that set are this one's. In a checkout, not in the wheel.
HELD_OUT_PRIOR = Path(__file__).resolve().parents[2] / "engines" / "pose_prior_heldout.npz"


def prior_for_scoring(root: str | Path, prior: "PosePrior", fallback: str | Path = HELD_OUT_PRIOR) -> "PosePrior":
    """The prior to score the mocap under ``root`` with: ``prior``, unless it was trained on every
    subject there (the shipped prior on the shared CMU set); then the prior at ``fallback``, fitted
    without the test subjects. A folder of other subjects keeps ``prior``: the shipped one is what
    a user lifts with."""
    from realtime.lifting.prior import PosePrior
    from realtime.mocap.dataset import MocapError, clip_id, find_clips, subject_key

    trained = _trained_subjects(prior)
    subjects = set()
    for path in find_clips(root):
        try:
            subjects.add(subject_key(clip_id(path)[0]))
        except MocapError:
            continue
    if trained and subjects and subjects <= trained and Path(fallback).exists():
        return PosePrior.load(fallback)
    return prior


def held_out(root: str | Path, prior: "PosePrior", fps: float | None = 10.0, progress: bool = False) -> "Dataset":
    """The clips under ``root`` of subjects ``prior`` never saw: not among its training subjects
    (``prior.info["subjects"]``; a prior without that record: CMU's fixed test split). On the shared
    CMU folder these are its test subjects; a folder of other subjects is held out whole. Raises
    ``ValueError`` naming the folder when none is readable."""
    from realtime.mocap.dataset import Dataset, load_dataset, subject_key

    seen = _trained_subjects(prior)
    whole = load_dataset(root, fps=fps, split=None if seen else "test", progress=progress)
    clips = [c for c in whole.clips if subject_key(c.subject) not in seen]
    if not clips:
        raise ValueError(f"{root}: no readable clips of subjects the prior was not trained on "
                         f"({len(whole.clips)} clips read, {len(whole.skipped)} skipped)")
    return Dataset(clips, whole.skipped)
