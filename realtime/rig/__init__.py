"""Humanoid rig: joint rotations from 3D joints, and forward kinematics back to joints."""
from realtime.rig.humanoid import BONE_HEADS, BONE_PARENTS, BONES, BonePose, HumanoidRig, RigError

__all__ = ["BONES", "BONE_PARENTS", "BONE_HEADS", "BonePose", "HumanoidRig", "RigError"]
