"""Tracker/publisher process: re-orders lifted frames, tracks and filters people, publishes, records.

Recording happens here, in-process, right after each publish rather than in a recorder
process subscribing to the PUB socket: the file then holds exactly the published messages
(a PUB subscriber can silently miss the first ones while its subscription propagates, or
drop under its high-water mark), with no extra copy or socket hop on a 2-core machine.
The MCAP writer closes a chunk at least every ``[record] flush_every_s``, so killing this
process loses at most that much; a restarted publisher records into ``<name>.<n>.mcap``
beside the first file instead of overwriting it, and the supervisor joins the parts into the
one file at the end of the run (``realtime.record.parts``).
"""
from __future__ import annotations

import logging
import time
from collections import deque
from typing import Any

import numpy as np
import zmq

from realtime.record import Recorder, part_path
from realtime.runtime.child import Child
from realtime.runtime.logs import fields
from realtime.runtime.reorder import Reorder
from realtime.runtime.stats import LatencyWindow, stage_latencies
from realtime.skeleton import JOINTS3D, LSP14, PARENT_INDEX3D
from realtime.transport import schema
from realtime.transport.sockets import KIND_EOS, make_socket, unpack_header

_POLL_MS = 50
_INITIAL_WAIT_S = 0.5

log = logging.getLogger("realtime.publisher")


class Publisher:
    """Everything after lifting, for all sources: re-order, track, filter, publish, record."""

    def __init__(self, child: Child, sources: list[str], pub: zmq.Socket, recorder: Recorder | None) -> None:
        from realtime.tracking import TrackFilter, Tracker

        cfg = child.config
        self.sources = sources
        self.pub = pub
        self.recorder = recorder
        self.min_wait_s = cfg.runtime.reorder_wait_ms / 1e3
        # Until lifting times are known (the first frames are the slowest), wait generously.
        self.reorder = {s: Reorder(max(self.min_wait_s, _INITIAL_WAIT_S)) for s in sources}
        self._lift_s: deque[float] = deque(maxlen=50)
        self.trackers = {s: Tracker(config=cfg.tracking) for s in sources}
        self.filters = {s: TrackFilter(cfg.filter) for s in sources}
        self.skeleton = schema.pack(schema.Skeleton(rest_offsets=rest_offsets(cfg.lifting.prior)))
        self.skeleton_every_s = cfg.transport.skeleton_every_s
        self.latency = LatencyWindow()
        self.finished: set[str] = set()
        self.published = self.people = self.failed = 0
        self._last_skeleton = 0.0

    def on_subscriptions(self) -> None:
        """The XPUB socket hands over each new subscription: a consumer that subscribes to the
        skeleton gets it at once (sent on connect), not up to ``skeleton_every_s`` later."""
        wanted = False
        while self.pub.poll(0):
            event = self.pub.recv()
            wanted |= event[:1] == b"\x01" and schema.TOPIC_SKELETON.startswith(event[1:])
        if wanted:
            self._send(schema.TOPIC_SKELETON, self.skeleton, time.time())
            self._last_skeleton = time.monotonic()

    def receive(self, message: dict[str, Any], now: float) -> None:
        source = message.get("source")
        if source not in self.reorder:
            raise ValueError(f"result for unknown source {source!r}")
        self.reorder[source].push(int(message["epoch"]), int(message["iseq"]), message, now)

    def flush(self, now: float) -> None:
        """Publish every frame that is due (in order) and the skeleton when it is time."""
        if time.monotonic() - self._last_skeleton >= self.skeleton_every_s:
            self._send(schema.TOPIC_SKELETON, self.skeleton, time.time())
            self._last_skeleton = time.monotonic()
        for source, reorder in self.reorder.items():
            for message in reorder.pop(now):
                if message["kind"] == KIND_EOS:
                    self.finished.add(source)
                    continue
                try:
                    self.publish(source, message)
                except Exception as e:  # a bad result is skipped and counted, the stream goes on
                    self.failed += 1
                    log.warning("frame skipped: %s", e, extra=fields(source=source, seq=message.get("seq")))
        if self.recorder is not None:
            self.recorder.tick()

    def next_deadline(self) -> float | None:
        deadlines = [d for r in self.reorder.values() if (d := r.deadline()) is not None]
        return min(deadlines) if deadlines else None

    def publish(self, source: str, m: dict[str, Any]) -> None:
        t = float(m["t_capture"])
        people = [_person(p) for p in m["people"]]
        ids = self.trackers[source].update(t, [{"keypoints2d": p.keypoints2d, "confidence": p.confidence,
                                                "bbox": np.asarray(p.bbox)} for p in people])
        filt = self.filters[source]
        for p, track_id in zip(people, ids):
            if track_id is None:
                continue
            p.track_id = track_id
            if p.joints3d is not None:
                p.joints3d, p.root = filt.update(track_id, t, p.joints3d, p.root)
        filt.forget(self.trackers[source].active_ids)
        stages = dict(m["stages"])
        stages["track"] = time.time()
        frame = schema.Frame(source=source, seq=int(m["seq"]), t_capture=t, t_publish=time.time(),
                             people=people, dropped=int(m.get("dropped", 0)) + self.reorder[source].lost,
                             width=int(m["width"]), height=int(m["height"]), stages=stages)
        self._send(schema.frame_topic(source), schema.pack(frame), t)
        self.latency.add(stage_latencies(frame.stages, frame.t_publish))
        self._adapt_wait(stages)
        self.published += 1
        self.people += len(people)

    def _adapt_wait(self, stages: dict[str, float]) -> None:
        """Wait for a missing frame at least 1.5 x the slowest recent lifting time: a frame that is
        merely slow is never given up for lost; a really lost one (killed worker) still is, soon."""
        if "lift" in stages and "pose2d" in stages:
            self._lift_s.append(stages["lift"] - stages["pose2d"])
            wait = max(self.min_wait_s, 1.5 * max(self._lift_s))
            for reorder in self.reorder.values():
                reorder.wait_s = wait

    def _send(self, topic: bytes, payload: bytes, log_time: float) -> None:
        self.pub.send_multipart([topic, payload])
        if self.recorder is not None:
            self.recorder.write(topic, int(log_time * 1e9), payload, time.time_ns())


