"""The viewer's web server: one page, its assets, and a WebSocket per browser; read-only.

The stream comes in from a feed (:class:`LiveFeed`: the pipeline's XPUB endpoint; :class:`RecordingFeed`:
an MCAP file, replayed at its pace) and goes through :class:`ViewState` only while a browser is
connected. Each browser has a mailbox holding the newest message of each kind, sent at most
``[viewer] max_fps`` times a second: a slow or vanished browser skips states and never slows the
feed, let alone the pipeline. While a browser is connected, the live feed asks the pipeline for
camera previews (``realtime.outputs.preview``) about every second.

The server takes no input from browsers but WebSocket control frames: nothing on the page can change
the pipeline. WebSockets from pages of other origins are refused (a page elsewhere must not read the
camera through a browser on this machine).
"""
from __future__ import annotations

import asyncio
import logging
import socket
import threading
import time
from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any
from urllib.parse import urlsplit

import zmq
import zmq.asyncio
from aiohttp import WSMsgType, web

from realtime.config import ViewerConfig
from realtime.outputs.preview import PREVIEW_REQUEST
from realtime.transport.schema import MAX_PREVIEW_BYTES, TOPIC_FRAME_PREFIX, TOPIC_PREVIEW_PREFIX, TOPIC_SKELETON
from realtime.viewer import STATIC, plotly_js
from realtime.viewer.state import ViewState

if TYPE_CHECKING:
    from realtime.transport.security import CurveKeys

log = logging.getLogger("realtime.viewer")

#: How often a viewer with browsers renews its request for previews (the lease lasts LEASE_S).
REQUEST_EVERY_S = 1.0


class LiveFeed:
    """The pipeline's stream over an XSUB socket (a SUB that can also send the preview request up)."""

    def __init__(self, endpoint: str, ctx: zmq.asyncio.Context | None = None, curve: "CurveKeys | None" = None
                 ) -> None:
        """``curve``: this viewer's client keys and the server's public key, for a CURVE publisher."""
        self.endpoint = endpoint
        self.ctx = ctx or zmq.asyncio.Context()
        self.sock = self.ctx.socket(zmq.XSUB)
        self.sock.setsockopt(zmq.LINGER, 0)
        self.sock.setsockopt(zmq.RCVHWM, 64)  # a viewer that falls behind drops, it never queues
        self.sock.setsockopt(zmq.MAXMSGSIZE, 2 * MAX_PREVIEW_BYTES)
        if curve is not None:
            curve.connect_as_client(self.sock)
        self.sock.connect(endpoint)            # raises ZMQError on a malformed endpoint
        for topic in (TOPIC_SKELETON, TOPIC_FRAME_PREFIX, TOPIC_PREVIEW_PREFIX):
            self.sock.send(b"\x01" + topic)
        self.describe = f"stream {endpoint}"

    async def messages(self) -> AsyncIterator[tuple[bytes, bytes]]:
        while True:
            parts = await self.sock.recv_multipart()
            if len(parts) == 2:
                yield parts[0], parts[1]

    def request_previews(self) -> None:
        try:
            self.sock.send(PREVIEW_REQUEST, zmq.NOBLOCK)
        except zmq.ZMQError:
            pass

    def close(self) -> None:
        self.sock.close(0)


class RecordingFeed:
    """An MCAP recording replayed at its recorded pace (``speed``), from the start again at its end."""

    def __init__(self, path: str | Path, speed: float = 1.0, loop: bool = True) -> None:
        from realtime.record import RecordingReader

        self.reader = RecordingReader(path)   # raises RecordingError: no such recording
        next(iter(self.reader.raw()), None)   # ... or not an MCAP file: now, not in the page
        self.speed, self.loop = speed, loop
        self.describe = f"recording {path}"

    async def messages(self) -> AsyncIterator[tuple[bytes, bytes]]:
        while True:
            t0_wall, t0_log = time.monotonic(), None
            for topic, log_time, payload in self.reader.raw():
                t0_log = log_time if t0_log is None else t0_log
                delay = t0_wall + (log_time - t0_log) / 1e9 / max(self.speed, 1e-6) - time.monotonic()
                await asyncio.sleep(max(0.0, delay))
                yield topic.encode(), payload
            if not self.loop:
                return
            await asyncio.sleep(1.0)

    def request_previews(self) -> None:
        pass

    def close(self) -> None:
        pass


@dataclass(eq=False)
class Client:
    """One browser: the newest message of each kind, waiting to be sent."""

    ws: web.WebSocketResponse
    pending: dict[str, str] = field(default_factory=dict)
    ready: asyncio.Event = field(default_factory=asyncio.Event)

    def put(self, messages: list[tuple[str, str]]) -> None:
        if messages:
            self.pending.update(messages)
            self.ready.set()


