"""Publisher process: the lifting workers' results in, the stream out (ZeroMQ XPUB), the recording.

The work itself (re-ordering, tracking, filtering, publishing, recording) is
``realtime.outputs.publisher.Publisher``; this process owns its sockets and its lifecycle. A restarted
publisher records into ``<name>.<n>.mcap`` beside the first file instead of overwriting it, and the
supervisor joins the parts into the one file at the end of the run (``realtime.record.parts``).
"""
from __future__ import annotations

import time

import zmq

from realtime.lifting import LiftingSetup
from realtime.logs import Throttled
from realtime.outputs.preview import PreviewRelay
from realtime.outputs.publisher import Publisher
from realtime.record import Recorder, part_path
from realtime.runtime.child import Child
from realtime.tracking import TrackIds
from realtime.transport import schema
from realtime.transport.messages import SIGNED_BY_LIFTING, MessageError, PeopleMessage
from realtime.transport.sockets import MAX_PEOPLE_MESSAGE, MAX_SUBSCRIPTION

_POLL_MS = 50


def main(child: Child, *, sources: list[str], record_path: str = "", ids_path: str = "") -> int:
    """``ids_path``: the run's track-id counter (kept by the supervisor across restarts of this process)."""
    pull = child.socket(zmq.PULL, bind=child.endpoints.bind_address(child.endpoints.lift_out), hwm=16,
                        max_message=MAX_PEOPLE_MESSAGE)
    # manual mode: subscriptions reach us, and only those we apply take effect
    pub = child.socket(zmq.XPUB, bind=child.endpoints.publish, hwm=256, max_message=MAX_SUBSCRIPTION,
                       options={zmq.XPUB_MANUAL: 1})
    recorder = None
    if record_path:
        recorder = Recorder(part_path(record_path, child.restarts), child.config.record.flush_every_s)
    lifting = LiftingSetup.from_config(child.config.lifting)
    publisher = Publisher(child.config, sources, pub, recorder, lifting.prior,
                          ids=TrackIds(ids_path or None))
    if child.config.viewer.preview and child.endpoints.preview:  # camera previews, only while a viewer asks
        relay = child.socket(zmq.ROUTER, bind=child.endpoints.bind_address(child.endpoints.preview), hwm=8,
                             max_message=PreviewRelay.MAX_MESSAGE)
        publisher.preview = PreviewRelay(relay, pub, sources, child.secret)
        publisher.topics += [schema.preview_topic(s) for s in sources]
    child.event("publisher_started", publish=child.endpoints.publish, curve=pub.curve_server == 1,
                record=str(recorder.path) if recorder else "", prior=lifting.source)
    poller = zmq.Poller()
    poller.register(pull, zmq.POLLIN)
    poller.register(pub, zmq.POLLIN)
    if publisher.preview is not None:
        poller.register(publisher.preview.sock, zmq.POLLIN)
    rejected = Throttled(child.log, "bad result messages skipped")
    try:
        while not child.stop.is_set() and publisher.finished != set(sources):
            deadline = publisher.next_deadline()
            timeout = _POLL_MS if deadline is None else max(0.0, min(_POLL_MS, (deadline - time.time()) * 1e3))
            ready = dict(poller.poll(timeout))
            if pub in ready:
                publisher.on_subscriptions()
            if publisher.preview is not None and publisher.preview.sock in ready:
                publisher.preview.on_readable()
            if pull in ready:
                while pull.poll(0):
                    try:
                        message = PeopleMessage.unpack(pull.recv_multipart(), child.secret, SIGNED_BY_LIFTING)
                        publisher.receive(message, time.time())
                    except (MessageError, ValueError) as e:  # skipped and counted, never ends the process
                        rejected(error=str(e))
            publisher.flush(time.time())
            if child.beat_due:
                child.beat(**_counters(publisher, rejected))
        if publisher.finished == set(sources):
            child.event("end_of_stream", published=publisher.published)
        return 0
    finally:
        if recorder is not None:
            recorder.close()
        if publisher.preview is not None:
            publisher.preview.close()
        child.beat(force=True, **_counters(publisher, rejected))  # the final counters, all of them
        pull.close()
        pub.close(linger=500)


def _counters(publisher: Publisher, rejected: Throttled) -> dict:
    """The publisher's heartbeat counters (the supervisor's status line reads them)."""
    counters = dict(published=publisher.published, people=publisher.people, bad=rejected.count,
                    failed=publisher.failed, lost=sum(r.lost for r in publisher.reorder.values()),
                    repeated=publisher.repeated, refused=dict(publisher.refused),
                    latency=publisher.latency.summary())
    if publisher.preview is not None:
        relay = publisher.preview
        counters["previews"] = {"published": relay.published, "bad": relay.bad, "requests": relay.requests}
    return counters
