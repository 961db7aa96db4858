"""Joint positions -> per-bone local rotations of a standard humanoid, and back (forward kinematics).

The humanoid uses Unity's HumanBodyBones names, so VMC receivers (EVMC4U, VMC4UE, VSeeFace), BVH
tools and the Blender add-on all read the same bones. Its rest pose is a *normalised* T-pose, as
VRM avatars have: every bone frame is aligned with the world axes, so a rest bone's local rotation
is the identity and a local rotation is directly "how far the bone turned from the T-pose".

Frames (the wire frame: right-handed, y up, metres): the rest T-pose faces -z with the person's
left on -x (so after Unity's z flip it faces Unity's +z, the humanoid convention). A person facing
the camera therefore has a Hips rotation of about 180 degrees about y.

Twist: a bone's *direction* is fixed by two joints (swing); the turn *about* that direction
(twist) by a secondary axis:
  * Hips: primary = hip line (right hip -> left hip), secondary = trunk (pelvis -> thorax);
  * Spine: primary = trunk, secondary = the mean of the hip and shoulder lines (half the twist);
  * Chest: primary = shoulder line, secondary = trunk;
  * Neck, Head: the parent's frame carried by the smallest rotation onto the bone (pure swing);
  * upper arms and legs: the normal of the limb's plane (shoulder-elbow-wrist, hip-knee-ankle), signed to
    agree with the parent's frame; as the limb straightens (plane undefined) it blends into the
    parent's carried frame, so no flip occurs;
  * forearms and shins: the upper bone's hinge axis, so a bent elbow or knee turns about that axis only
    (3D joints cannot show forearm pronation or shin twist, so none is invented);
  * hands, feet: no joints beyond them, so they follow their parent (identity local rotation).
Forward kinematics depends only on the primary axes, so joints -> rotations -> FK reproduces every
joint exactly whenever the bone lengths equal the rig's (pelvis mid-hips, thorax mid-shoulders).

This module needs only numpy: the Blender add-on ships a copy of it (Blender has no scipy), hence
the hand-written matrix <-> quaternion conversions.
"""
from __future__ import annotations

import math
from dataclasses import dataclass
from functools import cached_property

import numpy as np

#: Unity HumanBodyBones names, parents before children.
BONES: tuple[str, ...] = (
    "Hips", "Spine", "Chest", "Neck", "Head",
    "LeftUpperLeg", "LeftLowerLeg", "LeftFoot",
    "RightUpperLeg", "RightLowerLeg", "RightFoot",
    "LeftUpperArm", "LeftLowerArm", "LeftHand",
    "RightUpperArm", "RightLowerArm", "RightHand",
)


@dataclass(frozen=True)
class _Bone:
    parent: str | None
    head: str                                   # joint at the bone's head
    axis: tuple[str, str] | None                # joints giving the primary axis; None = leaf
    hint: str                                   # "joints", "spine", "parent", "bend", "hinge" or "leaf"
    hint_joints: tuple[str, ...] = ()           # joints of the secondary axis ("joints") or limb plane ("bend")
    rest_hint: tuple[float, float, float] = (0.0, 0.0, 0.0)  # secondary axis in the rest pose ("parent", "bend")


_TRUNK = ("pelvis", "thorax")
# Rest limb-plane normals (bone x next bone, both in the T-pose): elbows flex forward (-z), knees backward (+z).
_LEFT_ARM_N, _RIGHT_ARM_N, _LEG_N = (0.0, -1.0, 0.0), (0.0, 1.0, 0.0), (-1.0, 0.0, 0.0)


def _limb(side: str, parent: str, upper: str, lower: str, end: str, joints: tuple[str, str, str],
          normal: tuple[float, float, float]) -> dict[str, _Bone]:
    a, b, c = joints
    return {
        side + upper: _Bone(parent, a, (a, b), "bend", joints, normal),
        side + lower: _Bone(side + upper, b, (b, c), "hinge", joints, normal),
        side + end: _Bone(side + lower, c, None, "leaf"),
    }


