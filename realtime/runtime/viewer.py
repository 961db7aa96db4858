"""Viewer process (``realtime run --view``): the browser viewer as a supervised child.

The supervisor opens the listening socket (so a port in use stops the run at once with one line, and
a restarted viewer listens on the same socket) and hands it over; this process serves the page and
subscribes to the publisher's stream like any consumer (``realtime.viewer.server``). Heartbeats come
from the event loop, so a stuck loop is restarted like any hung stage.
"""
from __future__ import annotations

import asyncio
import socket

from realtime.runtime.child import Child


def main(child: Child, *, listen: socket.socket, connect: str, url: str) -> int:
    from realtime.transport.security import stage_client_keys
    from realtime.viewer.server import LiveFeed, Viewer, serve

    # with [security] curve the publisher takes only allowed clients: the viewer is one, with client_key
    viewer = Viewer(child.config.viewer, LiveFeed(connect, curve=stage_client_keys(child.config.security, connect)))
    child.event("viewer_started", url=url, connect=connect)
    asyncio.run(serve(viewer, listen, stop=child.stop, tick=lambda v: child.beat(**v.counters())))
    return 0
