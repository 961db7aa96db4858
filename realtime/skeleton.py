"""Joint sets shared by every stage: the 2D input set (LSP-14) and the 3D output skeleton.

The names are defined here once. How each name is taken from a mocap skeleton lives in
``realtime.mocap`` and nowhere else.
"""
from __future__ import annotations

#: The 2D keypoint set every keypoint model is mapped to (r/l = the person's own right/left).
LSP14: tuple[str, ...] = (
    "head_top", "neck",
    "r_shoulder", "r_elbow", "r_wrist",
    "l_shoulder", "l_elbow", "l_wrist",
    "r_hip", "r_knee", "r_ankle",
    "l_hip", "l_knee", "l_ankle",
)

#: The 3D output skeleton: LSP-14 first (so ``joints3d[:, :14]`` lines up with the 2D keypoints),
#: then ``pelvis`` (mid-hips, the root) and ``thorax`` (mid-shoulders, base of the neck).
JOINTS3D: tuple[str, ...] = LSP14 + ("pelvis", "thorax")

#: Parent of each 3D joint (by name); the root's parent is None.
PARENTS3D: dict[str, str | None] = {
    "pelvis": None,
    "thorax": "pelvis",
    "neck": "thorax",
    "head_top": "neck",
    "r_shoulder": "thorax", "r_elbow": "r_shoulder", "r_wrist": "r_elbow",
    "l_shoulder": "thorax", "l_elbow": "l_shoulder", "l_wrist": "l_elbow",
    "r_hip": "pelvis", "r_knee": "r_hip", "r_ankle": "r_knee",
    "l_hip": "pelvis", "l_knee": "l_hip", "l_ankle": "l_knee",
}

ROOT = "pelvis"


def index(names: tuple[str, ...], name: str) -> int:
    return names.index(name)


#: Parent index per joint of JOINTS3D (-1 for the root).
PARENT_INDEX3D: tuple[int, ...] = tuple(
    -1 if PARENTS3D[n] is None else JOINTS3D.index(PARENTS3D[n]) for n in JOINTS3D
)

#: Bones (child, parent) as index pairs into JOINTS3D: the limbs whose squared lengths are normalised.
BONES3D: tuple[tuple[int, int], ...] = tuple(
    (i, p) for i, p in enumerate(PARENT_INDEX3D) if p >= 0
)


def _mirror_name(name: str) -> str:
    if name.startswith("r_"):
        return "l_" + name[2:]
    if name.startswith("l_"):
        return "r_" + name[2:]
    return name


#: For left-right flipping: index of the mirrored joint.
FLIP3D: tuple[int, ...] = tuple(JOINTS3D.index(_mirror_name(n)) for n in JOINTS3D)
FLIP2D: tuple[int, ...] = tuple(LSP14.index(_mirror_name(n)) for n in LSP14)

#: 2D limbs for drawing overlays (index pairs into LSP14).
LIMBS2D: tuple[tuple[int, int], ...] = (
    (0, 1), (1, 2), (2, 3), (3, 4), (1, 5), (5, 6), (6, 7),
    (2, 8), (5, 11), (8, 9), (9, 10), (11, 12), (12, 13), (8, 11),
)


def turn_matrix(angle):
    """(..., 2, 2) for angles (radians, clockwise on screen, image y down, as :func:`torso_lean`):
    image points as row vectors times it turn by the angle, times its transpose turn back. The one
    place the turn convention is written: crops, belief-map frames and the lifter's turned lift use it."""
    import numpy as np

    c, s = np.cos(angle), np.sin(angle)
    return np.stack([np.stack([c, s], -1), np.stack([-s, c], -1)], -2)


def level_to_camera(points, pitch_deg):
    """Points (..., 3) of a camera's level frame (x right, y up against gravity, z towards the camera)
    in the camera's own axes: turned by R_x(pitch) for a camera pitched down by ``pitch_deg`` (a
    number, or one per leading index: (N,) for (N, L, 3) points). The one place the turn is written:
    the lifter's perspective correction, the published person's camera axes and the benchmarks use it."""
    import numpy as np

    points = np.asarray(points, np.float64)
    phi = np.radians(np.asarray(pitch_deg, np.float64))
    phi = phi.reshape(phi.shape + (1,) * (points.ndim - 1 - phi.ndim))
    c, s = np.cos(phi), np.sin(phi)
    out = points.copy()
    out[..., 1] = c * points[..., 1] - s * points[..., 2]
    out[..., 2] = s * points[..., 1] + c * points[..., 2]
    return out


#: A torso leaning more than this from upright in the image (degrees) is a person lying, crawling or
#: upside down: the 2D stage crops them turned along the body and the lifter lifts them turned (its
#: ``[lifting] roll_above_deg`` defaults to it). Both the keypoint networks and the prior learnt
#: upright people.
UPRIGHT_LEAN_DEG = 45.0


def torso_lean(keypoints, visible):
    """(N,) angle of each LSP-14 torso (mid-hips to mid-shoulders, over the visible ones) from upright
    in the image, radians, clockwise on screen (image y down); NaN without a visible hip and shoulder.
    The 2D stage turns a leaning person's crop by it, the lifter their keypoints: both the networks and
    the prior learnt upright people."""
    import numpy as np

    kp = np.asarray(keypoints, np.float64)
    seen = np.asarray(visible, bool)

    def middle(names: tuple[str, str]):
        joints = [LSP14.index(n) for n in names]
        w = seen[:, joints][..., None]
        with np.errstate(invalid="ignore", divide="ignore"):
            return np.where(w, kp[:, joints], 0.0).sum(1) / w.sum(1)

    torso = middle(("r_shoulder", "l_shoulder")) - middle(("r_hip", "l_hip"))
    return np.arctan2(torso[:, 0], -torso[:, 1])
