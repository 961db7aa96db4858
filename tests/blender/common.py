"""Shared by the scripts the Blender tests run inside Blender (``blender -b --python ...``)."""
from __future__ import annotations

import importlib
import json
import sys
from pathlib import Path

MISSING_EXIT = 3


def setup() -> dict:
    """Read the test's config (path after ``--``), check the add-on's modules, install and enable it."""
    cfg = json.loads(Path(sys.argv[sys.argv.index("--") + 1]).read_text())
    sys.path[:0] = cfg.get("paths", [])
    for module in cfg.get("needs", []):
        try:
            importlib.import_module(module)
        except ImportError as e:
            print(f"MISSING {module}: {e}", flush=True)
            sys.exit(MISSING_EXIT)
    import bpy
    bpy.ops.preferences.addon_install(filepath=cfg["addon_zip"], overwrite=True)
    bpy.ops.preferences.addon_enable(module="realtime_pose")
    bpy.context.scene.render.fps = cfg["fps"]
    bpy.context.scene.render.fps_base = 1.0
    return cfg


def bone_heads(obj, frames: list[int]) -> dict[int, dict[str, list[float]]]:
    """World positions of every pose bone's head (and the Head bone's tail) at each frame."""
    import bpy
    out = {}
    for f in frames:
        bpy.context.scene.frame_set(f)
        heads = {b.name: list(obj.matrix_world @ b.head) for b in obj.pose.bones}
        heads["Head/tail"] = list(obj.matrix_world @ obj.pose.bones["Head"].tail)
        out[f] = heads
    return out


def keyed_frames(obj) -> list[int]:
    return sorted({int(round(k.co[0])) for fc in obj.animation_data.action.fcurves for k in fc.keyframe_points})


def finish(cfg: dict, results: dict) -> None:
    Path(cfg["out"], "results.json").write_text(json.dumps(results))


def live_results(link) -> dict:
    """What the live link did: counts, each armature's pose now and its keyed frames' bone heads."""
    import bpy
    p = link.performer
    live_pose = {track: {b.name: list(bpy.data.objects[name].matrix_world @ b.head)
                         for b in bpy.data.objects[name].pose.bones}
                 for track, name in p.armatures.items()}
    results = {"frames": p.frames, "skipped": p.skipped, "bad": link.bad, "last_seq": p.last_seq,
               "background": bpy.app.background, "live": live_pose, "tracks": {}}
    for track, name in p.armatures.items():
        obj = bpy.data.objects[name]
        frames = keyed_frames(obj)
        results["tracks"][track] = {"name": name, "keyed": frames, "heads": bone_heads(obj, frames)}
    return results

