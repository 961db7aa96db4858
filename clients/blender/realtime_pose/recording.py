"""Import a recorded session (MCAP, msgpack payloads) as keyed armature actions, one per track."""
from __future__ import annotations

import struct

import bpy

from .stream import MessageError, Performer, decode


def import_mcap(path: str, start_frame: int = 1) -> tuple[Performer, bool]:
    """Key every frame of the recording at the scene's frame rate.

    Returns the performer (its counts) and whether the file was cut short (a killed recorder):
    every message before the cut is still imported.
    """
    from mcap.exceptions import McapError
    from mcap.reader import NonSeekingReader
    scene = bpy.context.scene
    performer = Performer(prefix="recorded_", start_frame=start_frame, fps=scene.render.fps / scene.render.fps_base)
    truncated = False
    with open(path, "rb") as f:
        try:
            # in file order, not through the summary: a cut file has none, but its chunks are still good
            for _schema, _channel, message in NonSeekingReader(f).iter_messages(log_time_order=False):
                try:
                    performer.handle(decode(message.data))
                except MessageError:
                    performer.skipped += 1
        except (McapError, EOFError, struct.error) as e:
            if performer.frames == 0 and performer.skeleton is None:
                raise ValueError(f"{path}: not a readable MCAP recording ({e})") from None
            truncated = True
    if performer.frames == 0:
        raise ValueError(f"{path}: no frames with a skeleton message before them")
    last = max((fc.range()[1] for name in performer.armatures.values()
                for fc in bpy.data.objects[name].animation_data.action.fcurves), default=start_frame)
    scene.frame_start, scene.frame_end = start_frame, int(last)
    return performer, truncated
