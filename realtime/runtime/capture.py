"""Capture process: decodes one source and hands inference only its newest frame.

Inference asks for a frame by sending ``ready`` on a DEALER socket; this process (ROUTER) answers
with the newest frame not yet sent. A frame replaced before anyone asked for it is dropped and
counted, so a slow consumer never sees a backlog (ZMQ_CONFLATE cannot do this: it does not
work with multipart messages, and the image travels as its own part). Files paced in real
time and live sources decode continuously; an unpaced file decodes only on request, so a
benchmark of throughput drops nothing. Frames are decoded on schedule (``grab``) but converted to
BGR (``retrieve``) only when sent, so a dropped 1080p frame costs just its decoding.
"""
from __future__ import annotations

import logging
import os
import time
from collections.abc import Callable

import cv2
import numpy as np
import zmq

from realtime.capture import CapturedFrame, SourceError, VideoSource
from realtime.outputs.preview import PreviewMaker
from realtime.runtime.child import EXIT_FATAL, Child
from realtime.transport.messages import KIND_EOS, KIND_FRAME, FrameMessage
from realtime.logs import Throttled
from realtime.transport.sockets import KIND_READY, MAX_REQUEST

_POLL_S = 0.1
#: After SIGTERM, how long to wait for inference to ask once more so the EOS goes downstream.
_STOP_GRACE_S = 2.0
#: Consumers (inference processes, one at a time, and its restarts) remembered: a peer that connects
#: again and again cannot grow this process's memory.
_MAX_CONSUMERS = 16


def main(child: Child, *, index: int, source_name: str, max_frames: int = 0, start_seq: int = 0,
         sent_before: int = 0, dropped_before: int = 0) -> int:
    """``*_before``: counts of the capture process this one replaces, so counters stay monotonic."""
    # FFmpeg's and OpenCV's own console lines (e.g. every refused RTSP connection) would drown the
    # structured log; each failure is reported once as our event instead.
    os.environ.setdefault("OPENCV_FFMPEG_LOGLEVEL", "-8")
    cv2.utils.logging.setLogLevel(cv2.utils.logging.LOG_LEVEL_ERROR)
    cfg = child.config.source
    try:
        source = VideoSource(cfg.uri, loop=cfg.loop, realtime=cfg.realtime,
                             reconnect_initial_s=cfg.reconnect_initial_s,
                             reconnect_max_s=cfg.reconnect_max_s,
                             stream_decode_threads=cfg.stream_decode_threads, start_seq=start_seq,
                             give_up_after_s=cfg.give_up_after_s,
                             on_event=lambda e: _report(child, dict(e)))
    except SourceError as e:
        child.event("source_error", logging.ERROR, error=str(e))
        return EXIT_FATAL
    # ROUTER_MANDATORY: sending to a consumer that is gone raises, and the next one is tried
    router = child.socket(zmq.ROUTER, bind=child.endpoints.bind_address(child.endpoints.frames[index]), hwm=4,
                          max_message=MAX_REQUEST, options={zmq.ROUTER_MANDATORY: 1})
    child.event("capture_started", uri=source.uri, kind=source.kind, width=source.width,
                height=source.height, fps=source.fps, start_seq=start_seq)
    preview = (PreviewMaker(child.socket(zmq.DEALER, connect=child.endpoints.preview, hwm=2,
                                                max_message=PreviewMaker.MAX_MESSAGE),
                            child.config.viewer, source_name, child.secret)
               if child.config.viewer.preview and child.endpoints.preview else None)
    on_demand = source.kind == "file" and not cfg.realtime
    pending: list[bytes] = []
    answered: dict[bytes, int] = {}  # last request number taken from each consumer (a re-ask repeats it)
    rejected = Throttled(child.log, "bad frame requests skipped")
    grabbed = False  # a frame is decoded but not yet converted to BGR (nor sent)
    frame: CapturedFrame | None = None  # converted, waiting for a live consumer
    sent, dropped = sent_before, dropped_before
    stop_at: float | None = None
    asked_once = False
    try:
        while True:
            held = grabbed or frame is not None
            finished = source.ended or child.stop.is_set() or (max_frames and sent >= max_frames)
            # A file starts playing when inference first asks, not while its models still load.
            asked_once = asked_once or bool(pending)
            want_read = not finished and (source.kind != "file" or asked_once) and (
                not on_demand or (pending and not held))
            wait = source.wait_s() if want_read else _POLL_S
            if router.poll(min(wait, _POLL_S) * 1000):
                for _ in range(100):  # a bounded number per turn: a flood cannot stall decoding
                    try:
                        identity, *parts = router.recv_multipart(zmq.NOBLOCK)
                    except zmq.Again:
                        break
                    if len(parts) != 2 or parts[0] != KIND_READY or not parts[1].isdigit() or len(parts[1]) > 18:
                        rejected(parts=len(parts))
                        continue
                    request = int(parts[1])
                    if identity not in pending and request > answered.get(identity, 0):
                        pending.append(identity)
                        answered.pop(identity, None)
                        answered[identity] = request
                        while len(answered) > _MAX_CONSUMERS:
                            gone = next(iter(answered))
                            del answered[gone]
                            if gone in pending:
                                pending.remove(gone)
            if want_read and source.wait_s() == 0 and source.grab():
                dropped += held
                grabbed, frame = True, None
            if pending and grabbed:
                grabbed = False
                frame = source.retrieve()
            if pending and frame is not None:
                message = FrameMessage(KIND_FRAME, source_name, index, frame.seq, frame.t_capture,
                                       dropped + source.skipped, {"capture": frame.t_capture, "queued": time.time()})
                image = np.ascontiguousarray(frame.image)
                header = message.header(image)
                if _send(pending, lambda who: router.send_multipart([who, header, image], copy=False,
                                                                    flags=zmq.NOBLOCK)):
                    sent += 1
                    if preview is not None:  # only while a viewer asks (realtime.outputs.preview)
                        preview.offer(frame.seq, frame.t_capture, image)
                    frame = None
            elif finished and pending and not held:
                reason = "stopped" if child.stop.is_set() else ("max_frames" if not source.ended
                                                                      else source.end_reason or "end_of_source")
                eos = _eos(source_name, index, reason)
                if not _send(pending, lambda who: router.send_multipart([who, eos], flags=zmq.NOBLOCK)):
                    continue
                child.event("capture_finished", reason=reason, sent=sent)
                child.beat(force=True, seq=source.seq, sent=sent, dropped=dropped + source.skipped, eos=True)
                time.sleep(0.2)
                return 0
            elif child.stop.is_set():
                stop_at = stop_at or time.monotonic()
                if time.monotonic() - stop_at > _STOP_GRACE_S:
                    return 0
            if preview is not None:
                preview.poll()
            child.beat(seq=source.seq, sent=sent, dropped=dropped + source.skipped,
                       connected=source.connected, reconnects=source.reconnects, bad=rejected.count)
    finally:
        if preview is not None:
            preview.close()
        source.close()
        router.close()


def _report(child: Child, event: dict) -> None:
    name = event.pop("event")
    child.event(name, logging.INFO if name == "reconnected" else logging.WARNING, **event)


def _send(pending: list[bytes], send: Callable[[bytes], None]) -> bool:
    """Send to the first consumer in ``pending`` still connected; False if none is."""
    while pending:
        try:
            send(pending.pop(0))
            return True
        except zmq.ZMQError:  # EHOSTUNREACH: it was restarted since it asked
            continue
    return False


def _eos(source_name: str, index: int, reason: str) -> bytes:
    return FrameMessage(KIND_EOS, source_name, index, t_capture=time.time(), reason=reason).header()
