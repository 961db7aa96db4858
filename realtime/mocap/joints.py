"""How each joint of ``realtime.skeleton.JOINTS3D`` is taken from each mocap skeleton convention.

This is the one place where mocap joint names are mapped. Every 3D joint is a fixed weighted
sum of named points of the file's skeleton (a joint, or ``"<joint>/end"`` for the end of its
bone), so a convention is one table and mapping a clip is one matrix product.

Three conventions occur in the CMU data:

* ``cmu`` -- CMU's own ASF bone names (``lfemur``, ``lhumerus``, ``upperneck``...), used by the
  ASF/AMC files and by the BVH conversions in ``bvh_cgspeed/16/16_0[12].bvh``. Length unit 0.056444 m.
* ``cgspeed`` -- the cgspeed BVH conversion (``Hips``, ``LeftHip``, ``LeftShoulder``, ``Head``...):
  CMU's skeleton renamed, same lengths and unit; joints sit at the start of the ASF bone.
* ``motionbuilder`` -- cgspeed's "MotionBuilder-friendly" BVH (``hip``, ``abdomen``, ``rThigh``,
  ``rShldr``...), retargeted to a different rig, in centimetres, with no head end site.

Joint definitions, identical in meaning across conventions:

* hips, knees, ankles, shoulders, elbows, wrists: the rig's joint centre of that name;
* ``pelvis``: mid-point of the two hip joints (not the rig's root, which differs between rigs);
* ``thorax``: mid-point of the two shoulder joints;
* ``neck``: the top of the neck (base of the skull: the joint where the head bone starts), as
  LSP's "neck" label sits under the chin rather than at the shoulders;
* ``head_top``: the neck extended along the head bone (neck to the rig's head end site) by
  ``HEAD_TOP`` times its length: CMU's head bone ends at the level of the head markers, below
  the crown. The MotionBuilder rig has no head end site; its neck and head top are placed along
  its chest-to-neck line with factors fitted to the AMC (see ``MOTIONBUILDER`` and docs/mocap.md).
"""
from __future__ import annotations

import dataclasses
from dataclasses import dataclass

import numpy as np

from realtime.skeleton import JOINTS3D

from .bvh import BvhFile
from .kinematics import Motion

#: head_top = neck + HEAD_TOP * (head end - neck) on rigs with a head end site: about 12 cm from
#: the base of the skull for CMU subjects 01-03, whose head bones are 9-10 cm long.
HEAD_TOP = 1.25


def _mid(a: str, b: str) -> dict[str, float]:
    return {a: 0.5, b: 0.5}


def _mean(*points: dict[str, float]) -> dict[str, float]:
    out: dict[str, float] = {}
    for point in points:
        for name, w in point.items():
            out[name] = out.get(name, 0.0) + w / len(points)
    return out


def _along(start: str, end: str, factor: float) -> dict[str, float]:
    return {start: 1.0 - factor, end: factor}


@dataclass(frozen=True)
class Convention:
    """A mocap skeleton convention: how to recognise it and where each JOINTS3D joint lies in it."""

    name: str
    #: Names that identify the convention (all must be present in the file).
    markers: tuple[str, ...]
    #: Metres per file unit for BVH files (ASF files state their own unit).
    metres_per_unit: float
    #: JOINTS3D name -> {point name: weight}, weights summing to 1.
    table: dict[str, dict[str, float]]
    #: Leading frames that are the converter's reference pose, not motion.
    rest_frames: int = 0
    #: (joint, its children) where a BVH conversion dropped the joint's bone: the children sit at
    #: the joint itself (zero OFFSET). See :meth:`repair`.
    dropped_bone: tuple[str, tuple[str, ...]] | None = None

    def matrix(self, names: tuple[str, ...]) -> np.ndarray:
        """(16, K) weights taking the K named points of a file to JOINTS3D."""
        column = {n: i for i, n in enumerate(names)}
        weights = np.zeros((len(JOINTS3D), len(names)))
        for row, joint in enumerate(JOINTS3D):
            for point, w in self.table[joint].items():
                weights[row, column[point]] += w
        return weights

    def repair(self, bvh: BvhFile) -> BvhFile:
        """Restore a bone the BVH conversion dropped (cgspeed lost CMU's ``thorax`` bone).

        Its children sit at the start of the bone (OFFSET 0), putting shoulders, neck and head
        about 12 cm low. CMU's three spine bones are equally long (within 1% on subjects 01-03), so
        the bone is restored as long as its parent bone, pointing up (+y) in the rest pose as in
        the ASF. Files whose children have non-zero offsets are left alone.
        """
        if self.dropped_bone is None:
            return bvh
        joint, children = self.dropped_bone
        index = {n: i for i, n in enumerate(bvh.names)}
        if joint not in index or any(c not in index for c in children):
            return bvh
        kids = [index[c] for c in children]
        if np.abs(bvh.offsets[kids]).max() > 1e-6:
            return bvh
        offsets = bvh.offsets.copy()
        offsets[kids] = (0.0, float(np.linalg.norm(bvh.offsets[index[joint]])), 0.0)
        return dataclasses.replace(bvh, offsets=offsets)

    def missing(self, names: tuple[str, ...]) -> list[str]:
        """Points the table needs that a file lacks (a renamed or cut-down rig)."""
        have = set(names)
        return sorted({p for spec in self.table.values() for p in spec} - have)