_SPEC: dict[str, _Bone] = {
    "Hips": _Bone(None, "pelvis", ("r_hip", "l_hip"), "joints", _TRUNK),
    "Spine": _Bone("Hips", "pelvis", _TRUNK, "spine", ("r_hip", "l_hip", "r_shoulder", "l_shoulder")),
    "Chest": _Bone("Spine", "thorax", ("r_shoulder", "l_shoulder"), "joints", _TRUNK),
    "Neck": _Bone("Chest", "thorax", ("thorax", "neck"), "parent", rest_hint=(0.0, 0.0, 1.0)),
    "Head": _Bone("Neck", "neck", ("neck", "head_top"), "parent", rest_hint=(0.0, 0.0, 1.0)),
    **_limb("Left", "Hips", "UpperLeg", "LowerLeg", "Foot", ("l_hip", "l_knee", "l_ankle"), _LEG_N),
    **_limb("Right", "Hips", "UpperLeg", "LowerLeg", "Foot", ("r_hip", "r_knee", "r_ankle"), _LEG_N),
    **_limb("Left", "Chest", "UpperArm", "LowerArm", "Hand", ("l_shoulder", "l_elbow", "l_wrist"), _LEFT_ARM_N),
    **_limb("Right", "Chest", "UpperArm", "LowerArm", "Hand", ("r_shoulder", "r_elbow", "r_wrist"), _RIGHT_ARM_N),
}

#: Parent index of each bone in BONES (-1 for Hips).
BONE_PARENTS: tuple[int, ...] = tuple(-1 if _SPEC[b].parent is None else BONES.index(_SPEC[b].parent) for b in BONES)

#: The joint at each bone's head (Hips and Spine share the pelvis, Chest and Neck the thorax).
BONE_HEADS: tuple[str, ...] = tuple(_SPEC[b].head for b in BONES)

#: Joints the rig needs, each with its parent joint: the segments whose lengths the rig keeps.
_SEGMENTS: dict[str, str] = {
    "thorax": "pelvis", "neck": "thorax", "head_top": "neck",
    "l_hip": "pelvis", "l_knee": "l_hip", "l_ankle": "l_knee",
    "r_hip": "pelvis", "r_knee": "r_hip", "r_ankle": "r_knee",
    "l_shoulder": "thorax", "l_elbow": "l_shoulder", "l_wrist": "l_elbow",
    "r_shoulder": "thorax", "r_elbow": "r_shoulder", "r_wrist": "r_elbow",
}
#: Direction of each segment in the rest T-pose (facing -z, the person's left on -x).
_REST_DIRECTION: dict[str, tuple[float, float, float]] = {
    "thorax": (0, 1, 0), "neck": (0, 1, 0), "head_top": (0, 1, 0),
    "l_hip": (-1, 0, 0), "l_knee": (0, -1, 0), "l_ankle": (0, -1, 0),
    "r_hip": (1, 0, 0), "r_knee": (0, -1, 0), "r_ankle": (0, -1, 0),
    "l_shoulder": (-1, 0, 0), "l_elbow": (-1, 0, 0), "l_wrist": (-1, 0, 0),
    "r_shoulder": (1, 0, 0), "r_elbow": (1, 0, 0), "r_wrist": (1, 0, 0),
}
#: How far the limb must bend (sine of the angle) before its plane alone sets the twist.
_BEND_FULL = 0.25
_EPS = 1e-9


class RigError(ValueError):
    """Joints or a skeleton the humanoid rig cannot use; the message names what is wrong."""


@dataclass(frozen=True)
class BonePose:
    """One person's pose on the humanoid: Hips (pelvis) position and each bone's local rotation."""
    root: np.ndarray        # (3,) pelvis position, wire frame, metres
    rotations: np.ndarray   # (len(BONES), 4) local rotations as unit quaternions (x, y, z, w)


