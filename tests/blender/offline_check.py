"""Inside Blender: import a BVH export with Blender's importer, and recordings (whole, cut short, not
one at all) with the add-on."""
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
from common import bone_heads, finish, keyed_frames, setup  # noqa: E402

cfg = setup()
import bpy  # noqa: E402

results = {"bvh": {}, "mcap": {}}
before = set(bpy.data.objects.keys())
assert bpy.ops.realtime_pose.import_bvh(filepath=cfg["bvh"]) == {"FINISHED"}
(arm,) = [bpy.data.objects[n] for n in set(bpy.data.objects.keys()) - before if bpy.data.objects[n].type == "ARMATURE"]
action = arm.animation_data.action
start, end = (int(round(v)) for v in action.frame_range)
results["bvh"] = {"bones": [b.name for b in arm.data.bones], "frame_start": start, "frame_end": end,
                  "scene_fps": bpy.context.scene.render.fps, "first": bone_heads(arm, [start])[start]}

assert bpy.ops.realtime_pose.import_mcap(filepath=cfg["mcap"]) == {"FINISHED"}
for obj in bpy.data.objects:
    if obj.name.startswith("recorded_"):
        frames = keyed_frames(obj)
        results["mcap"][obj.name] = {"keyed": frames, "heads": bone_heads(obj, frames)}

from realtime_pose import recording  # noqa: E402

performer, truncated = recording.import_mcap(cfg["cut_mcap"])
results["cut"] = {"frames": performer.frames, "truncated": truncated}
try:
    bpy.ops.realtime_pose.import_mcap(filepath=cfg["not_mcap"])
    results["not_mcap"] = "imported"
except RuntimeError as e:  # an operator that reports an error raises when called from Python
    results["not_mcap"] = str(e)
finish(cfg, results)