def rest_offsets(prior_path: str) -> list[list[float]]:
    """Offsets from parent (metres) of the pose prior's most probable mean pose; [] without a prior."""
    from realtime.lifting import PosePrior, PriorError

    try:
        prior = PosePrior.load(prior_path or None)
    except PriorError as e:
        log.warning("skeleton message without rest offsets: %s", e)
        return []
    pose = prior.means[int(np.argmax(prior.weights))] * prior.metric_scale
    return [[0.0, 0.0, 0.0] if parent < 0 else (pose[i] - pose[parent]).round(4).tolist()
            for i, parent in enumerate(PARENT_INDEX3D)]


def _person(p: dict[str, Any]) -> schema.Person:
    n = len(LSP14)
    j3 = p.get("joints3d")
    unc = p.get("uncertainty")
    root = p.get("root")
    return schema.Person(
        track_id=-1, score=float(p["score"]),
        keypoints2d=np.frombuffer(p["keypoints2d"], np.float32).reshape(n, 2),
        confidence=np.frombuffer(p["confidence"], np.float32).reshape(n),
        joints3d=None if j3 is None else np.frombuffer(j3, np.float32).reshape(len(JOINTS3D), 3),
        uncertainty=None if unc is None else np.frombuffer(unc, np.float32).reshape(len(JOINTS3D)),
        root=None if root is None else np.asarray(root, np.float64),
        bbox=tuple(float(v) for v in p["bbox"]))


def main(child: Child, *, sources: list[str], record_path: str = "") -> int:
    pull = make_socket(child.ctx, zmq.PULL, bind=child.endpoints.bind_address(child.endpoints.lift_out), hwm=16)
    pub = make_socket(child.ctx, zmq.XPUB, bind=child.endpoints.publish, hwm=256)
    pub.setsockopt(zmq.XPUB_VERBOSE, 1)  # every subscription, not only a topic's first, reaches us
    recorder = None
    if record_path:
        recorder = Recorder(part_path(record_path, child.restarts), child.config.record.flush_every_s)
    publisher = Publisher(child, sources, pub, recorder)
    child.event("publisher_started", publish=child.endpoints.publish,
                record=str(recorder.path) if recorder else "")
    poller = zmq.Poller()
    poller.register(pull, zmq.POLLIN)
    poller.register(pub, zmq.POLLIN)
    bad = 0
    try:
        while not child.stop.is_set() and publisher.finished != set(sources):
            deadline = publisher.next_deadline()
            timeout = _POLL_MS if deadline is None else max(0.0, min(_POLL_MS, (deadline - time.time()) * 1e3))
            ready = dict(poller.poll(timeout))
            if pub in ready:
                publisher.on_subscriptions()
            if pull in ready:
                while pull.poll(0):
                    try:
                        publisher.receive(unpack_header(pull.recv()), time.time())
                    except (ValueError, KeyError, TypeError) as e:
                        bad += 1
                        child.log.warning("bad result message skipped: %s", e)
            publisher.flush(time.time())
            if child.beat_due:
                child.beat(published=publisher.published, people=publisher.people, bad=bad,
                           failed=publisher.failed, lost=sum(r.lost for r in publisher.reorder.values()),
                           latency=publisher.latency.summary())
        if publisher.finished == set(sources):
            child.event("end_of_stream", published=publisher.published)
        return 0
    finally:
        if recorder is not None:
            recorder.close()
        child.beat(force=True, published=publisher.published, latency=publisher.latency.summary())
        pull.close()
        pub.close(linger=500)
