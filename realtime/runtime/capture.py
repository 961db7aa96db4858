"""Capture process: decodes one source and hands inference only its newest frame.

Inference asks for a frame by sending ``ready`` on a DEALER socket; this process (ROUTER) answers
with the newest frame not yet sent. A frame replaced before anyone asked for it is dropped and
counted, so a slow consumer never sees a backlog (ZMQ_CONFLATE cannot do this: it does not
work with multipart messages, and the image travels as its own part). Files paced in real
time and live sources decode continuously; an unpaced file decodes only on request, so a
benchmark of throughput drops nothing.
"""
from __future__ import annotations

import logging
import time

import zmq

from realtime.capture import CapturedFrame, SourceError, VideoSource
from realtime.runtime.child import EXIT_FATAL, Child
from realtime.transport.sockets import KIND_EOS, KIND_FRAME, KIND_READY, make_socket, pack_header, send_frame

_POLL_S = 0.1
#: After SIGTERM, how long to wait for inference to ask once more so the EOS goes downstream.
_STOP_GRACE_S = 2.0


def main(child: Child, *, index: int, source_name: str, max_frames: int = 0, start_seq: int = 0,
         sent_before: int = 0) -> int:
    cfg = child.config.source
    try:
        source = VideoSource(cfg.uri, loop=cfg.loop, realtime=cfg.realtime,
                             reconnect_initial_s=cfg.reconnect_initial_s,
                             reconnect_max_s=cfg.reconnect_max_s, start_seq=start_seq,
                             on_event=lambda e: child.event(e.pop("event"), logging.WARNING, **e))
    except SourceError as e:
        child.event("source_error", logging.ERROR, error=str(e))
        return EXIT_FATAL
    router = make_socket(child.ctx, zmq.ROUTER, bind=child.endpoints.frames[index], hwm=4)
    child.event("capture_started", uri=source.uri, kind=source.kind, width=source.width,
                height=source.height, fps=source.fps, start_seq=start_seq)
    on_demand = source.kind == "file" and not cfg.realtime
    pending: list[bytes] = []
    held: CapturedFrame | None = None
    sent, dropped = sent_before, 0
    stop_at: float | None = None
    asked_once = False
    try:
        while True:
            finished = source.ended or child.stop.is_set() or (max_frames and sent >= max_frames)
            # A file starts playing when inference first asks, not while its models still load.
            asked_once = asked_once or bool(pending)
            want_read = not finished and (source.kind != "file" or asked_once) and (
                not on_demand or (pending and held is None))
            wait = source.wait_s() if want_read else _POLL_S
            if router.poll(min(wait, _POLL_S) * 1000):
                while router.poll(0):
                    identity, body = router.recv_multipart()[:2]
                    if body == KIND_READY and identity not in pending:
                        pending.append(identity)
            if want_read and source.wait_s() == 0:
                frame = source.read()
                if frame is not None:
                    dropped += held is not None
                    held = frame
            if pending and held is not None:
                header = {"kind": KIND_FRAME, "source": source_name, "index": index, "seq": held.seq,
                          "t_capture": held.t_capture, "dropped": dropped + source.skipped,
                          "stages": {"capture": held.t_capture, "queued": time.time()}}
                send_frame(router, header, held.image, prefix=[pending.pop(0)])
                held = None
                sent += 1
            elif finished and pending:
                reason = "stopped" if child.stop.is_set() else ("max_frames" if not source.ended else "end_of_source")
                router.send_multipart([pending.pop(0), _eos(source_name, index, reason)])
                child.event("capture_finished", reason=reason, sent=sent)
                child.beat(force=True, seq=source.seq, sent=sent, dropped=dropped + source.skipped, eos=True)
                time.sleep(0.2)
                return 0
            elif child.stop.is_set():
                stop_at = stop_at or time.monotonic()
                if time.monotonic() - stop_at > _STOP_GRACE_S:
                    return 0
            child.beat(seq=source.seq, sent=sent, dropped=dropped + source.skipped,
                       connected=source.connected, reconnects=source.reconnects)
    finally:
        source.close()
        router.close()


def _eos(source_name: str, index: int, reason: str) -> bytes:
    return pack_header({"kind": KIND_EOS, "source": source_name, "index": index, "reason": reason,
                        "t": time.time()})
