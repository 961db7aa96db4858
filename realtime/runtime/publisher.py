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
from realtime.logs import fields
from realtime.outputs.preview import PreviewRelay
from realtime.outputs.publisher import Publisher
from realtime.record import Recorder, part_path
from realtime.runtime.child import Child
from realtime.transport.messages import MessageError, PeopleMessage
from realtime.transport.sockets import make_socket

_POLL_MS = 50


def main(child: Child, *, sources: list[str], record_path: str = "") -> int:
    pull = make_socket(child.ctx, zmq.PULL, bind=child.endpoints.bind_address(child.endpoints.lift_out), hwm=16)
    pub = make_socket(child.ctx, zmq.XPUB, bind=child.endpoints.publish, hwm=256)
    pub.setsockopt(zmq.XPUB_VERBOSE, 1)  # every subscription, not only a topic's first, reaches us
    recorder = None
    if record_path:
        recorder = Recorder(part_path(record_path, child.restarts), child.config.record.flush_every_s)
    lifting = LiftingSetup.from_config(child.config.lifting)
    publisher = Publisher(child.config, sources, pub, recorder, lifting.prior)
    if child.config.viewer.preview and child.endpoints.preview:  # camera previews, only while a viewer asks
        publisher.preview = PreviewRelay(child.ctx, child.endpoints.bind_address(child.endpoints.preview), pub,
                                         sources)
    child.event("publisher_started", publish=child.endpoints.publish,
                record=str(recorder.path) if recorder else "", prior=lifting.source)
    poller = zmq.Poller()
    poller.register(pull, zmq.POLLIN)
    poller.register(pub, zmq.POLLIN)
    if publisher.preview is not None:
        poller.register(publisher.preview.sock, zmq.POLLIN)
    bad = 0
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
                        publisher.receive(PeopleMessage.unpack(pull.recv()), time.time())
                    except (MessageError, ValueError) as e:  # skipped and counted, never ends the process
                        bad += 1
                        if bad <= 10 or bad % 100 == 0:
                            child.log.warning("bad result message skipped", extra=fields(bad=bad, error=str(e)))
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
        if publisher.preview is not None:
            publisher.preview.close()
        child.beat(force=True, published=publisher.published, latency=publisher.latency.summary())
        pull.close()
        pub.close(linger=500)
