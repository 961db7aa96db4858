"""Inference process: owns the 2D networks (GPU or CPU) and one video follower for every source.

It asks each capture process for a frame only when it is free to process it (``ready``),
so every frame it sees is the newest one. The frames of all sources that are waiting go
through the networks together (one detector and one keypoint batch for every person in
every source); only with ``[runtime] batch_wait_ms`` > 0 is a frame held back, briefly, for
another source's. The 2D people of a frame go to the lifting workers as one msgpack message
(no image). ``iseq`` numbers the frames this process sent per source, consecutively, so the
publisher can tell a late result from a lost one; ``epoch`` changes when this process restarts.
"""
from __future__ import annotations

import time
from collections import deque
from typing import Any

import numpy as np
import zmq

from realtime.logs import Throttled, fields
from realtime.runtime.child import Child
from realtime.transport.messages import SIGNED_BY_2D, KIND_EOS, FrameMessage, MessageError, PeopleMessage
from realtime.transport.sockets import KIND_READY, MAX_FRAME

#: Ask again when a capture process has not answered for this long (it may have restarted).
_REASK_S = 0.25


def main(child: Child, *, sources: list[str]) -> int:
    from realtime.lifting import Camera, LiftingSetup
    from realtime.pose2d import PoseEstimator2D, VideoFollower

    cfg = child.config.pose2d
    cameras = [Camera(*child.config.camera_for(name)) for name in sources]
    lifting = LiftingSetup.from_config(child.config.lifting) if cfg.refine_3d else None
    estimator = PoseEstimator2D.create(config=cfg, lifting=lifting)
    follower = VideoFollower(estimator, sources=len(sources), cameras=cameras)
    lifted = estimator.lifting is not None      # the 3D feedback lifts every person: the workers need not
    started = time.perf_counter()
    estimator.warm_up(len(sources))             # before the first ask: a file starts playing at that ask
    child.event("inference_started", backend=estimator.backend, model=cfg.model, detector=cfg.detector,
                sources=len(sources), prior=lifting.source if lifted else "-",
                warm_up_s=round(time.perf_counter() - started, 2))
    push = child.socket(zmq.PUSH, bind=child.endpoints.bind_address(child.endpoints.lift_in), hwm=4)
    dealers = [child.socket(zmq.DEALER, connect=ep, hwm=2, max_message=MAX_FRAME)
               for ep in child.endpoints.frames[:len(sources)]]
    poller = zmq.Poller()
    for d in dealers:
        poller.register(d, zmq.POLLIN)
    epoch = time.time_ns()
    iseq = [0] * len(sources)
    asked = [0.0] * len(sources)
    done = [False] * len(sources)
    frames = people_total = failed = batches = 0
    rejected = Throttled(child.log, "bad frame messages skipped")
    dropped = [0] * len(sources)  # frames of each source dropped here (no free lifting worker)
    infer_ms: deque[float] = deque(maxlen=50)
    batch_wait_s = child.config.runtime.batch_wait_ms / 1e3

    requests = [0] * len(sources)

    def ask(i: int, again: bool = False) -> None:
        """Request the newest frame; a repeated request keeps its number, so capture answers it once."""
        requests[i] += not again
        dealers[i].send_multipart([KIND_READY, str(requests[i]).encode()])
        asked[i] = time.monotonic()

    def send(i: int, out: PeopleMessage, eos: bool) -> None:
        out.dropped += dropped[i]
        out.iseq = iseq[i]
        # A frame meeting busy workers is dropped; an end of stream waits a little for one.
        if push.poll(2000 if eos else 0, zmq.POLLOUT):
            push.send_multipart(out.pack(child.secret, SIGNED_BY_2D))
            iseq[i] += 1
        else:
            dropped[i] += 1

    while not push.poll(100, zmq.POLLOUT):  # no lifting worker connected yet: a frame now would be dropped
        if child.stop.is_set():
            return 0
        child.beat()
    for i in range(len(sources)):
        ask(i)
    try:
        while not child.stop.is_set() and not all(done):
            polled = time.monotonic()
            events = dict(poller.poll(100))
            waiting: list[tuple[int, PeopleMessage, np.ndarray]] = []
            for i, d in enumerate(dealers):
                if d not in events and not done[i] and time.monotonic() - asked[i] > _REASK_S:
                    ask(i, again=True)
            for i in _arrivals(dealers, events, done, asked, polled, batch_wait_s):
                try:
                    frame, image = FrameMessage.unpack(dealers[i].recv_multipart(copy=False))
                except MessageError as e:        # skipped and counted; the source is asked again
                    rejected(source=sources[i], error=str(e))
                    ask(i)
                    continue
                camera = cameras[i]
                out = PeopleMessage(frame.kind, sources[i], frame.seq, epoch, iseq[i], frame.t_capture,
                                    frame.dropped, stages=dict(frame.stages), focal_px=camera.focal_px,
                                    pitch_deg=camera.pitch_deg, lifted=lifted)
                if frame.kind == KIND_EOS:
                    done[i] = True
                    send(i, out, eos=True)
                else:
                    assert image is not None
                    out.stages["received"] = time.time()
                    waiting.append((i, out, image))
            if waiting:
                t0 = time.perf_counter()
                found, failures = _estimate(child, follower, {i: im for i, _, im in waiting})
                infer_ms.append((time.perf_counter() - t0) * 1e3)
                failed += failures
                batches += 1
                finished = time.time()
                for (i, out, image), people in zip(waiting, found):
                    out.stages["pose2d"] = finished
                    out.width, out.height = int(image.shape[1]), int(image.shape[0])
                    out.timings = {k: round(v, 3) for k, v in follower.timings(i).items()}
                    out.people = people
                    frames += 1
                    people_total += len(people)
                    send(i, out, eos=False)
                    ask(i)
            if child.beat_due or all(done):  # the last counters go out before the stage says it finished
                child.beat(force=all(done), frames=frames, batches=batches, people=people_total,
                           dropped=sum(dropped), failed=failed, bad=rejected.count, lifted=people_total if lifted else 0,
                           infer_ms_p50=float(np.median(infer_ms)) if infer_ms else 0.0)
        if all(done):
            child.event("inference_finished", frames=frames, batches=batches)
            time.sleep(0.2)
        return 0
    finally:
        for d in dealers:
            d.close()
        push.close(linger=1000)
        follower.close()
        estimator.close()