class Viewer:
    def __init__(self, cfg: ViewerConfig, feed: LiveFeed | RecordingFeed) -> None:
        self.cfg = cfg
        self.feed = feed
        self.state = ViewState()
        self.clients: set[Client] = set()
        self.served = 0      # browsers served so far
        self.received = 0    # stream messages received
        self.sent = 0        # messages sent to browsers
        self.app = web.Application()
        self.app.add_routes([web.get("/", self.index), web.get("/ws", self.websocket),
                             web.get("/plotly.min.js", self.plotly), web.static("/static", STATIC)])

    def counters(self) -> dict[str, Any]:
        return {"clients": len(self.clients), "served": self.served, "received": self.received,
                "frames": self.state.frames, "previews": self.state.previews, "sent": self.sent,
                "rejected": self.state.rejected}

    async def index(self, request: web.Request) -> web.StreamResponse:
        return web.FileResponse(STATIC / "index.html", headers={"Cache-Control": "no-cache"})

    async def plotly(self, request: web.Request) -> web.StreamResponse:
        return web.FileResponse(plotly_js(), headers={"Cache-Control": "max-age=86400"})

    async def websocket(self, request: web.Request) -> web.StreamResponse:
        origin = request.headers.get("Origin")
        if origin is not None and urlsplit(origin).netloc != request.host:
            raise web.HTTPForbidden(text="cross-origin WebSocket refused")
        ws = web.WebSocketResponse(heartbeat=10.0, max_msg_size=4096)
        await ws.prepare(request)
        client = Client(ws)
        client.put([("hello", _json({"type": "hello", "feed": self.feed.describe, "max_fps": self.cfg.max_fps})),
                    ("skeleton", _json(self.state.skeleton))])
        self.clients.add(client)
        self.served += 1
        sender = asyncio.create_task(self._send_loop(client))
        try:
            async for message in ws:  # nothing from the page is acted on; this only sees it close
                if message.type == WSMsgType.ERROR:
                    break
        finally:
            self.clients.discard(client)
            sender.cancel()
        return ws

    async def _send_loop(self, client: Client) -> None:
        period = 1.0 / self.cfg.max_fps
        try:
            while not client.ws.closed:
                await client.ready.wait()
                client.ready.clear()
                started = time.monotonic()
                pending, client.pending = client.pending, {}
                for text in pending.values():
                    await client.ws.send_str(text)
                    self.sent += 1
                await asyncio.sleep(max(0.0, period - (time.monotonic() - started)))
        except (ConnectionError, RuntimeError):  # the browser went away mid-send
            pass

    async def pump(self) -> None:
        """Stream in, browser messages out; the stream is only decoded while a browser is connected."""
        async for topic, payload in self.feed.messages():
            self.received += 1
            if not self.clients and not topic.startswith(TOPIC_SKELETON):
                continue
            messages = self.state.on_message(topic, payload)
            for client in list(self.clients):
                client.put(messages)

    async def ask_for_previews(self) -> None:
        while True:
            if self.clients:
                self.feed.request_previews()
            await asyncio.sleep(REQUEST_EVERY_S)


def listen(bind: str, port: int) -> socket.socket:
    """The viewer's listening socket; OSError (port in use, no such address) for the caller to report."""
    return socket.create_server((bind, port), family=socket.AF_INET6 if ":" in bind else socket.AF_INET,
                                backlog=64, reuse_port=False)


def connect_endpoint(publish: str) -> str:
    """Where a local viewer reaches a stream that binds ``publish`` (a wildcard bind -> loopback)."""
    for wildcard in ("tcp://0.0.0.0:", "tcp://*:"):
        if publish.startswith(wildcard):
            return "tcp://127.0.0.1:" + publish[len(wildcard):]
    return publish


def page_url(bind: str, port: int) -> str:
    host = "127.0.0.1" if bind in ("0.0.0.0", "") else ("[::1]" if bind == "::" else bind)
    return f"http://{host}:{port}/"


async def serve(viewer: Viewer, sock: socket.socket, stop: threading.Event | None = None,
                tick: Callable[[Viewer], None] | None = None, tick_s: float = 0.25) -> None:
    """Serve until ``stop`` is set (or forever), calling ``tick`` every ``tick_s`` (heartbeats)."""
    runner = web.AppRunner(viewer.app, access_log=None, handle_signals=False)
    await runner.setup()
    site = web.SockSite(runner, sock, shutdown_timeout=1.0)
    await site.start()
    tasks = [asyncio.create_task(viewer.pump()), asyncio.create_task(viewer.ask_for_previews())]
    try:
        while stop is None or not stop.is_set():
            if tick is not None:
                tick(viewer)
            for task in tasks:
                if task.done():  # the feed ended (a recording without loop) or failed: surface it
                    task.result()
            await asyncio.sleep(tick_s)
    finally:
        for task in tasks:
            task.cancel()
        for client in list(viewer.clients):
            await client.ws.close()
        await runner.cleanup()
        viewer.feed.close()


def _json(d: dict[str, Any]) -> str:
    import json

    return json.dumps(d)
