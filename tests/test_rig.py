"""Humanoid rig: joints -> local rotations -> forward kinematics, on CMU mocap and lifted poses."""
from __future__ import annotations

import numpy as np
import pytest
from downstream_data import CLIPS, fixed_lengths, lifted
from downstream_data import clip as load_clip

from realtime import skeleton as sk
from realtime.rig import BONES, BonePose, HumanoidRig, RigError
from realtime.rig.humanoid import matrix_from_quat, quat_from_matrix


@pytest.fixture(scope="module", params=CLIPS)
def clip(request, mocap_dir):
    return load_clip(mocap_dir / request.param)


@pytest.fixture(scope="module", params=[*CLIPS, "lifted"])
def poses(request, mocap_dir):
    """(T, 16, 3) at 30 fps: each mocap clip as captured, and the AMC clip as lifted from 2D."""
    if request.param == "lifted":
        return lifted(load_clip(mocap_dir / CLIPS[1]).subsample(30.0).joints[:240].astype(np.float64))
    return load_clip(mocap_dir / request.param).subsample(30.0).joints[:240].astype(np.float64)


def test_round_trip_reproduces_the_joints_within_1mm(poses):
    joints = fixed_lengths(poses)
    rig = HumanoidRig.from_joints(joints[0], sk.JOINTS3D)
    worst = 0.0
    for j in joints:
        pose = rig.pose(j)
        assert pose.rotations.shape == (len(BONES), 4)
        np.testing.assert_allclose(np.linalg.norm(pose.rotations, axis=1), 1.0, atol=1e-9)
        worst = max(worst, float(np.linalg.norm(rig.forward(pose) - j, axis=1).max()))
    assert worst < 1e-3, f"round trip error {worst * 1000:.3f} mm"


def test_round_trip_places_root_and_keeps_bone_directions_of_varying_lengths(poses):
    joints = poses
    rig = HumanoidRig.from_joints(joints[0], sk.JOINTS3D)
    root = np.array([0.3, 0.0, -2.5])
    for j in joints[::5]:
        back = rig.forward(rig.pose(j - j[sk.JOINTS3D.index("pelvis")], root=root))
        assert np.allclose(back[sk.JOINTS3D.index("pelvis")], root)
        for i, p in sk.BONES3D:
            a, b = back[i] - back[p], j[i] - j[p]
            assert np.degrees(np.arccos(np.clip(a @ b / np.linalg.norm(a) / np.linalg.norm(b), -1, 1))) < 0.01


def test_rest_pose_gives_identity_rotations():
    rig = HumanoidRig.from_joints(_rest_like(), sk.JOINTS3D)
    pose = rig.pose(rig.rest_joints)
    np.testing.assert_allclose(pose.rotations, np.tile([0.0, 0.0, 0.0, 1.0], (len(BONES), 1)), atol=1e-9)
    np.testing.assert_allclose(pose.root, 0.0)


def test_person_facing_the_camera_turns_hips_half_a_turn_about_y():
    rig = HumanoidRig.from_joints(_rest_like(), sk.JOINTS3D)
    facing_camera = rig.rest_joints * (-1.0, 1.0, -1.0)  # the T-pose turned 180 degrees about y
    q = rig.pose(facing_camera).rotations[BONES.index("Hips")]
    np.testing.assert_allclose(np.abs(q), [0.0, 1.0, 0.0, 0.0], atol=1e-9)


