"""Lifting worker: 2D people of one frame -> 3D poses and a metric root, all people in one batch.

Workers PULL from inference's PUSH (ZeroMQ hands each frame to the next free worker) and
PUSH results to the publisher, which puts frames back in order. The lifting itself (the prior,
one lifter per camera pitch, the root placed with the source's camera) is ``realtime.lifting``;
this process only receives, lifts and forwards. People the 2D stage already lifted (its 3D feedback
uses the same lifter) keep their 3D pose: nobody is lifted twice. A malformed message is skipped and
counted; it never stops the worker.
"""
from __future__ import annotations

import time

import zmq

from realtime.lifting import Camera, LiftingSetup
from realtime.logs import Throttled, fields
from realtime.runtime.child import Child
from realtime.transport.messages import SIGNED_BY_2D, SIGNED_BY_LIFTING, KIND_EOS, MessageError, PeopleMessage
from realtime.transport.sockets import MAX_PEOPLE_MESSAGE


def main(child: Child) -> int:
    cfg = child.config
    lifting = LiftingSetup.from_config(cfg.lifting)
    for name in ["", *(c.name for c in cfg.camera)]:   # every source camera's lifter, before taking frames
        lifting.lifter(cfg.camera_for(name)[1])
    pull = child.socket(zmq.PULL, connect=child.endpoints.lift_in, hwm=2, max_message=MAX_PEOPLE_MESSAGE)
    push = child.socket(zmq.PUSH, connect=child.endpoints.lift_out, hwm=8)
    child.event("worker_started", prior=lifting.source)
    frames = failed = lifted = reused = 0
    rejected = Throttled(child.log, "bad messages skipped")
    try:
        while not child.stop.is_set():
            if pull.poll(100):
                try:
                    message = PeopleMessage.unpack(pull.recv_multipart(), child.secret, SIGNED_BY_2D)
                except MessageError as e:          # skipped and counted: one bad message never ends a worker
                    rejected(error=str(e))
                    continue
                if message.kind != KIND_EOS:
                    try:
                        if message.lifted:
                            reused += len(message.people)
                        else:
                            lift_frame(lifting, message)
                            lifted += len(message.people)
                    except Exception as e:  # one bad frame is published without 3D, never ends the stream
                        failed += 1
                        child.log.warning("lifting failed: frame published without 3D",
                                          extra=fields(seq=message.seq, error=f"{type(e).__name__}: {e}"))
                        for p in message.people:
                            p.joints3d = p.uncertainty = p.root = p.pitch_deg = None
                    message.stages["lift"] = time.time()
                    frames += 1
                push.send_multipart(message.pack(child.secret, SIGNED_BY_LIFTING))
            child.beat(frames=frames, failed=failed, bad=rejected.count, lifted=lifted, reused=reused)
        return 0
    finally:
        child.beat(force=True, frames=frames, failed=failed, bad=rejected.count, lifted=lifted, reused=reused)
        pull.close()
        push.close(linger=500)


def lift_frame(lifting: LiftingSetup, message: PeopleMessage) -> None:
    """Each person's 3D pose, per-joint uncertainty and root, in place, with the lifter for the
    message's camera pitch and the root placed with its camera."""
    lifting.lift_people(message.people, Camera(message.focal_px, message.pitch_deg), message.width,
                        message.height, message.source)