@dataclass(frozen=True)
class HumanoidRig:
    """A humanoid with fixed bone lengths: ``pose`` turns joints into rotations, ``forward`` back.

    Build it once per person (``from_joints`` on the first frame, or ``from_offsets`` on the
    skeleton message's rest offsets); it is small and immutable.
    """
    joint_names: tuple[str, ...]
    rest_joints: np.ndarray  # (J, 3) T-pose joint positions, pelvis at the origin

    @classmethod
    def from_joints(cls, joints: np.ndarray, joint_names: tuple[str, ...] | list[str]) -> HumanoidRig:
        """Bone lengths from one pose's joints (J, 3)."""
        names = tuple(joint_names)
        joints = _check_joints(joints, names)
        index = {n: i for i, n in enumerate(names)}
        lengths = {j: float(np.linalg.norm(joints[index[j]] - joints[index[p]])) for j, p in _SEGMENTS.items()}
        return cls._from_lengths(lengths, names)

    @classmethod
    def from_offsets(cls, offsets: np.ndarray | list, joint_names: tuple[str, ...] | list[str],
                     parents: tuple[int, ...] | list[int]) -> HumanoidRig:
        """Bone lengths from a skeleton's rest offsets (each joint from its parent, (J, 3))."""
        names = tuple(joint_names)
        offsets = np.asarray(offsets, dtype=np.float64)
        if offsets.shape != (len(names), 3):
            raise RigError(f"rest_offsets: expected shape ({len(names)}, 3), got {offsets.shape}")
        if len(parents) != len(names):
            raise RigError(f"parents: expected one per joint ({len(names)}), got {len(parents)}")
        _check_names(names)
        lengths = {}
        for j, p in _SEGMENTS.items():
            i = names.index(j)
            if parents[i] < 0 or names[parents[i]] != p:
                raise RigError(f"skeleton: joint {j!r} must have parent {p!r} for the humanoid rig")
            lengths[j] = float(np.linalg.norm(offsets[i]))
        return cls._from_lengths(lengths, names)

    @classmethod
    def for_stream(cls, joint_names: tuple[str, ...] | list[str], parents: tuple[int, ...] | list[int],
                   rest_offsets: np.ndarray | list, first_joints: np.ndarray) -> HumanoidRig:
        """The rule every consumer follows: the skeleton message's rest offsets when it has them
        (one stable rest pose for the stream), else the person's first joints."""
        if len(rest_offsets) == len(joint_names):
            return cls.from_offsets(rest_offsets, joint_names, parents)
        return cls.from_joints(first_joints, joint_names)

    @classmethod
    def _from_lengths(cls, lengths: dict[str, float], names: tuple[str, ...]) -> HumanoidRig:
        short = [j for j, v in lengths.items() if not v > 1e-4]
        if short:
            raise RigError(f"bone {short[0]!r}-{_SEGMENTS[short[0]]!r} has no length: cannot build a rest pose")
        rest = {"pelvis": np.zeros(3)}
        for j, p in _SEGMENTS.items():
            rest[j] = rest[p] + lengths[j] * np.asarray(_REST_DIRECTION[j], dtype=np.float64)
        joints = np.zeros((len(names), 3))
        for i, n in enumerate(names):
            if n in rest:
                joints[i] = rest[n]
        joints.setflags(write=False)
        return cls(names, joints)

    def _joint(self, joints: np.ndarray, name: str) -> np.ndarray:
        return joints[self.joint_names.index(name)]

    @property
    def bone_offsets(self) -> np.ndarray:
        """(B, 3) each bone head's rest offset from its parent's head (Hips: from the origin)."""
        heads = np.array([self._joint(self.rest_joints, h) for h in BONE_HEADS])
        parents = np.array(BONE_PARENTS)
        return heads - np.where(parents[:, None] >= 0, heads[np.maximum(parents, 0)], 0.0)

    @property
    def bone_tails(self) -> np.ndarray:
        """(B, 3) each bone's rest tail relative to its head (leaves: a short stub along the parent)."""
        tails = np.zeros((len(BONES), 3))
        for i, b in enumerate(BONES):
            spec = _SPEC[b]
            if spec.axis is not None and spec.head == spec.axis[0]:
                tails[i] = self._joint(self.rest_joints, spec.axis[1]) - self._joint(self.rest_joints, spec.head)
            elif b in ("Hips", "Chest"):
                tails[i] = 0.3 * (self._joint(self.rest_joints, "thorax") - self._joint(self.rest_joints, "pelvis"))
            else:
                tails[i] = 0.3 * tails[BONE_PARENTS[i]]
        return tails

    @cached_property
    def _plan(self) -> tuple[_Step, ...]:
        """Everything about each bone that depends only on the rest pose, worked out once."""
        ix = {n: i for i, n in enumerate(self.joint_names)}
        steps = []
        for b in BONES:
            spec = _SPEC[b]
            if spec.axis is None:
                steps.append(_Step(spec.hint, (), (), np.zeros(3), np.eye(3), np.zeros(3)))
                continue
            axis = (ix[spec.axis[0]], ix[spec.axis[1]])
            hint_ix = tuple(ix[n] for n in spec.hint_joints)
            rest = self.rest_joints
            rest_primary = rest[axis[1]] - rest[axis[0]]
            if spec.hint == "joints":
                rest_hint = rest[hint_ix[1]] - rest[hint_ix[0]]
            elif spec.hint == "spine":
                rest_hint = _unit(rest[hint_ix[1]] - rest[hint_ix[0]]) + _unit(rest[hint_ix[3]] - rest[hint_ix[2]])
            else:
                rest_hint = np.asarray(spec.rest_hint, dtype=np.float64)
            steps.append(_Step(spec.hint, axis, hint_ix, _unit(rest_primary),
                               _basis(rest_primary, rest_hint).T, rest_hint))
        return tuple(steps)

    def pose(self, joints: np.ndarray, root: np.ndarray | None = None) -> BonePose:
        """Local bone rotations for one person's joints (J, 3); ``root`` offsets the pelvis (camera level frame)."""
        joints = _check_joints(joints, self.joint_names)
        pelvis = self._joint(joints, "pelvis") + (0.0 if root is None else np.asarray(root, dtype=np.float64))
        globals_ = np.zeros((len(BONES), 3, 3))
        locals_ = np.zeros((len(BONES), 3, 3))
        for i, step in enumerate(self._plan):
            p = BONE_PARENTS[i]
            parent = _EYE if p < 0 else globals_[p]
            globals_[i] = parent if step.hint == "leaf" else _global_rotation(step, joints, parent)
            locals_[i] = parent.T @ globals_[i]
        return BonePose(root=pelvis, rotations=quat_from_matrix(locals_))

    def forward(self, pose: BonePose) -> np.ndarray:
        """Joint positions (J, 3) of a pose, with the rig's bone lengths (joints it does not drive: 0)."""
        rotations = matrix_from_quat(np.asarray(pose.rotations, dtype=np.float64))
        offsets, tails = self.bone_offsets, self.bone_tails
        globals_ = np.zeros((len(BONES), 3, 3))
        heads = np.zeros((len(BONES), 3))
        out = np.zeros((len(self.joint_names), 3))
        for i, b in enumerate(BONES):
            p = BONE_PARENTS[i]
            if p < 0:
                globals_[i], heads[i] = rotations[i], np.asarray(pose.root, dtype=np.float64)
            else:
                globals_[i] = globals_[p] @ rotations[i]
                heads[i] = heads[p] + globals_[p] @ offsets[i]
            out[self.joint_names.index(_SPEC[b].head)] = heads[i]
        head = BONES.index("Head")
        out[self.joint_names.index("head_top")] = heads[head] + globals_[head] @ tails[head]
        return out


