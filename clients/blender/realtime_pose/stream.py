"""Wire messages (msgpack maps, see docs/protocol.md) -> humanoid poses on one armature per track.

The add-on reads the wire schema itself (plain maps of lists) because the realtime package is not
installed inside Blender; only the rig (``humanoid.py``, numpy only) is shipped with it.
"""
from __future__ import annotations

import math

import msgpack
import numpy as np

from .armature import apply_pose, ensure_armature
from .humanoid import HumanoidRig, RigError

SCHEMA_VERSION = 1


class MessageError(ValueError):
    """A payload that is not a frame or skeleton of the supported schema version."""


def decode(payload: bytes) -> dict:
    try:
        d = msgpack.unpackb(payload, raw=False, strict_map_key=False)
    except Exception as e:  # msgpack raises several unrelated exception types
        raise MessageError(f"not msgpack ({type(e).__name__})") from None
    if not isinstance(d, dict) or d.get("type") not in ("frame", "skeleton"):
        raise MessageError("not a frame or skeleton message")
    if d.get("v") != SCHEMA_VERSION:
        raise MessageError(f"schema version {d.get('v')!r} (this add-on reads {SCHEMA_VERSION})")
    return d


class Performer:
    """Applies frames to armatures named ``<prefix><track id>``; keys them when ``fps`` is set.

    Key frame numbers are ``start_frame + (t_capture - first t_capture) * fps``, so the action
    keeps the recording's timing. Frames before the first skeleton message (which names the joints)
    are counted in ``waiting``; a person that cannot be posed is skipped and counted.
    """

    def __init__(self, prefix: str = "track_", start_frame: int | None = None, fps: float | None = None):
        self.prefix, self.start_frame, self.fps = prefix, start_frame, fps
        self.skeleton: dict | None = None
        self.rigs: dict[int, HumanoidRig] = {}
        self.armatures: dict[int, str] = {}
        self.frames = 0
        self.skipped = 0
        self.waiting = 0
        self.last_seq: int | None = None
        self._t0: float | None = None

    def handle(self, message: dict) -> None:
        if message["type"] == "skeleton":
            self.skeleton = message
            return
        if self.skeleton is None:  # joint names come with it; the runtime re-sends it every few seconds
            self.waiting += 1
            return
        if self._t0 is None:
            self._t0 = float(message["t_capture"])
        frame = None
        if self.fps:
            frame = self.start_frame + round((float(message["t_capture"]) - self._t0) * self.fps)
        for person in message.get("people", []):
            track, joints = person.get("id", -1), person.get("joints3d")
            if track < 0 or joints is None:
                continue
            try:
                self._apply(track, np.asarray(joints, dtype=np.float64), person.get("root"), frame)
            except (RigError, KeyError, TypeError, ValueError):
                self.skipped += 1
        self.frames += 1
        self.last_seq = message.get("seq")

    def _apply(self, track: int, joints: np.ndarray, root, frame: int | None) -> None:
        rig = self.rigs.get(track)
        if rig is None:
            skel = self.skeleton
            rig = HumanoidRig.for_stream(skel["joint_names"], skel["parents"], skel.get("rest_offsets", []), joints)
            self.rigs[track] = rig
        obj = ensure_armature(f"{self.prefix}{track}", rig)
        self.armatures[track] = obj.name
        root = None if root is None or any(not math.isfinite(v) for v in root) else np.asarray(root, dtype=np.float64)
        apply_pose(obj, rig.pose(joints, root), frame)

