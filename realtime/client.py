"""Subscribing to a running pipeline (or a replay): typed, validated messages.

Example::

    from realtime.client import Subscriber
    from realtime.transport.schema import Frame

    with Subscriber("tcp://127.0.0.1:5560") as sub:
        for topic, msg in sub:
            if isinstance(msg, Frame):
                for person in msg.people:
                    if person.joints3d is not None:
                        print(msg.seq, person.track_id, person.joints3d[0])

A message that does not follow the schema (wrong version, missing field, not msgpack) is
counted in ``rejected``, its reason kept in ``last_error`` and logged, and skipped: one bad
publisher message never ends a subscriber.

A publisher with ``[security] curve = true`` takes only allowed clients::

    from realtime.transport.security import client_keys
    keys = client_keys("keys/server.key", "keys/consumer.key_secret")
    with Subscriber("tcp://edge-box:5560", curve=keys) as sub: ...
"""
from __future__ import annotations

import logging
import time
from collections.abc import Iterator, Sequence
from typing import TYPE_CHECKING

import zmq

from realtime.transport.schema import TOPIC_FRAME_PREFIX, TOPIC_SKELETON, Frame, SchemaError, Skeleton, unpack

if TYPE_CHECKING:
    from realtime.transport.security import CurveKeys

log = logging.getLogger("realtime.client")


class Subscriber:
    """SUB socket yielding ``(topic, Skeleton | Frame)``; ``topics`` are prefixes (default: all).

    ``received_at`` is the local unix time the last message arrived (publish -> receive cost is
    ``received_at - frame.t_publish`` on one machine).
    """

    def __init__(self, endpoint: str, topics: Sequence[bytes | str] = (TOPIC_SKELETON, TOPIC_FRAME_PREFIX),
                 ctx: zmq.Context | None = None, hwm: int = 1000, curve: "CurveKeys | None" = None) -> None:
        """``endpoint``: ``tcp://HOST:PORT`` or ``ipc://PATH`` (anything else: ``ValueError`` naming it);
        ``curve``: this client's keys and the server's public key, for a CURVE publisher."""
        from realtime.config import check_endpoint

        check_endpoint("endpoint", endpoint)
        self.endpoint = endpoint
        self._own_ctx = ctx is None
        self.ctx = ctx or zmq.Context()
        self.sock = self.ctx.socket(zmq.SUB)
        self.sock.setsockopt(zmq.LINGER, 0)
        self.sock.setsockopt(zmq.RCVHWM, hwm)
        for t in topics:
            self.sock.setsockopt(zmq.SUBSCRIBE, t.encode() if isinstance(t, str) else t)
        if curve is not None:
            curve.connect_as_client(self.sock)
        self.sock.connect(endpoint)
        self.received = 0
        self.rejected = 0
        self.last_error = ""
        self.received_at = 0.0
        self.skeleton: Skeleton | None = None

    def recv(self, timeout_s: float | None = None) -> tuple[str, Skeleton | Frame] | None:
        """The next valid message, or None when ``timeout_s`` passes without one."""
        deadline = None if timeout_s is None else time.monotonic() + timeout_s
        while True:
            wait = None if deadline is None else max(0.0, deadline - time.monotonic())
            if not self.sock.poll(None if wait is None else int(wait * 1000)):
                return None
            parts = self.sock.recv_multipart()
            self.received_at = time.time()
            message = self._decode(parts)
            if message is not None:
                return message
            if deadline is not None and time.monotonic() >= deadline:
                return None

    def _decode(self, parts: list[bytes]) -> tuple[str, Skeleton | Frame] | None:
        self.received += 1
        try:
            if len(parts) != 2:
                raise SchemaError(f"expected 2 message parts [topic, payload], got {len(parts)}")
            topic = parts[0].decode("utf-8", errors="replace")
            message = unpack(parts[1])
            if isinstance(message, Skeleton) != (parts[0] == TOPIC_SKELETON):
                raise SchemaError(f"topic {topic!r} does not match a {type(message).__name__} message")
        except SchemaError as e:
            self.rejected += 1
            self.last_error = f"{self.endpoint}: message rejected: {e}"
            log.warning("%s", self.last_error)
            return None
        if isinstance(message, Skeleton):
            self.skeleton = message
        return topic, message

    def __iter__(self) -> Iterator[tuple[str, Skeleton | Frame]]:
        while True:
            message = self.recv()
            if message is not None:
                yield message

    def frames(self, timeout_s: float | None = None) -> Iterator[Frame]:
        """Only the frames; stops after ``timeout_s`` without any message."""
        while (message := self.recv(timeout_s)) is not None:
            if isinstance(message[1], Frame):
                yield message[1]

    def close(self) -> None:
        self.sock.close(0)
        if self._own_ctx:
            self.ctx.term()

    def __enter__(self) -> "Subscriber":
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()
