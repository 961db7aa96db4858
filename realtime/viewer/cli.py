"""``realtime view``: the browser viewer of a running pipeline (or of a recording), on its own.

``realtime run --view`` starts the same server as a supervised child (``realtime.runtime.viewer``).
"""
from __future__ import annotations

import argparse
import asyncio
import logging
import sys

from realtime.logs import fields, setup_logging

log = logging.getLogger("realtime.viewer")


def add_arguments(p: argparse.ArgumentParser) -> None:
    p.add_argument("recording", nargs="?", metavar="REC.mcap",
                   help="show a recording (replayed at its pace, looping) instead of a live stream")
    p.add_argument("--connect", metavar="ENDPOINT",
                   help="the pipeline's stream (default: [transport] publish, 0.0.0.0 read as 127.0.0.1)")
    p.add_argument("--port", type=int, help="HTTP port (default: [viewer] port)")
    p.add_argument("--bind", metavar="ADDRESS", help="listen address (default: [viewer] bind, 127.0.0.1; "
                   "0.0.0.0 serves other machines' browsers)")
    p.add_argument("--server-key", metavar="FILE",
                   help="a CURVE publisher's public key (server.key), with --client-key")
    p.add_argument("--client-key", metavar="FILE", help="this viewer's key pair (.key_secret, its public key in the "
                   "publisher's allowed_clients); without both, [security] keys when curve = true")
    p.add_argument("--speed", type=float, default=1.0, help="recording: playback speed factor")
    p.add_argument("--config", metavar="TOML", help="config file")


def run(args: argparse.Namespace) -> int:
    import zmq

    from realtime.config import ConfigError, load_config
    from realtime.record import RecordingError
    from realtime.transport.security import SecurityError, optional_client_keys, stage_client_keys
    from realtime.viewer.server import LiveFeed, RecordingFeed, Viewer, connect_endpoint, listen, page_url, serve

    try:
        cfg = load_config(args.config)
        cfg = cfg.replace("viewer", **{k: v for k, v in (("port", args.port), ("bind", args.bind)) if v is not None})
    except ConfigError as e:
        print(f"realtime view: {e}", file=sys.stderr)
        return 2
    if args.recording and args.connect:
        print("realtime view: give a recording or --connect, not both", file=sys.stderr)
        return 2
    setup_logging(cfg.runtime.log_format, "viewer")
    try:
        if args.recording:
            feed = RecordingFeed(args.recording, speed=args.speed)
        else:
            endpoint = args.connect or connect_endpoint(cfg.transport.publish)
            # --server-key/--client-key, else the config's own keys (the viewer is one of the pipeline's)
            curve = optional_client_keys(args.server_key, args.client_key) or stage_client_keys(cfg.security,
                                                                                                 endpoint)
            feed = LiveFeed(endpoint, curve=curve)
    except (RecordingError, SecurityError) as e:
        print(f"realtime view: {e}", file=sys.stderr)
        return 2
    except zmq.ZMQError as e:
        print(f"realtime view: --connect {args.connect!r}: {e} (expected e.g. tcp://127.0.0.1:5560)", file=sys.stderr)
        return 2
    try:
        sock = listen(cfg.viewer.bind, cfg.viewer.port)
    except OSError as e:
        print(f"realtime view: cannot listen on {cfg.viewer.bind}:{cfg.viewer.port}: {e.strerror or e} "
              "(another --port?)", file=sys.stderr)
        feed.close()
        return 2
    viewer = Viewer(cfg.viewer, feed)
    log.info("viewer ready: open %s", page_url(cfg.viewer.bind, cfg.viewer.port),
             extra=fields(feed=feed.describe, listen=f"{cfg.viewer.bind}:{cfg.viewer.port}"))
    try:
        asyncio.run(serve(viewer, sock, tick=_Waiting(feed.describe)))
    except KeyboardInterrupt:
        pass
    return 0


class _Waiting:
    """Says once, clearly, when nothing arrives from the stream (a wrong --connect, or no pipeline yet)."""

    def __init__(self, describe: str, after_s: float = 5.0) -> None:
        import time

        self.describe, self.after_s, self.t0, self.said = describe, after_s, time.monotonic(), False

    def __call__(self, viewer) -> None:
        import time

        if not self.said and viewer.received == 0 and time.monotonic() - self.t0 > self.after_s:
            self.said = True
            log.warning("nothing received from the %s in %.0f s: is `realtime run` publishing there? "
                        "(the page waits for it)", self.describe, self.after_s)