@dataclass(frozen=True)
class _Step:
    hint: str
    axis: tuple[int, ...]
    hint_joints: tuple[int, ...]
    rest_primary: np.ndarray    # unit
    rest_basis_t: np.ndarray    # transposed rest frame
    rest_hint: np.ndarray


_EYE = np.eye(3)


def _global_rotation(step: _Step, joints: np.ndarray, parent: np.ndarray) -> np.ndarray:
    primary = joints[step.axis[1]] - joints[step.axis[0]]
    h = step.hint_joints
    if step.hint == "hinge":
        hint = parent @ step.rest_hint
    elif step.hint == "joints":
        hint = joints[h[1]] - joints[h[0]]
    elif step.hint == "spine":
        hint = _unit(joints[h[1]] - joints[h[0]]) + _unit(joints[h[3]] - joints[h[2]])
    else:
        carried = _swing(parent @ step.rest_primary, _unit(primary)) @ parent @ step.rest_hint
        hint = carried if step.hint == "parent" else _bend_hint(joints[h[0]], joints[h[1]], joints[h[2]], carried)
    return _basis(primary, hint) @ step.rest_basis_t


def _bend_hint(a: np.ndarray, b: np.ndarray, c: np.ndarray, carried: np.ndarray) -> np.ndarray:
    """The limb plane's normal, signed like ``carried`` and blended into it as the limb straightens."""
    upper, lower = b - a, c - b
    normal = _cross(upper, lower)
    sine = _norm(normal) / max(_norm(upper) * _norm(lower), _EPS)
    if sine < 1e-6:
        return carried
    normal = _unit(normal)
    if normal @ carried < 0:
        normal = -normal
    w = min(sine / _BEND_FULL, 1.0)
    return w * normal + (1.0 - w) * carried


def _check_names(names: tuple[str, ...]) -> None:
    missing = [n for n in ("pelvis", *_SEGMENTS) if n not in names]
    if missing:
        raise RigError(f"joint names lack {missing[0]!r}, which the humanoid rig needs")


def _check_joints(joints: np.ndarray, names: tuple[str, ...]) -> np.ndarray:
    _check_names(names)
    joints = np.asarray(joints, dtype=np.float64)
    if joints.shape != (len(names), 3):
        raise RigError(f"joints: expected shape ({len(names)}, 3), got {joints.shape}")
    if not np.isfinite(joints).all():
        raise RigError("joints: not all finite")
    return joints


