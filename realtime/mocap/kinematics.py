"""Vectorised rotations and forward kinematics over all frames of a clip at once.

Mocap skeletons are small trees (30-60 joints) with long motions (thousands of frames), so the
loop runs over joints and every step is one batched matrix product over frames.
"""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np


def axis_matrices(angles_deg: np.ndarray, axis: str) -> np.ndarray:
    """(T, 3, 3) rotations by ``angles_deg`` (T,) about the x, y or z axis (right-handed)."""
    t = np.radians(angles_deg)
    c, s = np.cos(t), np.sin(t)
    out = np.zeros((len(t), 3, 3))
    i, j = {"X": (1, 2), "Y": (2, 0), "Z": (0, 1)}[axis.upper()]
    k = 3 - i - j
    out[:, k, k] = 1.0
    out[:, i, i] = c
    out[:, j, j] = c
    out[:, i, j] = -s
    out[:, j, i] = s
    return out


def euler_matrices(angles_deg: np.ndarray, order: str) -> np.ndarray:
    """(T, 3, 3) rotations ``R = R_order[0] @ R_order[1] @ ...`` (intrinsic axes, BVH style).

    ``order`` is e.g. "ZXY" and ``angles_deg[:, k]`` is the angle about axis ``order[k]``.
    Written out rather than with scipy's ``Rotation.from_euler`` because that was the largest
    cost of loading a clip (16 ms per joint for 5,000 frames, against 1 ms here).
    """
    angles_deg = np.asarray(angles_deg, dtype=np.float64).reshape(len(angles_deg), -1)
    out = np.broadcast_to(np.eye(3), (len(angles_deg), 3, 3))
    for k, axis in enumerate(order):
        out = out @ axis_matrices(angles_deg[:, k], axis)
    return np.array(out)


@dataclass(frozen=True)
class Motion:
    """Positions of every named point of a mocap skeleton, as read from one file (no mapping yet).

    Point names are the file's own joint names; the end of a joint's last bone (a BVH
    "End Site", an ASF bone's end) is named ``"<joint>/end"``.
    """

    names: tuple[str, ...]
    positions: np.ndarray  # (T, K, 3) float64 in the file's length unit, y up, world frame as recorded
    fps: float
    #: Metres per file unit when the file says (ASF ``:units``); None for BVH, which has no units.
    metres_per_unit: float | None = None


def forward_kinematics(frames: int, parents: list[int], offsets: np.ndarray,
                       rotations: list[np.ndarray | None], translations: dict[int, np.ndarray],
                       ends: list[tuple[int, np.ndarray]]) -> np.ndarray:
    """World positions (T, J + E, 3) of J joints and E end points.

    ``parents[j] < j`` (file order is topological), -1 for the root. Joint j sits at
    ``P[parent] + G[parent] @ (offsets[j] + translations[j])`` (translations default to 0) and
    turns by its local rotation ``rotations[j]`` (None = fixed): ``G[j] = G[parent] @ rotations[j]``.
    End point ``(j, v)`` sits at ``P[j] + G[j] @ v``.
    """
    out = np.empty((frames, len(parents) + len(ends), 3))
    world: list[np.ndarray] = []
    identity = np.broadcast_to(np.eye(3), (frames, 3, 3))
    for j, p in enumerate(parents):
        offset = np.broadcast_to(offsets[j] + translations.get(j, 0.0), (frames, 3))
        parent_rot = identity if p < 0 else world[p]
        out[:, j] = offset if p < 0 else out[:, p] + np.einsum("tij,tj->ti", parent_rot, offset)
        local = rotations[j]
        world.append(parent_rot if local is None else np.matmul(parent_rot, local))
    for e, (j, v) in enumerate(ends):
        out[:, len(parents) + e] = out[:, j] + world[j] @ v
    return out
