"""Vectorised rotations and forward kinematics over all frames of a clip at once.

Mocap skeletons are small trees (30-60 joints) with long motions (thousands of frames), so the
loop runs over joints and every step is one batched matrix product over frames.
"""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from scipy.spatial.transform import Rotation


def euler_matrices(angles_deg: np.ndarray, order: str) -> np.ndarray:
    """(T, 3, 3) rotations ``R = R_order[0] @ R_order[1] @ ...`` (intrinsic axes, BVH style).

    ``order`` is e.g. "ZXY" and ``angles_deg[:, k]`` is the angle about axis ``order[k]``.
    """
    return Rotation.from_euler(order.upper(), angles_deg, degrees=True).as_matrix()


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
