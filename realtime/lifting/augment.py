"""Training-pose augmentation for the prior: the arms (or legs) of one mocap pose on the body of another.

Why: the CMU clips here are mostly walking, running and climbing, where each arm's swing is tied to
the legs and to the other arm (one forward, one back). A mixture of a few Gaussians learns that
coupling, and the depth of a limb is what a single view leaves most ambiguous, so a person reaching
towards the camera with both hands (a greeting, a lunge) was lifted with one arm in front and one
behind. Recombining limbs and bodies across poses, and copying one limb mirrored onto the other
side, keeps every limb configuration a person was recorded in but breaks those couplings.

Limbs move in the body's own frame (across the shoulders or hips, up the spine, forward), so a reach
stays a reach on a body that leans or turns; each pose keeps its own bone lengths.
"""
from __future__ import annotations

import numpy as np

from realtime.skeleton import JOINTS3D

_I = JOINTS3D.index
#: Each limb kind: (its right and left chains (root, middle, end), the joints whose right-to-left line
#: is the frame's "across" axis).
LIMBS: dict[str, tuple[tuple[tuple[int, int, int], ...], tuple[int, int]]] = {
    "arms": (((_I("r_shoulder"), _I("r_elbow"), _I("r_wrist")), (_I("l_shoulder"), _I("l_elbow"), _I("l_wrist"))),
             (_I("r_shoulder"), _I("l_shoulder"))),
    "legs": (((_I("r_hip"), _I("r_knee"), _I("r_ankle")), (_I("l_hip"), _I("l_knee"), _I("l_ankle"))),
             (_I("r_hip"), _I("l_hip"))),
}


def body_frames(poses: np.ndarray, right: int, left: int) -> np.ndarray:
    """(N,3,3) rotations whose rows are each pose's body axes in world coordinates: across (joint
    ``right`` to joint ``left``), up (pelvis to thorax, made orthogonal to across) and forward (their
    cross product: the way the body faces)."""
    across = poses[:, left] - poses[:, right]
    across /= np.linalg.norm(across, axis=-1, keepdims=True)
    up = poses[:, _I("thorax")] - poses[:, _I("pelvis")]
    up -= (up * across).sum(-1, keepdims=True) * across
    up /= np.linalg.norm(up, axis=-1, keepdims=True)
    return np.stack([across, up, np.cross(across, up)], axis=1)


def _directions(poses: np.ndarray, frames: np.ndarray, chain: tuple[int, int, int]) -> np.ndarray:
    """(N,2,3) unit directions of a chain's two bones, in body coordinates."""
    a, b, c = chain
    bones = np.stack([poses[:, b] - poses[:, a], poses[:, c] - poses[:, b]], axis=1)
    bones /= np.linalg.norm(bones, axis=-1, keepdims=True)
    return np.einsum("nij,nbj->nbi", frames, bones)


def recombine(poses: np.ndarray, count: int, rng: np.random.Generator, limbs: str = "arms",
              mirrored: float = 0.5) -> np.ndarray:
    """``count`` new poses (count,16,3), each a random pose of ``poses`` with the ``limbs`` ("arms" or
    "legs") of another.

    With probability ``mirrored`` both limbs copy one limb of the donor, the other side mirrored
    (both hands reach alike); otherwise the donor's two limbs are taken as they are. Bone directions
    are carried in body coordinates; lengths and limb roots stay the body's.
    """
    poses = np.asarray(poses, np.float64)
    if count <= 0 or len(poses) == 0:
        return np.empty((0,) + poses.shape[1:])
    chains, (right, left) = LIMBS[limbs]
    body = poses[rng.integers(len(poses), size=count)]
    donor = poses[rng.integers(len(poses), size=count)]
    body_axes, donor_axes = body_frames(body, right, left), body_frames(donor, right, left)
    dirs = np.stack([_directions(donor, donor_axes, chain) for chain in chains], axis=1)  # (n,2,2,3)
    copy = rng.random(count) < mirrored
    source = rng.integers(2, size=count)
    for side in (0, 1):
        mirror = dirs[copy, source[copy]].copy()
        mirror[..., 0] *= np.where(source[copy] == side, 1.0, -1.0)[:, None]
        dirs[copy, side] = mirror
    out = body.copy()
    for side, (a, b, c) in enumerate(chains):
        world = np.einsum("nij,nbi->nbj", body_axes, dirs[:, side])      # back to world coordinates
        first = np.linalg.norm(body[:, b] - body[:, a], axis=-1, keepdims=True)
        second = np.linalg.norm(body[:, c] - body[:, b], axis=-1, keepdims=True)
        out[:, b] = body[:, a] + first * world[:, 0]
        out[:, c] = out[:, b] + second * world[:, 1]
    return out


def seated(poses: np.ndarray, count: int, rng: np.random.Generator, on_floor: float = 0.3) -> np.ndarray:
    """``count`` new poses (count,16,3): random poses of ``poses`` sat down, the upper body as recorded.

    Why: no clip here sits (CMU's stool and chair clips are not among them), yet people in photos and
    on video often do. Each thigh turns forward from hanging down by 65-105 degrees (a chair) and the
    shin hangs from the knee within -25..35 degrees of straight down; with probability ``on_floor``
    the person sits on the floor instead, legs out in front (thigh 75-100 degrees, the shin within
    15 degrees of the thigh). Each leg also swings 0-15 degrees outwards and varies on its own. Angles
    are in the body's own frame (across the hips, up the spine, forward), bone lengths the pose's own.
    """
    poses = np.asarray(poses, np.float64)
    if count <= 0 or len(poses) == 0:
        return np.empty((0,) + poses.shape[1:])
    chains, (right, left) = LIMBS["legs"]
    body = poses[rng.integers(len(poses), size=count)]
    axes = body_frames(body, right, left)                                  # rows: across, up, forward
    floor = rng.random(count) < on_floor
    thigh_base = np.where(floor, rng.uniform(75, 100, count), rng.uniform(65, 105, count))
    out = body.copy()
    for side, (a, b, c) in enumerate(chains):
        thigh = np.radians(thigh_base + rng.normal(0, 8, count))
        shin = np.radians(np.where(floor, np.degrees(thigh) + rng.uniform(-15, 15, count), rng.uniform(-25, 35, count)))
        spread = np.radians(rng.uniform(0, 15, count)) * (-1.0 if side == 0 else 1.0)  # right leg: -across
        dirs = np.stack([_bone(thigh, spread), _bone(shin, spread)], axis=1)     # (n,2,3) body coordinates
        world = np.einsum("nij,nbi->nbj", axes, dirs)
        first = np.linalg.norm(body[:, b] - body[:, a], axis=-1, keepdims=True)
        second = np.linalg.norm(body[:, c] - body[:, b], axis=-1, keepdims=True)
        out[:, b] = body[:, a] + first * world[:, 0]
        out[:, c] = out[:, b] + second * world[:, 1]
    return out


def _bone(forward: np.ndarray, spread: np.ndarray) -> np.ndarray:
    """(n,3) unit bone directions in body coordinates (across, up, forward): turned ``forward`` radians
    from straight down towards the front, then ``spread`` radians towards ``across``."""
    down = np.stack([np.zeros_like(forward), -np.cos(forward), np.sin(forward)], -1)
    return np.cos(spread)[:, None] * down + np.sin(spread)[:, None] * np.array([1.0, 0.0, 0.0])
