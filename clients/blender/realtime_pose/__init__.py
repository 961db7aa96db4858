"""Realtime Pose live link: streamed 3D poses drive one humanoid armature per tracked person.

Subscribes to the realtime runtime's ZeroMQ stream from a timer (never blocking the UI), applies
joint rotations and root motion live, can key them while recording, and imports recorded sessions
(MCAP) or BVH exports. Needs pyzmq, msgpack and (for MCAP) mcap in Blender's Python; the Blender
4.2+ extension bundles them as wheels (blender_manifest.toml).
"""
from __future__ import annotations

import contextlib

import bpy
from bpy.props import BoolProperty, PointerProperty, StringProperty
from bpy_extras.io_utils import ImportHelper

bl_info = {
    "name": "Realtime Pose Live Link",
    "author": "realtime-pose3d",
    "version": (0, 1, 0),
    "blender": (3, 4, 0),
    "location": "View3D > Sidebar > Pose",
    "description": "Live multi-person 3D poses on humanoid armatures; import MCAP recordings and BVH",
    "category": "Animation",
}


class RealtimePoseSettings(bpy.types.PropertyGroup):
    endpoint: StringProperty(name="Stream", default="tcp://127.0.0.1:5560",
                             description="The runtime's publish address ([transport] publish)")
    record: BoolProperty(name="Key while live", default=False,
                         description="Insert keyframes for every received frame, from the current frame on")
    server_key: StringProperty(name="Server key", subtype="FILE_PATH", default="",
                               description="CURVE publisher only: the server's public key file (server.key)")
    client_key: StringProperty(name="Client key", subtype="FILE_PATH", default="",
                               description="CURVE publisher only: this client's key pair (consumer.key_secret)")


class REALTIMEPOSE_OT_connect(bpy.types.Operator):
    bl_idname = "realtime_pose.connect"
    bl_label = "Connect"
    bl_description = "Subscribe to the stream and drive one armature per track"

    def execute(self, context):
        from . import live
        s = context.scene.realtime_pose
        try:
            live.start(s.endpoint, s.record, bpy.path.abspath(s.server_key) if s.server_key else "",
                       bpy.path.abspath(s.client_key) if s.client_key else "")
        except Exception as e:  # zmq raises for malformed endpoints
            self.report({"ERROR"}, f"cannot connect to {s.endpoint}: {e}")
            return {"CANCELLED"}
        return {"FINISHED"}


class REALTIMEPOSE_OT_disconnect(bpy.types.Operator):
    bl_idname = "realtime_pose.disconnect"
    bl_label = "Disconnect"

    def execute(self, context):
        from . import live
        live.stop()
        return {"FINISHED"}


class REALTIMEPOSE_OT_import_mcap(bpy.types.Operator, ImportHelper):
    bl_idname = "realtime_pose.import_mcap"
    bl_label = "Import Recording (.mcap)"
    filename_ext = ".mcap"
    filter_glob: StringProperty(default="*.mcap", options={"HIDDEN"})

    def execute(self, context):
        from . import recording
        try:
            performer, truncated = recording.import_mcap(self.filepath, context.scene.frame_start)
        except (OSError, ValueError, ImportError) as e:
            self.report({"ERROR"}, str(e))
            return {"CANCELLED"}
        self.report({"WARNING" if truncated else "INFO"},
                    f"{performer.frames} frames, {len(performer.armatures)} tracks, {performer.skipped} skipped"
                    + (" (the recording was cut short)" if truncated else ""))
        return {"FINISHED"}


class REALTIMEPOSE_OT_import_bvh(bpy.types.Operator, ImportHelper):
    bl_idname = "realtime_pose.import_bvh"
    bl_label = "Import BVH Export (.bvh)"
    filename_ext = ".bvh"
    filter_glob: StringProperty(default="*.bvh", options={"HIDDEN"})

    def execute(self, context):
        # Blender's own importer; its defaults (forward -Z, up Y) match the export's axes
        with _bvh_importer_on_python311():
            return bpy.ops.import_anim.bvh(filepath=self.filepath, update_scene_fps=True, update_scene_duration=True)


@contextlib.contextmanager
def _bvh_importer_on_python311():
    """Blender 3.4's BVH importer opens files with mode 'rU', which Python 3.11 rejects; Debian's
    Blender 3.4 runs on Python 3.11. Give that module an ``open`` without 'U' while it runs."""
    import builtins

    from io_anim_bvh import import_bvh

    def open_text(file, mode="r", *args, **kwargs):
        return builtins.open(file, mode.replace("U", ""), *args, **kwargs)

    import_bvh.open = open_text
    try:
        yield
    finally:
        del import_bvh.open


class REALTIMEPOSE_PT_panel(bpy.types.Panel):
    bl_label = "Realtime Pose"
    bl_space_type = "VIEW_3D"
    bl_region_type = "UI"
    bl_category = "Pose"

    def draw(self, context):
        from . import live
        s = context.scene.realtime_pose
        col = self.layout.column()
        col.prop(s, "endpoint")
        col.prop(s, "record")
        col.prop(s, "server_key")
        col.prop(s, "client_key")
        link = live.current()
        if link is None:
            col.operator(REALTIMEPOSE_OT_connect.bl_idname)
        else:
            p = link.performer
            col.label(text=f"{p.frames} frames, {len(p.armatures)} tracks, {p.skipped + link.bad} skipped")
            col.operator(REALTIMEPOSE_OT_disconnect.bl_idname)
        col.separator()
        col.operator(REALTIMEPOSE_OT_import_mcap.bl_idname)
        col.operator(REALTIMEPOSE_OT_import_bvh.bl_idname)


_CLASSES = (RealtimePoseSettings, REALTIMEPOSE_OT_connect, REALTIMEPOSE_OT_disconnect,
            REALTIMEPOSE_OT_import_mcap, REALTIMEPOSE_OT_import_bvh, REALTIMEPOSE_PT_panel)


def register():
    for cls in _CLASSES:
        bpy.utils.register_class(cls)
    bpy.types.Scene.realtime_pose = PointerProperty(type=RealtimePoseSettings)


def unregister():
    from . import live
    live.stop()
    del bpy.types.Scene.realtime_pose
    for cls in reversed(_CLASSES):
        bpy.utils.unregister_class(cls)