def _cross(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    return np.array([a[1] * b[2] - a[2] * b[1], a[2] * b[0] - a[0] * b[2], a[0] * b[1] - a[1] * b[0]])


def _norm(v: np.ndarray) -> float:
    return math.sqrt(float(v @ v))


def _unit(v: np.ndarray) -> np.ndarray:
    return v / max(_norm(v), _EPS)


def _basis(primary: np.ndarray, hint: np.ndarray) -> np.ndarray:
    """Orthonormal frame (columns) with the first axis along ``primary``, the second towards ``hint``."""
    e1 = _unit(primary)
    e2 = hint - (hint @ e1) * e1
    if _norm(e2) < 1e-6:  # hint along the bone: any perpendicular keeps FK exact
        e2 = _cross(e1, np.eye(3)[int(np.argmin(np.abs(e1)))])
    e2 = _unit(e2)
    return np.array([e1, e2, _cross(e1, e2)]).T


def _swing(u: np.ndarray, v: np.ndarray) -> np.ndarray:
    """Smallest rotation taking unit vector ``u`` onto unit vector ``v`` (Rodrigues)."""
    k, c = _cross(u, v), float(u @ v)
    if c < -1.0 + 1e-9:
        axis = _unit(_cross(u, np.eye(3)[int(np.argmin(np.abs(u)))]))
        return 2.0 * np.outer(axis, axis) - np.eye(3)
    kx = np.array([[0.0, -k[2], k[1]], [k[2], 0.0, -k[0]], [-k[1], k[0], 0.0]])
    return np.eye(3) + kx + kx @ kx / (1.0 + c)


def quat_from_matrix(m: np.ndarray) -> np.ndarray:
    """Rotation matrices (..., 3, 3) -> unit quaternions (..., 4) as (x, y, z, w), w >= 0."""
    shape = np.shape(m)[:-2]
    m = np.asarray(m, dtype=np.float64).reshape(-1, 3, 3)
    t = np.stack([1 + m[..., 0, 0] - m[..., 1, 1] - m[..., 2, 2], 1 - m[..., 0, 0] + m[..., 1, 1] - m[..., 2, 2],
                  1 - m[..., 0, 0] - m[..., 1, 1] + m[..., 2, 2], 1 + m[..., 0, 0] + m[..., 1, 1] + m[..., 2, 2]], -1)
    k = np.argmax(t, axis=-1)  # the largest component first: numerically safe for every rotation
    q = np.empty((len(m), 4))
    s = np.sqrt(np.maximum(np.take_along_axis(t, k[..., None], -1)[..., 0], _EPS)) * 2.0
    sel = [k == i for i in range(4)]
    for i, (a, b, c) in enumerate(((0, 1, 2), (1, 2, 0), (2, 0, 1))):
        r = sel[i]
        q[r, a] = s[r] / 4
        q[r, b] = (m[r][:, b, a] + m[r][:, a, b]) / s[r]
        q[r, c] = (m[r][:, c, a] + m[r][:, a, c]) / s[r]
        q[r, 3] = (m[r][:, c, b] - m[r][:, b, c]) / s[r]
    r = sel[3]
    q[r, 3] = s[r] / 4
    q[r, 0] = (m[r][:, 2, 1] - m[r][:, 1, 2]) / s[r]
    q[r, 1] = (m[r][:, 0, 2] - m[r][:, 2, 0]) / s[r]
    q[r, 2] = (m[r][:, 1, 0] - m[r][:, 0, 1]) / s[r]
    q *= np.where(q[:, 3:] < 0, -1.0, 1.0)
    return (q / np.linalg.norm(q, axis=-1, keepdims=True)).reshape(shape + (4,))


def matrix_from_quat(q: np.ndarray) -> np.ndarray:
    """Quaternions (..., 4) as (x, y, z, w) -> rotation matrices (..., 3, 3)."""
    q = np.asarray(q, dtype=np.float64)
    q = q / np.linalg.norm(q, axis=-1, keepdims=True)
    x, y, z, w = np.moveaxis(q, -1, 0)
    return np.stack([
        np.stack([1 - 2 * (y * y + z * z), 2 * (x * y - z * w), 2 * (x * z + y * w)], -1),
        np.stack([2 * (x * y + z * w), 1 - 2 * (x * x + z * z), 2 * (y * z - x * w)], -1),
        np.stack([2 * (x * z - y * w), 2 * (y * z + x * w), 1 - 2 * (x * x + y * y)], -1),
    ], -2)
