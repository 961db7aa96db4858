"""BVH export: the humanoid's hierarchy and per-frame rotations, as animation tools import them.

The rest pose is the rig's normalised T-pose (offsets along the world axes, zero rotations), so
each joint's BVH rotation is exactly the rig's local rotation. Axes are the wire's (right-handed,
y up, metres): Blender's BVH importer's defaults (up Y, forward -Z) turn that into its z-up
world. Rotation channels are ``Zrotation Xrotation Yrotation`` (R = Rz Rx Ry, degrees), the
order most BVH tools write.
"""
from __future__ import annotations

from pathlib import Path

import numpy as np
from scipy.spatial.transform import Rotation

from realtime.rig import BONE_PARENTS, BONES, BonePose, HumanoidRig

ROTATION_CHANNELS = "Zrotation Xrotation Yrotation"


def bvh_text(rig: HumanoidRig, poses: list[BonePose], frame_time: float) -> str:
    """The BVH file for a sequence of poses of one rig."""
    if not poses:
        raise ValueError("BVH needs at least one frame")
    offsets, tails = rig.bone_offsets, rig.bone_tails
    children = {i: [c for c, p in enumerate(BONE_PARENTS) if p == i] for i in range(len(BONES))}
    lines = ["HIERARCHY"]

    def joint(i: int, depth: int) -> None:
        pad = "  " * depth
        lines.append(f"{pad}{'ROOT' if depth == 0 else 'JOINT'} {BONES[i]}")
        lines.append(pad + "{")
        lines.append(f"{pad}  OFFSET {_vec(offsets[i])}")
        channels = f"6 Xposition Yposition Zposition {ROTATION_CHANNELS}" if depth == 0 else f"3 {ROTATION_CHANNELS}"
        lines.append(f"{pad}  CHANNELS {channels}")
        for c in children[i]:
            joint(c, depth + 1)
        if not children[i]:
            lines.extend([f"{pad}  End Site", pad + "  {", f"{pad}    OFFSET {_vec(tails[i])}", pad + "  }"])
        lines.append(pad + "}")

    joint(0, 0)
    order = _depth_first(children)
    rotations = np.stack([p.rotations for p in poses])[:, order]
    euler = Rotation.from_quat(rotations.reshape(-1, 4)).as_euler("ZXY", degrees=True).reshape(len(poses), -1)
    roots = np.stack([p.root for p in poses])
    lines += ["MOTION", f"Frames: {len(poses)}", f"Frame Time: {frame_time:.6f}"]
    lines += [_vec(np.concatenate([r, e])) for r, e in zip(roots, euler)]
    return "\n".join(lines) + "\n"


def write_bvh(path: str | Path, rig: HumanoidRig, poses: list[BonePose], frame_time: float) -> None:
    Path(path).write_text(bvh_text(rig, poses, frame_time), encoding="utf-8")


def _depth_first(children: dict[int, list[int]]) -> list[int]:
    """Bone indices in the order their channels appear in the file."""
    order, stack = [], [0]
    while stack:
        i = stack.pop()
        order.append(i)
        stack.extend(reversed(children[i]))
    return order


def _vec(v: np.ndarray) -> str:
    return " ".join(f"{x:.6f}" for x in v)