def _limbs(hip: str, knee: str, ankle: str, shoulder: str, elbow: str, wrist: str, side: str
           ) -> dict[str, dict[str, float]]:
    return {f"{side}_hip": {hip: 1.0}, f"{side}_knee": {knee: 1.0}, f"{side}_ankle": {ankle: 1.0},
            f"{side}_shoulder": {shoulder: 1.0}, f"{side}_elbow": {elbow: 1.0},
            f"{side}_wrist": {wrist: 1.0}}


CMU = Convention(
    name="cmu",
    markers=("lfemur", "rfemur", "lhumerus", "rhumerus", "head"),
    metres_per_unit=0.0254 / 0.45,
    table={
        **_limbs("rfemur", "rtibia", "rfoot", "rhumerus", "rradius", "rwrist", "r"),
        **_limbs("lfemur", "ltibia", "lfoot", "lhumerus", "lradius", "lwrist", "l"),
        "pelvis": _mid("lfemur", "rfemur"),
        "thorax": _mid("lhumerus", "rhumerus"),
        "neck": {"head": 1.0},
        "head_top": _along("head", "head/end", HEAD_TOP),
    },
    dropped_bone=("thorax", ("lowerneck", "lclavicle", "rclavicle")),
)

CGSPEED = Convention(
    name="cgspeed",
    markers=("LeftHip", "RightHip", "LeftShoulder", "RightShoulder", "Head"),
    metres_per_unit=0.0254 / 0.45,
    table={
        **_limbs("RightHip", "RightKnee", "RightAnkle", "RightShoulder", "RightElbow", "RightWrist", "r"),
        **_limbs("LeftHip", "LeftKnee", "LeftAnkle", "LeftShoulder", "LeftElbow", "LeftWrist", "l"),
        "pelvis": _mid("LeftHip", "RightHip"),
        "thorax": _mid("LeftShoulder", "RightShoulder"),
        "neck": {"Head": 1.0},
        "head_top": _along("Head", "Head/end", HEAD_TOP),
    },
    dropped_bone=("Chest2", ("lowerneck", "LeftCollar", "RightCollar")),
)

#: The MotionBuilder files are retargeted onto one template rig (the same OFFSETs for every
#: subject) whose joints sit elsewhere than CMU's: narrower and lower shoulders, higher knees,
#: longer forearms, the neck joint at the base of the neck, no head end site.
#: The weights below move them onto the CMU joints. Shoulders, elbows, neck and head top are
#: least-squares fits of pelvis-centred positions on the subject 02 and 03 clips recorded both as
#: AMC and as MotionBuilder BVH (``tools/bench_mocap.py --fit-motionbuilder``); knee and wrist
#: scale the bone to CMU's mean length (a position fit shrinks them, as the retarget also changed
#: the joint angles).
def _mb_shoulder(side: str) -> dict[str, float]:
    return {f"{side}Collar": -0.13, f"{side}Shldr": 1.72, "chest": -0.31, "neck": -0.28}


MOTIONBUILDER = Convention(
    name="motionbuilder",
    markers=("rThigh", "lThigh", "rShldr", "lShldr", "chest", "neck"),
    metres_per_unit=0.01,
    table={
        "r_shoulder": _mb_shoulder("r"), "l_shoulder": _mb_shoulder("l"),
        "r_elbow": _along("rShldr", "rForeArm", 0.95), "l_elbow": _along("lShldr", "lForeArm", 0.95),
        "r_wrist": _along("rForeArm", "rHand", 0.8), "l_wrist": _along("lForeArm", "lHand", 0.8),
        "r_hip": {"rThigh": 1.0}, "l_hip": {"lThigh": 1.0},
        "r_knee": _along("rThigh", "rShin", 1.12), "l_knee": _along("lThigh", "lShin", 1.12),
        "r_ankle": {"rFoot": 1.0}, "l_ankle": {"lFoot": 1.0},
        "pelvis": _mid("lThigh", "rThigh"),
        "thorax": _mean(_mb_shoulder("r"), _mb_shoulder("l")),
        "neck": _along("chest", "neck", 1.53),
        "head_top": _along("chest", "neck", 2.02),
    },
    rest_frames=1,
)

CONVENTIONS: tuple[Convention, ...] = (CMU, CGSPEED, MOTIONBUILDER)


def convention_of(names: tuple[str, ...]) -> Convention | None:
    have = set(names)
    for convention in CONVENTIONS:
        if all(m in have for m in convention.markers):
            return convention
    return None


def to_joints3d(motion: Motion, convention: Convention) -> np.ndarray:
    """(T, 16, 3) float32 JOINTS3D positions in metres."""
    scale = motion.metres_per_unit or convention.metres_per_unit
    weights = convention.matrix(motion.names) * scale
    return np.einsum("jk,tkc->tjc", weights, motion.positions).astype(np.float32)
