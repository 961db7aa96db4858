"""Lifting worker: 2D people of one frame -> 3D poses and a metric root, all people in one batch.

Workers PULL from inference's PUSH (ZeroMQ hands each frame to the next free worker) and
PUSH results to the publisher, which puts frames back in order. The root is placed in the
camera's level frame (x right, y up against gravity, z horizontal towards the viewer, origin
at the camera; the frame of the lifter's joints) from the lifter's weak-perspective scale ``s``
(px per metre), the projected root ``(u, v)`` and the chosen camera pitch, with ``f`` from the
source's ``[[camera]]`` table or ``[source] focal_px`` or, when unknown, 0.8 x image width (a ~64 degree horizontal field of view,
typical of webcams) and the principal point at the image centre.
"""
from __future__ import annotations

import dataclasses
import math
import time
from typing import Any

import numpy as np
import zmq

from realtime.runtime.child import Child
from realtime.runtime.logs import fields
from realtime.skeleton import LSP14
from realtime.transport.sockets import KIND_EOS, make_socket, pack_header, unpack_header

#: Default focal length as a fraction of the image width when the camera is not calibrated.
DEFAULT_FOCAL_PER_WIDTH = 0.8


def main(child: Child) -> int:
    from realtime.lifting import Lifter, PosePrior

    cfg = child.config
    prior = PosePrior.load(cfg.lifting.prior or None)
    lifters: dict[str, Any] = {}  # by camera pitch: sources whose cameras look down differently

    def lifter_for(source: str) -> tuple[Any, float]:
        focal, pitch = cfg.camera_for(source)
        key = "unknown" if math.isnan(pitch) else f"{pitch:g}"
        if key not in lifters:
            lifters[key] = Lifter.from_config(dataclasses.replace(cfg.lifting, camera_pitch_deg=pitch), prior)
            lifters[key].lift(np.zeros((1, len(LSP14), 2)), np.ones((1, len(LSP14))))  # the first call is slow
        return lifters[key], focal

    for name in ["", *(c.name for c in cfg.camera)]:  # load the prior(s) and warm up before taking frames
        lifter_for(name)
    pull = make_socket(child.ctx, zmq.PULL, connect=child.endpoints.lift_in, hwm=2)
    push = make_socket(child.ctx, zmq.PUSH, connect=child.endpoints.lift_out, hwm=8)
    child.event("worker_started")
    frames = failed = 0
    try:
        while not child.stop.is_set():
            if pull.poll(100):
                message = unpack_header(pull.recv())
                if message["kind"] != KIND_EOS:
                    try:
                        lifter, focal = lifter_for(str(message.get("source", "")))
                        lift_frame(lifter, message, focal)
                    except Exception as e:  # one bad frame is published without 3D, never ends the stream
                        failed += 1
                        child.log.warning("lifting failed: frame published without 3D",
                                          extra=fields(seq=message.get("seq"), error=f"{type(e).__name__}: {e}"))
                        _without_3d(message)
                    frames += 1
                push.send(pack_header(message))
            child.beat(frames=frames, failed=failed)
        return 0
    finally:
        pull.close()
        push.close(linger=500)


def _without_3d(message: dict[str, Any]) -> None:
    for p in message["people"]:
        p["joints3d"] = p["uncertainty"] = p["root"] = None
    message["stages"]["lift"] = time.time()


def level_root(u: float, v: float, scale: float, focal: float, cx: float, cy: float,
               pitch_deg: float) -> list[float]:
    """The pelvis in the camera's *level* frame, the frame the lifter's joints are in.

    Weak perspective puts the pelvis at depth ``focal / scale`` on the ray through ``(u, v)`` in
    camera axes; turning those axes up by the camera's downward pitch gives gravity-up y and
    horizontal z, so root and joints share one frame (origin at the camera).
    """
    x, y, z = (u - cx) / scale, -(v - cy) / scale, -focal / scale
    c, s = math.cos(math.radians(pitch_deg)), math.sin(math.radians(pitch_deg))
    return [x, y * c + z * s, -y * s + z * c]


def lift_frame(lifter: Any, message: dict[str, Any], focal_px: float = 0.0) -> None:
    """Add ``joints3d``, ``uncertainty`` and ``root`` to each person of ``message`` (in place)."""
    people = message["people"]
    n_kp = len(LSP14)
    if people:
        kp = np.stack([np.frombuffer(p["keypoints2d"], np.float32).reshape(n_kp, 2) for p in people])
        conf = np.stack([np.frombuffer(p["confidence"], np.float32).reshape(n_kp) for p in people])
        out = lifter.lift(kp.astype(np.float64), conf.astype(np.float64))
        width, height = message["width"], message["height"]
        f = focal_px if focal_px > 0 else DEFAULT_FOCAL_PER_WIDTH * width
        cx, cy = width / 2.0, height / 2.0
        for i, p in enumerate(people):
            ok = bool(out.valid[i]) and np.all(np.isfinite(out.joints3d[i]))
            p["joints3d"] = out.joints3d[i].astype(np.float32).tobytes() if ok else None
            p["uncertainty"] = out.uncertainty[i].astype(np.float32).tobytes() if ok else None
            s = float(out.scale[i])
            u, v = (float(x) for x in out.translation[i])
            usable = ok and s > 0 and np.isfinite(u + v)
            p["root"] = level_root(u, v, s, f, cx, cy, float(out.elevation_deg[i])) if usable else None
    message["stages"]["lift"] = time.time()
