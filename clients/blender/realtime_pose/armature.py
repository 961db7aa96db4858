"""Armatures for the humanoid rig in Blender, and putting a rig pose on them.

Wire frame -> Blender: right-handed y up -> right-handed z up, a quarter turn about x:
(x, y, z) -> (x, -z, y), the same conversion as Blender's BVH importer (forward -Z, up Y).
Each bone's pose rotation is in its own rest frame, so the rig's local rotation L (axes of the
armature) becomes R^-1 L R with R the bone's rest orientation.
"""
from __future__ import annotations

import bpy
import numpy as np
from mathutils import Matrix, Quaternion, Vector

from .humanoid import BONE_PARENTS, BONES, BonePose, HumanoidRig

#: Wire (y up) -> Blender (z up).
TO_BLENDER = Matrix(((1.0, 0.0, 0.0), (0.0, 0.0, -1.0), (0.0, 1.0, 0.0)))
COLLECTION = "Realtime Pose"


def to_blender(v) -> Vector:
    return TO_BLENDER @ Vector(tuple(float(x) for x in v))


def rotation_to_blender(q) -> Quaternion:
    """Wire quaternion (x, y, z, w) -> the same rotation in Blender's axes."""
    x, y, z, w = (float(c) for c in q)
    return Quaternion((w, *to_blender((x, y, z))))


def ensure_armature(name: str, rig: HumanoidRig) -> bpy.types.Object:
    """The armature object ``name`` (made in the rig's rest T-pose the first time)."""
    obj = bpy.data.objects.get(name)
    if obj is not None and obj.type == "ARMATURE":
        return obj
    collection = bpy.data.collections.get(COLLECTION)
    if collection is None:
        collection = bpy.data.collections.new(COLLECTION)
        bpy.context.scene.collection.children.link(collection)
    arm = bpy.data.armatures.new(name)
    obj = bpy.data.objects.new(name, arm)
    collection.objects.link(obj)
    offsets, tails = rig.bone_offsets, rig.bone_tails
    heads = np.zeros((len(BONES), 3))
    for i, p in enumerate(BONE_PARENTS):
        heads[i] = offsets[i] + (heads[p] if p >= 0 else 0.0)
    view_layer = bpy.context.view_layer
    previous = view_layer.objects.active
    view_layer.objects.active = obj
    bpy.ops.object.mode_set(mode="EDIT")
    for i, bone in enumerate(BONES):
        eb = arm.edit_bones.new(bone)
        eb.head = to_blender(heads[i])
        eb.tail = to_blender(heads[i] + tails[i])
        eb.roll = 0.0
        if BONE_PARENTS[i] >= 0:
            eb.parent = arm.edit_bones[BONES[BONE_PARENTS[i]]]
            eb.use_connect = False
    bpy.ops.object.mode_set(mode="OBJECT")
    view_layer.objects.active = previous
    for pb in obj.pose.bones:
        pb.rotation_mode = "QUATERNION"
    return obj


def apply_pose(obj: bpy.types.Object, pose: BonePose, frame: int | None = None) -> None:
    """Set the armature's pose (and key it at ``frame`` when given)."""
    bones = obj.data.bones
    for name, q in zip(BONES, pose.rotations):
        rest = bones[name].matrix_local.to_quaternion()
        pb = obj.pose.bones[name]
        pb.rotation_quaternion = rest.inverted() @ rotation_to_blender(q) @ rest
        if frame is not None:
            pb.keyframe_insert("rotation_quaternion", frame=frame)
    hips = obj.pose.bones[BONES[0]]
    rest = bones[BONES[0]].matrix_local
    hips.location = rest.to_quaternion().inverted() @ (to_blender(pose.root) - rest.translation)
    if frame is not None:
        hips.keyframe_insert("location", frame=frame)
