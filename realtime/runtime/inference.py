"""Inference process: owns the 2D backend (GPU or CPU) and one stateful estimator per source.

It asks each capture process for a frame only when it is free to process it (``ready``),
so every frame it sees is the newest one; the 2D people of a frame go to the lifting
workers as one msgpack message (no image). ``iseq`` numbers the frames this process sent
per source, consecutively, so the publisher can tell a late result from a lost one;
``epoch`` changes when this process restarts.
"""
from __future__ import annotations

import time
from collections import deque
from typing import Any

import numpy as np
import zmq

from realtime.runtime.child import Child
from realtime.runtime.logs import fields
from realtime.transport.sockets import KIND_EOS, KIND_READY, make_socket, pack_header, recv_frame

#: Ask again when a capture process has not answered for this long (it may have restarted).
_REASK_S = 0.25


def main(child: Child, *, sources: list[str]) -> int:
    from realtime.pose2d import PoseEstimator2D

    cfg = child.config.pose2d
    estimators = [PoseEstimator2D.create(backend=cfg.backend, model=cfg.model, config=cfg) for _ in sources]
    child.event("inference_started", backend=estimators[0].backend, model=cfg.model, sources=len(sources))
    push = make_socket(child.ctx, zmq.PUSH, bind=child.endpoints.lift_in, hwm=4)
    dealers = [make_socket(child.ctx, zmq.DEALER, connect=ep, hwm=2) for ep in child.endpoints.frames[:len(sources)]]
    poller = zmq.Poller()
    for d in dealers:
        poller.register(d, zmq.POLLIN)
    epoch = time.time_ns()
    iseq = [0] * len(sources)
    asked = [0.0] * len(sources)
    done = [False] * len(sources)
    frames = people_total = dropped = failed = 0
    infer_ms: deque[float] = deque(maxlen=50)

    requests = [0] * len(sources)

    def ask(i: int, again: bool = False) -> None:
        """Request the newest frame; a repeated request keeps its number, so capture answers it once."""
        requests[i] += not again
        dealers[i].send_multipart([KIND_READY, str(requests[i]).encode()])
        asked[i] = time.monotonic()

    while not push.poll(100, zmq.POLLOUT):  # no lifting worker connected yet: a frame now would be dropped
        if child.stop.is_set():
            return 0
        child.beat()
    for i in range(len(sources)):
        ask(i)
    try:
        while not child.stop.is_set() and not all(done):
            events = dict(poller.poll(100))
            for i, d in enumerate(dealers):
                if d not in events:
                    if not done[i] and time.monotonic() - asked[i] > _REASK_S:
                        ask(i, again=True)
                    continue
                header, image = recv_frame(d.recv_multipart(copy=False))
                out: dict[str, Any] = {"epoch": epoch, "iseq": iseq[i], **header}
                out.pop("shape", None), out.pop("dtype", None)
                if header["kind"] == KIND_EOS:
                    done[i] = True
                else:
                    assert image is not None
                    out["stages"]["received"] = time.time()
                    t0 = time.perf_counter()
                    try:
                        people = estimators[i].estimate(image)
                    except Exception as e:  # one bad frame is published with nobody, never ends the stream
                        failed += 1
                        child.log.warning("2D estimation failed: frame published without people",
                                          extra=fields(seq=header.get("seq"), error=f"{type(e).__name__}: {e}"))
                        estimators[i].reset()
                        people = []
                    infer_ms.append((time.perf_counter() - t0) * 1e3)
                    out["stages"]["pose2d"] = time.time()
                    out.update(width=int(image.shape[1]), height=int(image.shape[0]),
                               timings={k: round(v, 3) for k, v in estimators[i].last_timings.items()},
                               people=[_person(p) for p in people])
                    frames += 1
                    people_total += len(people)
                    ask(i)
                out["dropped"] = header.get("dropped", 0) + dropped
                # A frame meeting busy workers is dropped; an EOS waits a little for one.
                if push.poll(2000 if header["kind"] == KIND_EOS else 0, zmq.POLLOUT):
                    push.send(pack_header(out))
                    iseq[i] += 1
                else:
                    dropped += 1
            if child.beat_due:
                child.beat(frames=frames, people=people_total, dropped=dropped, failed=failed,
                           infer_ms_p50=float(np.median(infer_ms)) if infer_ms else 0.0)
        if all(done):
            child.event("inference_finished", frames=frames)
            time.sleep(0.2)
        return 0
    finally:
        for d in dealers:
            d.close()
        push.close(linger=1000)
        for est in estimators:
            est.close()


def _person(p: Any) -> dict[str, Any]:
    return {"bbox": [float(v) for v in p.bbox], "score": float(p.score),
            "keypoints2d": np.asarray(p.keypoints, np.float32).tobytes(),
            "confidence": np.asarray(p.confidence, np.float32).tobytes()}

