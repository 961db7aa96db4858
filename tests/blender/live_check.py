"""Inside Blender: connect the add-on to the test's ZeroMQ publisher, key every frame, report poses.

In background mode (``blender -b``) Blender runs no event loop and timers never fire, so this
script calls the add-on's registered timer callback itself, as Blender's loop would. With the UI
(under Xvfb) Blender's own loop fires it and a second timer waits for the frames.
"""
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
from common import finish, live_results, setup  # noqa: E402

cfg = setup()
import bpy  # noqa: E402
from realtime_pose import live  # noqa: E402

scene = bpy.context.scene
scene.frame_current = 1
settings = scene.realtime_pose
settings.endpoint = cfg["endpoint"]
settings.record = True
assert bpy.ops.realtime_pose.connect() == {"FINISHED"}
assert bpy.app.timers.is_registered(live.tick), "the add-on did not register its timer"
out = Path(cfg["out"])
(out / "connected").touch()
link = live.current()
deadline = time.monotonic() + cfg["timeout_s"]


def waiting() -> bool:
    if link.performer.skeleton is not None and not (out / "skeleton").exists():
        (out / "skeleton").touch()
    return time.monotonic() < deadline and link.performer.frames < cfg["frames"]


def report() -> None:
    bpy.context.view_layer.update()
    results = live_results(link)
    assert bpy.ops.realtime_pose.disconnect() == {"FINISHED"}
    assert not bpy.app.timers.is_registered(live.tick)
    finish(cfg, results)


if bpy.app.background:
    while waiting():
        interval = live.tick()
        assert interval is not None, "the timer asked to stop"
        time.sleep(interval)
    report()
else:
    def watch():
        if waiting():
            return 0.05
        report()
        bpy.ops.wm.quit_blender()
        return None

    bpy.app.timers.register(watch, first_interval=0.05)