def test_elbows_and_knees_are_hinges_and_twist_does_not_jump(clip):
    """Lower limbs turn only about their rest hinge axis; no bone jumps between 120 fps frames."""
    joints = clip.joints.astype(np.float64)[:480]
    rig = HumanoidRig.from_joints(joints[0], sk.JOINTS3D)
    rotations = np.stack([rig.pose(j).rotations for j in joints])
    hinge_axis = {"LeftLowerArm": (1, "l_"), "RightLowerArm": (1, "r_"), "LeftLowerLeg": (0, "l_"),
                  "RightLowerLeg": (0, "r_")}
    for bone, (axis, side) in hinge_axis.items():
        limb = ("shoulder", "elbow", "wrist") if "Arm" in bone else ("hip", "knee", "ankle")
        a, b, c = (joints[:, sk.JOINTS3D.index(side + n)] for n in limb)
        bend = np.linalg.norm(np.cross(b - a, c - b), axis=1)
        sine = bend / np.linalg.norm(b - a, axis=1) / np.linalg.norm(c - b, axis=1)
        bent = sine > 0.25  # the limb's plane alone sets the twist
        q = rotations[bent, BONES.index(bone), :3]
        assert len(q) > 10
        off_axis = np.delete(q, axis, axis=1)
        assert np.abs(off_axis).max() < 1e-6, f"{bone} turns about more than its hinge axis"
    step = np.degrees(2 * np.arccos(np.clip(np.abs(np.sum(rotations[1:] * rotations[:-1], -1)), 0, 1)))
    assert step.max() < 45.0, f"{BONES[int(step.max(0).argmax())]} jumps {step.max():.0f} degrees in one frame"


def test_quaternion_conversions_are_inverse():
    rng = np.random.default_rng(0)
    q = rng.normal(size=(500, 4))
    q /= np.linalg.norm(q, axis=1, keepdims=True)
    q *= np.sign(q[:, 3:])
    np.testing.assert_allclose(quat_from_matrix(matrix_from_quat(q)), q, atol=1e-9)


def test_bad_input_names_the_problem():
    rig = HumanoidRig.from_joints(_rest_like(), sk.JOINTS3D)
    with pytest.raises(RigError, match=r"shape \(16, 3\)"):
        rig.pose(np.zeros((14, 3)))
    bad = _rest_like()
    bad[3, 0] = np.nan
    with pytest.raises(RigError, match="not all finite"):
        rig.pose(bad)
    with pytest.raises(RigError, match="'thorax'"):
        HumanoidRig.from_joints(np.zeros((15, 3)), sk.JOINTS3D[:-1])
    collapsed = _rest_like()
    collapsed[sk.JOINTS3D.index("l_elbow")] = collapsed[sk.JOINTS3D.index("l_shoulder")]
    with pytest.raises(RigError, match="'l_elbow'-'l_shoulder' has no length"):
        HumanoidRig.from_joints(collapsed, sk.JOINTS3D)
    with pytest.raises(RigError, match="rest_offsets"):
        HumanoidRig.from_offsets(np.zeros((3, 3)), sk.JOINTS3D, sk.PARENT_INDEX3D)


def test_rig_from_skeleton_offsets_matches_rig_from_joints():
    joints = _rest_like()
    offsets = [joints[i] - joints[p] if p >= 0 else np.zeros(3) for i, p in enumerate(sk.PARENT_INDEX3D)]
    a = HumanoidRig.from_offsets(offsets, sk.JOINTS3D, sk.PARENT_INDEX3D)
    b = HumanoidRig.from_joints(joints, sk.JOINTS3D)
    np.testing.assert_allclose(a.rest_joints, b.rest_joints)
    pose = BonePose(root=np.zeros(3), rotations=np.tile([0.0, 0.0, 0.0, 1.0], (len(BONES), 1)))
    np.testing.assert_allclose(a.forward(pose), a.rest_joints, atol=1e-12)


def _rest_like() -> np.ndarray:
    """A plain standing pose (metres) to build rigs from in the tests that need no mocap."""
    p = {"pelvis": (0, 0, 0), "thorax": (0, 0.5, 0.02), "neck": (0, 0.65, 0.03), "head_top": (0, 0.85, 0.0),
         "l_hip": (-0.1, 0, 0), "l_knee": (-0.1, -0.45, 0.02), "l_ankle": (-0.1, -0.88, 0),
         "r_hip": (0.1, 0, 0), "r_knee": (0.1, -0.45, 0.02), "r_ankle": (0.1, -0.88, 0),
         "l_shoulder": (-0.18, 0.5, 0.02), "l_elbow": (-0.2, 0.22, 0.02), "l_wrist": (-0.2, -0.02, 0.05),
         "r_shoulder": (0.18, 0.5, 0.02), "r_elbow": (0.2, 0.22, 0.02), "r_wrist": (0.2, -0.02, 0.05)}
    return np.array([p[n] for n in sk.JOINTS3D], dtype=np.float64)
