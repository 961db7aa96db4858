"""How each joint of ``realtime.skeleton.JOINTS3D`` is taken from each mocap skeleton convention.

This is the one place where mocap joint names are mapped. Every 3D joint is a fixed weighted
sum of named points of the file's skeleton (a joint, or ``"<joint>/end"`` for the end of its
bone), so a convention is one table and mapping a clip is one matrix product.

Three conventions occur in the CMU data (and a generic one, last, for other BVH sources):

* ``cmu`` -- CMU's own ASF bone names (``lfemur``, ``lhumerus``, ``upperneck``...), used by the
  ASF/AMC files and by the BVH conversions in ``bvh_cgspeed/16/16_0[12].bvh``. Length unit 0.056444 m.
* ``cgspeed`` -- the cgspeed BVH conversion (``Hips``, ``LeftHip``, ``LeftShoulder``, ``Head``...):
  CMU's skeleton renamed, same lengths and unit; joints sit at the start of the ASF bone.
* ``motionbuilder`` -- cgspeed's "MotionBuilder-friendly" BVH (``hip``, ``abdomen``, ``rThigh``,
  ``rShldr``...), retargeted to a different rig, in centimetres, with no head end site.

* ``generic`` -- any other BVH whose limbs carry one of the usual rig names (Mixamo ``LeftUpLeg``
  ``LeftLeg`` ``LeftArm`` ``LeftForeArm``, 3ds Max Biped ``Bip01 L Thigh``, Unreal ``thigh_l``,
  Xsens ``LeftUpperLeg``; namespaces such as ``mixamorig:`` ignored): the unit and the up axis,
  which BVH does not state, are read from the rest pose (:func:`generic_convention`).

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
import re
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
    #: (3,3) rotation taking the file's axes to ours (y up) where the file's up axis is another.
    turn: np.ndarray | None = None

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
    joints = np.einsum("jk,tkc->tjc", weights, motion.positions)
    if convention.turn is not None:
        joints = joints @ convention.turn.T
    return joints.astype(np.float32)


# -- other BVH sources ------------------------------------------------------------------------

#: Each joint's usual rig names, after :func:`name_key` (lower case, letters and digits only, no
#: namespace, no "Bip01"), the first one a file has wins. Mixamo, Xsens and most BVH exports name the
#: hip joint ``UpLeg``/``UpperLeg`` and the knee ``Leg``/``LowerLeg``; the shoulder joint is ``Arm``
#: (``Shoulder`` is the clavicle there, so it is not a name for the shoulder joint); 3ds Max Biped and
#: Unreal use thigh / calf / upper arm / forearm / hand; DAZ and Poser ``lThigh lShin lShldr lForeArm``.
GENERIC_NAMES: dict[str, tuple[str, ...]] = {}
for _side, _s in (("Right", "r"), ("Left", "l")):
    _x = _side.lower()
    GENERIC_NAMES.update({
        f"{_s}_hip": (f"{_x}upleg", f"{_x}upperleg", f"{_x}thigh", f"{_s}thigh", f"thigh{_s}", f"{_s}upleg"),
        f"{_s}_knee": (f"{_x}leg", f"{_x}lowerleg", f"{_x}shin", f"{_x}calf", f"{_s}calf", f"calf{_s}", f"{_s}shin"),
        f"{_s}_ankle": (f"{_x}foot", f"{_s}foot", f"foot{_s}", f"{_x}ankle"),
        f"{_s}_shoulder": (f"{_x}arm", f"{_x}upperarm", f"{_s}upperarm", f"upperarm{_s}", f"{_s}uparm", f"{_s}shldr"),
        f"{_s}_elbow": (f"{_x}forearm", f"{_x}lowerarm", f"{_s}forearm", f"lowerarm{_s}", f"{_x}elbow"),
        f"{_s}_wrist": (f"{_x}hand", f"{_s}hand", f"hand{_s}", f"{_x}wrist"),
    })
GENERIC_NAMES.update({"head": ("head",), "neck": ("neck", "neck1", "neck01"),
                      "head_end": ("headtopend", "headtop", "headend", "headnub")})
#: Candidate units (metres per file unit) and the adult leg, hip to ankle along the bones, that
#: tells them apart: people's legs are 0.7-1.0 m, and neighbouring units differ by 2.2x or more.
UNITS = {"m": 1.0, "dm": 0.1, "cm": 0.01, "mm": 0.001, "inch": 0.0254, "foot": 0.3048,
         "CMU unit": 0.0254 / 0.45}
LEG_M = 0.85
#: head_top from the neck joint (the base of the neck) through the head joint (the base of the
#: skull) on rigs with no head end: about one head height above the skull's base.
GENERIC_HEAD_TOP = 2.3


def name_key(name: str) -> str:
    """A rig name compared loosely: the part after any namespace (``mixamorig:``), without 3ds Max's
    ``Bip01`` prefix, lower case, letters and digits only."""
    name = name.rsplit(":", 1)[-1].lower()
    name = re.sub(r"^bip0*1[\s_]*", "", name)
    return re.sub(r"[^a-z0-9]", "", name)


def generic_convention(names: tuple[str, ...], parents: tuple[int, ...], offsets: np.ndarray,
                       ends: tuple[tuple[int, np.ndarray], ...]) -> Convention:
    """A convention for a BVH skeleton with the usual rig names (``GENERIC_NAMES``).

    Hips, knees, ankles, shoulders, elbows and wrists are the joints of those names; pelvis and
    thorax the mid-points of hips and shoulders; ``neck`` the head joint (the base of the skull, as
    in the other conventions); ``head_top`` the head's end (a ``HeadTop_End`` joint or the head's End
    Site), else the neck-to-head line extended. BVH states no unit: the one of ``UNITS`` that makes
    the rest pose's leg (hip to ankle) closest to ``LEG_M``. Nor the up axis: the rest pose's axis
    from the pelvis towards the head becomes +y. Raises ``ValueError`` naming the joints not found."""
    keys: dict[str, str] = {}
    for name in names:
        keys.setdefault(name_key(name), name)
    found = {joint: next((keys[a] for a in aliases if a in keys), None) for joint, aliases in GENERIC_NAMES.items()}
    lacking = [f"{joint} ({' / '.join(GENERIC_NAMES[joint][:3])})" for joint in
               [j for j in GENERIC_NAMES if j not in ("neck", "head_end")] if found[joint] is None]
    if lacking:
        raise ValueError("no joint by the usual names for " + ", ".join(lacking))
    table = {**{j: {found[j]: 1.0} for j in GENERIC_NAMES if j[:2] in ("r_", "l_")},
             "pelvis": _mid(found["r_hip"], found["l_hip"]),
             "thorax": _mid(found["r_shoulder"], found["l_shoulder"]),
             "neck": {found["head"]: 1.0}}
    index = {n: i for i, n in enumerate(names)}
    head = index[found["head"]]
    if found["head_end"] is not None:
        table["head_top"] = {found["head_end"]: 1.0}
    elif any(j == head for j, _ in ends):
        table["head_top"] = {f"{found['head']}/end": 1.0}
    elif found["neck"] is not None:
        table["head_top"] = _along(found["neck"], found["head"], GENERIC_HEAD_TOP)
    else:
        raise ValueError("no head end (HeadTop_End, an End Site under the head) and no neck joint to place the head top")
    rest = _rest_pose(parents, offsets)
    leg = np.mean([np.linalg.norm(rest[index[found[f"{s}_knee"]]] - rest[index[found[f"{s}_hip"]]])
                   + np.linalg.norm(rest[index[found[f"{s}_ankle"]]] - rest[index[found[f"{s}_knee"]]])
                   for s in "rl"])
    if not leg > 0:
        raise ValueError("the rest pose's legs have no length")
    unit = min(UNITS, key=lambda u: abs(np.log(leg * UNITS[u] / LEG_M)))
    pelvis = (rest[index[found["r_hip"]]] + rest[index[found["l_hip"]]]) / 2
    up = rest[head] - pelvis
    return Convention(name=f"generic ({unit})", markers=(), metres_per_unit=UNITS[unit], table=table,
                      turn=_up_to_y(up))


def _rest_pose(parents: tuple[int, ...], offsets: np.ndarray) -> np.ndarray:
    """(J,3) joint positions with every channel zero: the offsets summed down the tree."""
    rest = np.zeros((len(parents), 3))
    for j, parent in enumerate(parents):       # parents come before their children in a BVH file
        rest[j] = offsets[j] + (rest[parent] if parent >= 0 else 0.0)
    return rest


def _up_to_y(up: np.ndarray) -> np.ndarray | None:
    """The rotation (a quarter or half turn) taking the file axis nearest ``up`` to +y; None when
    that is +y already."""
    axis = int(np.argmax(np.abs(up)))
    sign = float(np.sign(up[axis])) or 1.0
    if axis == 1 and sign > 0:
        return None
    if axis == 1:                                   # upside down: a half turn about x
        return np.diag([1.0, -1.0, -1.0])
    if axis == 2:                                   # z up (Blender, 3ds Max): a quarter turn about x
        return np.array([[1.0, 0, 0], [0, 0, sign], [0, -sign, 0]])
    return np.array([[0, -sign, 0], [sign, 0, 0], [0, 0, 1.0]])   # x up: a quarter turn about z
