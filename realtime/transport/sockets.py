"""Internal sockets between our processes: endpoints from ``[transport]``, framing of messages.

Every internal message is a ZeroMQ multipart message whose first part is a msgpack header map.
Raw images travel as one extra part sent with ``copy=False`` and received as a numpy
view of the ZeroMQ buffer, so a 1080p frame is never pickled or copied by Python.
Each socket has a small high-water mark: a slow stage makes the fast one drop (and count)
instead of building a queue, and every receiving socket a largest message size (``MAX_*`` below):
libzmq drops a peer that sends more, before anything is allocated for it, so no peer can make a
process hold more than the high-water mark times that size.
"""
from __future__ import annotations

import os
import tempfile
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import zmq

from realtime.config import MAX_SOURCE_NAME, TransportConfig

#: Inference asks a capture process for its newest frame with this (and a request number).
KIND_READY = b"ready"

#: Largest message each receiving socket accepts (bytes). A frame: a 8192 x 8192 BGR image and its
#: header; one frame's people (at most ``messages.MAX_PEOPLE``); a request for a frame; a
#: subscription to the published stream (its longest topic, "preview/" and a source name of at most
#: ``config.MAX_SOURCE_NAME`` characters, 32 bytes, as a SUB socket sends it to a ZMTP 3.1 peer: a
#: SUBSCRIBE command, 10 bytes more; libzmq keeps each subscription a connection sends, whatever the
#: publisher does with it, until that connection closes: tools/bench_subscriptions.py); a heartbeat
#: or event to the supervisor. libzmq applies each limit to the peer's handshake too (~30 bytes).
MAX_FRAME = 8192 * 8192 * 3 + 65536
MAX_PEOPLE_MESSAGE = 1 << 20
MAX_REQUEST = 64
MAX_SUBSCRIPTION = 10 + len("preview/") + MAX_SOURCE_NAME
MAX_CONTROL = 1 << 16


@dataclass(frozen=True)
class Endpoints:
    """Addresses of the internal sockets. Who binds: capture (frames), inference (lift_in),
    tracker (lift_out), supervisor (control); the others connect. Control is always ipc (a
    supervisor and its own children); with tcp the rest may cross machines, so a socket binds at
    :meth:`bind_address` (``[transport] bind``) and is reached at ``[transport] host``."""

    control: str
    lift_in: str
    lift_out: str
    frames: tuple[str, ...]
    publish: str
    #: Camera previews, captures -> publisher (realtime.outputs.preview); used with [viewer] preview on.
    preview: str = ""
    ipc_dir: str = ""
    host: str = ""
    bind_host: str = ""

    @classmethod
    def from_config(cls, cfg: TransportConfig, n_sources: int) -> "Endpoints":
        root = Path(cfg.ipc_dir) if cfg.ipc_dir else Path(tempfile.mkdtemp(prefix="realtime-"))
        root.mkdir(parents=True, exist_ok=True)
        if not os.access(root, os.W_OK | os.X_OK):
            raise PermissionError(f"{root}: not writable (the run's sockets are made there)")
        if cfg.scheme == "ipc":
            return cls(control=f"ipc://{root}/control", lift_in=f"ipc://{root}/lift_in",
                       lift_out=f"ipc://{root}/lift_out",
                       frames=tuple(f"ipc://{root}/frames{i}" for i in range(n_sources)),
                       publish=cfg.publish, preview=f"ipc://{root}/preview", ipc_dir=str(root))
        host, port = cfg.host, cfg.base_port
        return cls(control=f"ipc://{root}/control", lift_in=f"tcp://{host}:{port + 1}",
                   lift_out=f"tcp://{host}:{port + 2}",
                   frames=tuple(f"tcp://{host}:{port + 3 + i}" for i in range(n_sources)),
                   publish=cfg.publish, preview=f"tcp://{host}:{port}", ipc_dir=str(root), host=host,
                   bind_host=cfg.bind or host)

    def bind_address(self, endpoint: str) -> str:
        """Where the socket reached at ``endpoint`` binds (the same but for ``[transport] bind``)."""
        prefix = f"tcp://{self.host}:"
        if self.host and endpoint.startswith(prefix):
            return f"tcp://{self.bind_host}:{endpoint[len(prefix):]}"
        return endpoint

    def to_dict(self) -> dict[str, Any]:
        return {"control": self.control, "lift_in": self.lift_in, "lift_out": self.lift_out,
                "frames": list(self.frames), "publish": self.publish, "preview": self.preview, "ipc_dir": self.ipc_dir,
                "host": self.host, "bind_host": self.bind_host}

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> "Endpoints":
        return cls(**{**d, "frames": tuple(d["frames"])})


def make_socket(ctx: zmq.Context, kind: int, *, bind: str | None = None, connect: str | None = None,
                hwm: int = 2, max_message: int | None = None) -> zmq.Socket:
    """A socket with bounded queues, no linger (a dead peer never blocks shutdown) and, for one that
    receives, the largest message it accepts (``max_message`` bytes)."""
    sock = ctx.socket(kind)
    sock.setsockopt(zmq.LINGER, 0)
    if max_message is not None:
        sock.setsockopt(zmq.MAXMSGSIZE, max_message)
    sock.setsockopt(zmq.RECONNECT_IVL, 20)  # ms: a restarted peer is found again quickly (default 100)
    sock.setsockopt(zmq.SNDHWM, hwm)
    sock.setsockopt(zmq.RCVHWM, hwm)
    if bind:
        sock.bind(bind)
    if connect:
        sock.connect(connect)
    return sock
