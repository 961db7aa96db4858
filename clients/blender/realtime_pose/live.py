"""Live link: a ZeroMQ SUB socket drained from a ``bpy.app.timers`` callback.

The timer polls with ``zmq.Poller().poll(0)`` and never blocks, so the UI stays responsive; it
applies at most ``MAX_PER_TICK`` messages a tick (all of them when keying, else only the newest
frame matters and older ones are dropped).
"""
from __future__ import annotations

import bpy

from .stream import MessageError, Performer, decode

INTERVAL_S = 1.0 / 120.0
MAX_PER_TICK = 200


class LiveLink:
    def __init__(self, endpoint: str, record: bool, server_key: str = "", client_key: str = ""):
        """``server_key``/``client_key``: key files for a publisher with CURVE on (both or neither)."""
        import zmq
        self.endpoint = endpoint
        scene = bpy.context.scene
        fps = scene.render.fps / scene.render.fps_base
        self.performer = Performer(start_frame=scene.frame_current, fps=fps if record else None)
        self.record = record
        self.bad = 0
        self._ctx = zmq.Context.instance()
        self._sock = self._ctx.socket(zmq.SUB)
        for topic in (b"skeleton", b"frame/"):  # not preview/ (camera JPEGs for the browser viewer)
            self._sock.setsockopt(zmq.SUBSCRIBE, topic)
        self._sock.setsockopt(zmq.LINGER, 0)
        if server_key or client_key:
            import zmq.auth
            if not (server_key and client_key):
                raise ValueError("a CURVE publisher needs both the server key and the client key")
            server_public, _ = zmq.auth.load_certificate(server_key)
            public, secret = zmq.auth.load_certificate(client_key)
            if secret is None:
                raise ValueError(f"{client_key} has no secret key (give the .key_secret file)")
            self._sock.curve_serverkey, self._sock.curve_publickey, self._sock.curve_secretkey = server_public, public, secret
        self._sock.connect(endpoint)
        self._poller = zmq.Poller()
        self._poller.register(self._sock, zmq.POLLIN)

    def poll(self) -> int:
        """Apply what has arrived; returns how many messages were read."""
        import zmq
        messages = []
        while len(messages) < MAX_PER_TICK and self._poller.poll(0):
            parts = self._sock.recv_multipart(zmq.NOBLOCK)
            try:
                if len(parts) != 2:
                    raise MessageError(f"{len(parts)} parts, expected [topic, payload]")
                messages.append(decode(parts[1]))
            except MessageError:
                self.bad += 1
        if not self.record:
            frames = [m for m in messages if m["type"] == "frame"]
            messages = [m for m in messages if m["type"] == "skeleton"] + frames[-1:]
        for m in messages:
            self.performer.handle(m)
        return len(messages)

    def close(self) -> None:
        self._sock.close()


_link: LiveLink | None = None


def tick() -> float | None:
    """The timer callback: drain the socket, ask to be called again (None stops the timer)."""
    if _link is None:
        return None
    try:
        _link.poll()
    except Exception as e:  # an exception would silently unregister the timer: report and go on
        _link.bad += 1
        print(f"realtime_pose: {type(e).__name__}: {e}")
    return INTERVAL_S


def start(endpoint: str, record: bool, server_key: str = "", client_key: str = "") -> LiveLink:
    global _link
    stop()
    _link = LiveLink(endpoint, record, server_key, client_key)
    if not bpy.app.timers.is_registered(tick):
        bpy.app.timers.register(tick, first_interval=INTERVAL_S, persistent=True)
    return _link


def stop() -> None:
    global _link
    if bpy.app.timers.is_registered(tick):
        bpy.app.timers.unregister(tick)
    if _link is not None:
        _link.close()
        _link = None


def current() -> LiveLink | None:
    return _link
