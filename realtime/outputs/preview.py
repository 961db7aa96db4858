"""Camera previews for viewers: made in the capture processes, only while a viewer asks for them.

The images live in capture (and inference); the publisher sees only people. A viewer with a browser
connected sends the plain message :data:`PREVIEW_REQUEST` up its XSUB socket to the publisher's XPUB
about every second (a lease: no per-subscriber state, one timestamp). Each capture process asks the
publisher, twice a second over a DEALER -> ROUTER pair, whether the lease is live; only then does it
downscale and JPEG-encode a frame it has just handed to inference, at most ``[viewer] preview_fps``
times a second, and send it to the publisher, which checks it and publishes it on
``preview/<source>`` (never recorded); previews are signed with the run's secret like the people
messages (``realtime.transport.messages``), so a peer that reaches the relay's socket cannot
publish an image of its own. So nobody pays for an image that nobody looks at: without
``[viewer] preview`` the sockets do not even exist, and with it but no browser the cost is the
twice-a-second question. Encoding in capture, not inference, keeps it off the 2D stage, the
bottleneck, and runs it beside the networks.
"""
from __future__ import annotations

import time

import cv2
import msgpack
import numpy as np
import zmq

from realtime.config import ViewerConfig
from realtime.transport.messages import SIGNED_BY_CAPTURE, sign, verify
from realtime.transport.schema import MAX_PREVIEW_BYTES, Preview, SchemaError, pack, preview_topic

#: What a viewer sends up its XSUB socket to ask for previews (renewed while a browser is connected).
PREVIEW_REQUEST = b"realtime-preview"
#: A request keeps previews coming this long.
LEASE_S = 3.0
#: How often a capture process asks whether previews are wanted.
ASK_EVERY_S = 0.5
_ASK, _YES, _NO = b"?", b"1", b"0"


class PreviewMaker:
    """Capture side: asks the publisher whether a viewer wants previews; encodes at most ``preview_fps``
    a second while one does. Every send is non-blocking: a missing publisher never stalls capture."""

    #: Largest message the maker's socket takes: the answers are one byte, but the limit applies to
    #: the connection handshake's READY command too (~30 bytes from a ROUTER), so not smaller.
    MAX_MESSAGE = 64

    def __init__(self, sock: zmq.Socket, cfg: ViewerConfig, source: str, secret: bytes) -> None:
        """``sock``: a DEALER connected to the publisher's preview socket; ``secret``: the run's, to sign with."""
        self.cfg = cfg
        self.source = source
        self.secret = secret
        self.sock = sock
        self.wanted_until = 0.0
        self._asked = 0.0
        self._last = -1e9
        self.sent = 0

    @property
    def wanted(self) -> bool:
        return time.monotonic() < self.wanted_until

    def poll(self) -> None:
        """Read the publisher's answers and ask again when due; call it on every loop turn."""
        now = time.monotonic()
        while self.sock.poll(0):
            if self.sock.recv() == _YES:
                self.wanted_until = now + 2 * ASK_EVERY_S
        if now - self._asked >= ASK_EVERY_S:
            self._asked = now
            try:
                self.sock.send(_ASK, zmq.NOBLOCK)
            except zmq.Again:
                pass

    def offer(self, seq: int, t_capture: float, image: np.ndarray) -> bool:
        """Encode and send ``image`` (BGR) as the preview of frame ``seq`` if one is wanted and due."""
        now = time.monotonic()
        if now >= self.wanted_until or now - self._last < 1.0 / self.cfg.preview_fps:
            return False
        self._last = now
        jpeg = encode(image, self.cfg.preview_width, self.cfg.preview_quality)
        body = pack(Preview(self.source, seq, t_capture, int(image.shape[1]), int(image.shape[0]), jpeg))
        try:
            self.sock.send_multipart([body, sign(self.secret, SIGNED_BY_CAPTURE, body)], zmq.NOBLOCK)
        except zmq.Again:
            return False
        self.sent += 1
        return True

    def close(self) -> None:
        self.sock.close(0)


def encode(image: np.ndarray, width: int, quality: int) -> bytes:
    """A JPEG of the BGR ``image`` at most ``width`` pixels wide (INTER_AREA: no aliasing when shrinking)."""
    h, w = image.shape[:2]
    if w > width:
        image = cv2.resize(image, (width, max(1, round(h * width / w))), interpolation=cv2.INTER_AREA)
    ok, buf = cv2.imencode(".jpg", image, [cv2.IMWRITE_JPEG_QUALITY, int(quality)])
    if not ok:
        raise ValueError("JPEG encoding failed")
    return buf.tobytes()


class PreviewRelay:
    """Publisher side: holds the viewers' lease, answers the captures' question, and publishes the
    previews they send (checked against the schema and the run's sources) on the stream."""

    #: Largest message the relay's socket takes: a larger one drops its peer.
    MAX_MESSAGE = MAX_PREVIEW_BYTES + (64 << 10)

    def __init__(self, sock: zmq.Socket, pub: zmq.Socket, sources: list[str], secret: bytes) -> None:
        """``sock``: a ROUTER bound where the captures connect (at most :attr:`MAX_MESSAGE` a message);
        ``secret``: the run's, which every preview must be signed with."""
        self.sock = sock
        self.secret = secret
        self.pub = pub
        self.sources = set(sources)
        self.until = 0.0
        self.published = self.bad = self.requests = 0

    @property
    def wanted(self) -> bool:
        return time.monotonic() < self.until

    def requested(self) -> None:
        """A viewer asked (message :data:`PREVIEW_REQUEST` on the XPUB socket): renew the lease."""
        self.requests += 1
        self.until = time.monotonic() + LEASE_S

    def on_readable(self) -> None:
        while self.sock.poll(0):
            identity, *parts = self.sock.recv_multipart()
            if parts == [_ASK]:
                try:
                    self.sock.send_multipart([identity, _YES if self.wanted else _NO], zmq.NOBLOCK)
                except zmq.ZMQError:
                    pass
            elif len(parts) != 2:
                self.bad += 1
            elif self.wanted:
                self._publish(*parts)

    def _publish(self, payload: bytes, tag: bytes) -> None:
        try:
            verify(self.secret, SIGNED_BY_CAPTURE, payload, tag)
            d = msgpack.unpackb(payload, raw=False, max_bin_len=1 << 23, max_str_len=1 << 10,
                                max_array_len=16, max_map_len=16)
            preview = Preview.from_wire(d)
            if preview.source not in self.sources:
                raise SchemaError(f"preview for unknown source {preview.source!r}")
        except Exception:  # malformed: skipped and counted, never fatal
            self.bad += 1
            return
        try:
            self.pub.send_multipart([preview_topic(preview.source), payload], zmq.NOBLOCK)
            self.published += 1
        except zmq.Again:
            pass

    def close(self) -> None:
        self.sock.close(0)