def _arrivals(dealers: list[zmq.Socket], events: dict[Any, int], done: list[bool], asked: list[float],
              polled: float, wait_s: float) -> list[int]:
    """The sources with a frame (or end of stream) to read: those in ``events`` and, when this stage
    is the bottleneck, the others that answer within ``wait_s``.

    The stage is the bottleneck when a frame was already waiting when it polled (``polled`` = the
    poll's start), or a source answered within ``wait_s`` of being asked (its frame was ready: its
    capture only had to convert and send it); the other sources then have theirs on the way too.
    A slower answer means the sources wait for their cameras and the stage has time to spare:
    waiting for another source would only add latency."""
    ready = [i for i, d in enumerate(dealers) if d in events]
    now = time.monotonic()
    if not ready or (now - polled > 1e-3 and min(now - asked[i] for i in ready) > wait_s):
        return ready
    others = [i for i in range(len(dealers)) if i not in ready and not done[i]]
    deadline = now + wait_s
    while others and (left := deadline - time.monotonic()) > 0:
        poller = zmq.Poller()
        for i in others:
            poller.register(dealers[i], zmq.POLLIN)
        late = dict(poller.poll(left * 1e3))
        ready += [i for i in others if dealers[i] in late]
        others = [i for i in others if dealers[i] not in late]
    return sorted(ready)


def _estimate(child: Child, follower: Any, frames: dict[int, np.ndarray]) -> tuple[list[list[Any]], int]:
    """The people of each source's frame (``frames``: source -> frame), in one batch, in the order of
    ``frames``; when the batch fails, each frame alone, so that one bad frame is published with
    nobody (and its source is followed afresh) and never takes the other sources' frames or the
    stream with it. Returns (people per frame, frames that failed)."""
    sources = len(follower.sources)
    try:
        batch = follower.estimate_sources([frames.get(i) for i in range(sources)])
        return [batch[i] for i in frames], 0
    except Exception:
        if len(frames) > 1:
            child.log.warning("batched 2D estimation failed: retrying the frames one by one")
    found, failed = [], 0
    for i, image in frames.items():
        try:
            found.append(follower.estimate_sources([image if j == i else None for j in range(sources)])[i])
        except Exception as e:
            failed += 1
            child.log.warning("2D estimation failed: frame published without people",
                              extra=fields(error=f"{type(e).__name__}: {e}"))
            follower.reset(i)
            found.append([])
    return found, failed
