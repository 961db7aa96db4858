"""The published stream: lifted frames re-ordered, people tracked and filtered, published, recorded.

:class:`Publisher` is everything after lifting for every source; the publisher process
(``realtime.runtime.publisher``) feeds it the lifting workers' messages and its XPUB socket.
Recording happens here, just before each publish, rather than in a recorder subscribing to the PUB
socket: the file then holds exactly the published messages (a PUB subscriber can silently miss the
first ones while its subscription propagates, or drop under its high-water mark), with no extra
copy or socket hop on a 2-core machine; the recorder's write-ahead log keeps every message a
killed process published (``realtime.record.recorder``).

The XPUB socket faces anyone who can connect, so it keeps no state a subscriber chooses: it runs
in manual mode (``ZMQ_XPUB_MANUAL``) and applies only subscriptions that can match one of the
topics this publisher sends (a prefix of one of them), a bounded set; any other subscription, and
any message that is not a subscription, is counted and dropped. Each turn of the loop reads at
most :data:`INBOUND_PER_TURN` of them, so a flood cannot keep the publisher from publishing.
Track ids come from one :class:`realtime.tracking.TrackIds` for every source (never the same id
for two people in a session, across sources and restarts), and a frame's ``seq`` is published once:
after a capture restart the frames it decodes again are counted in ``repeated`` and skipped.
"""
from __future__ import annotations

import logging
import time
from collections import deque
from typing import TYPE_CHECKING

import zmq

from realtime.config import Config
from realtime.lifting import PosePrior
from realtime.logs import fields
from realtime.record import Recorder
from realtime.outputs.preview import PREVIEW_REQUEST, PreviewRelay
from realtime.outputs.reorder import Reorder
from realtime.stats import LatencyWindow, stage_latencies
from realtime.tracking import track_people
from realtime.transport import schema
from realtime.transport.messages import KIND_EOS, PeopleMessage

if TYPE_CHECKING:
    from realtime.tracking import TrackIds

_INITIAL_WAIT_S = 0.5
#: Subscriptions and other inbound messages read from the XPUB socket per turn of the loop.
INBOUND_PER_TURN = 1000

log = logging.getLogger("realtime.publisher")


class Publisher:
    """Everything after lifting, for all sources: re-order, track, filter, publish, record."""

    def __init__(self, cfg: Config, sources: list[str], pub: zmq.Socket, recorder: Recorder | None,
                 prior: PosePrior, ids: "TrackIds | None" = None) -> None:
        """``prior``: the lifting setup's prior, whose mean pose is the skeleton message's rest pose;
        ``ids``: the session's track ids (None = counted from 1 in this object)."""
        from realtime.tracking import TrackFilter, TrackIds, Tracker

        self.sources = sources
        self.pub = pub
        self.recorder = recorder
        self.min_wait_s = cfg.runtime.reorder_wait_ms / 1e3
        # Until lifting times are known (the first frames are the slowest), wait generously.
        self.reorder = {s: Reorder(max(self.min_wait_s, _INITIAL_WAIT_S)) for s in sources}
        self._lift_s: deque[float] = deque(maxlen=50)
        self.ids = ids if ids is not None else TrackIds()
        self.trackers = {s: Tracker(config=cfg.tracking, ids=self.ids) for s in sources}
        self.topics = [schema.TOPIC_SKELETON, *(schema.frame_topic(s) for s in sources)]
        self._last_seq: dict[str, int] = {}
        self.filters = {s: TrackFilter(cfg.filter) for s in sources}
        self.skeleton = schema.pack(schema.Skeleton(rest_offsets=prior.rest_offsets()))
        self.skeleton_every_s = cfg.transport.skeleton_every_s
        self.latency = LatencyWindow()
        self.finished: set[str] = set()
        self.published = self.people = self.failed = self.repeated = 0
        #: Inbound messages on the XPUB socket that were dropped: subscriptions that can match no topic
        #: of ours, and messages that are not subscriptions at all.
        self.refused = {"subscriptions": 0, "other": 0}
        self._last_skeleton = 0.0
        #: Camera previews (``realtime.outputs.preview.PreviewRelay``), with ``[viewer] preview`` on.
        self.preview: PreviewRelay | None = None

    def on_subscriptions(self) -> None:
        """Apply the subscriptions waiting on the XPUB socket (at most :data:`INBOUND_PER_TURN`); a
        consumer that subscribes to the skeleton gets it at once, not up to ``skeleton_every_s`` later."""
        wanted = False
        for _ in range(INBOUND_PER_TURN):
            try:
                event = self.pub.recv(zmq.NOBLOCK)
            except zmq.Again:
                break
            if event == PREVIEW_REQUEST:  # a viewer's explicit request (realtime.outputs.preview)
                if self.preview is not None:
                    self.preview.requested()
                continue
            kind, topic = event[:1], event[1:]
            if kind not in (b"\x00", b"\x01"):
                self.refused["other"] += 1
                continue
            if not any(t.startswith(topic) for t in self.topics):
                self.refused["subscriptions"] += 1
                continue
            # manual mode: the (un)subscription applies to the peer it just came from
            self.pub.setsockopt(zmq.SUBSCRIBE if kind == b"\x01" else zmq.UNSUBSCRIBE, topic)
            wanted |= kind == b"\x01" and schema.TOPIC_SKELETON.startswith(topic)
        if wanted:
            self._send(schema.TOPIC_SKELETON, self.skeleton, time.time())
            self._last_skeleton = time.monotonic()

    def receive(self, message: PeopleMessage, now: float) -> None:
        if message.source not in self.reorder:
            raise ValueError(f"result for unknown source {message.source!r}")
        self.reorder[message.source].push(message.epoch, message.iseq, message, now)

    def flush(self, now: float) -> None:
        """Publish every frame that is due (in order) and the skeleton when it is time."""
        if time.monotonic() - self._last_skeleton >= self.skeleton_every_s:
            self._send(schema.TOPIC_SKELETON, self.skeleton, time.time())
            self._last_skeleton = time.monotonic()
        for source, reorder in self.reorder.items():
            for message in reorder.pop(now):
                if message.kind == KIND_EOS:
                    self.finished.add(source)
                    continue
                try:
                    self.publish(source, message)
                except Exception as e:  # a bad result is skipped and counted, the stream goes on
                    self.failed += 1
                    log.warning("frame skipped: %s", e, extra=fields(source=source, seq=message.seq))
        if self.recorder is not None:
            self.recorder.tick()

    def next_deadline(self) -> float | None:
        deadlines = [d for r in self.reorder.values() if (d := r.deadline()) is not None]
        return min(deadlines) if deadlines else None

    def publish(self, source: str, m: PeopleMessage) -> None:
        if m.seq <= self._last_seq.get(source, -1):   # decoded again by a restarted capture
            self.repeated += 1
            return
        self._last_seq[source] = m.seq
        t = m.t_capture
        people = m.people
        track_people(self.trackers[source], self.filters[source], t, people)
        stages = dict(m.stages)
        stages["track"] = time.time()
        frame = schema.Frame(source=source, seq=m.seq, t_capture=t, t_publish=time.time(), people=people,
                             dropped=m.dropped + self.reorder[source].lost, width=m.width, height=m.height,
                             stages=stages, focal_px=m.focal_px, pitch_deg=m.pitch_deg)
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
        """Record, then publish: whatever a subscriber got is in the recording, even after a SIGKILL."""
        if self.recorder is not None:
            self.recorder.write(topic, int(log_time * 1e9), payload, time.time_ns())
        self.pub.send_multipart([topic, payload])
