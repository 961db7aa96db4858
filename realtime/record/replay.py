"""``realtime replay``: republish a recording on a PUB socket, at its original pace or faster.

Payloads go out byte for byte as recorded (same topics, same schema), so any subscriber of a
live run works unchanged on a replay. Pacing follows the recorded log times (capture times).
"""
from __future__ import annotations

import argparse
import logging
import sys
import time
from pathlib import Path

import zmq

from realtime.config import ConfigError, check_endpoint, load_config
from realtime.record.reader import RecordingError, RecordingReader
from realtime.logs import fields, setup_logging

log = logging.getLogger("realtime.replay")


def add_arguments(p: argparse.ArgumentParser) -> None:
    p.add_argument("path", type=Path, help="MCAP recording made with realtime run --record")
    p.add_argument("--speed", type=float, default=1.0,
                   help="playback speed factor (1 = original pace, 0 = as fast as possible)")
    p.add_argument("--publish", metavar="ENDPOINT", help="PUB endpoint (default: [transport] publish)")
    p.add_argument("--config", metavar="TOML", help="config file for the default endpoint")
    p.add_argument("--wait", type=float, default=0.5, metavar="S",
                   help="seconds to let subscribers connect before the first message")
    p.add_argument("--loop", action="store_true", help="start again at the end")


def replay(path: Path, endpoint: str, speed: float = 1.0, wait_s: float = 0.5, loop: bool = False,
           ctx: zmq.Context | None = None, progress: bool = False) -> int:
    """Publish every message of ``path``; returns how many were sent. ``progress``: a tqdm bar of the
    messages on a terminal (each pass, with ``loop``)."""
    from tqdm import tqdm

    from realtime.record.reader import message_count
    ctx = ctx or zmq.Context.instance()
    pub = ctx.socket(zmq.PUB)
    pub.setsockopt(zmq.LINGER, 1000)
    pub.setsockopt(zmq.SNDHWM, 1000)
    pub.bind(endpoint)
    sent = 0
    try:
        time.sleep(wait_s)
        while True:
            reader = RecordingReader(path)
            t0_wall = time.monotonic()
            t0_log: int | None = None
            for topic, log_time, payload in tqdm(reader.raw(), total=message_count(path), desc=f"replay {path.name}",
                                                 unit="msg", disable=None if progress else True, leave=False):
                if t0_log is None:
                    t0_log = log_time
                if speed > 0:
                    delay = t0_wall + (log_time - t0_log) / 1e9 / speed - time.monotonic()
                    if delay > 0:
                        time.sleep(delay)
                pub.send_multipart([topic.encode("utf-8"), payload])
                sent += 1
            if reader.truncated:
                log.warning("recording ends early (its writer was killed); replayed what it holds",
                            extra=fields(path=str(path), messages=sent))
            if not loop:
                return sent
    finally:
        pub.close()


def run(args: argparse.Namespace) -> int:
    try:
        cfg = load_config(args.config)
    except ConfigError as e:
        print(f"realtime replay: {e}", file=sys.stderr)
        return 2
    if args.speed < 0:
        print(f"realtime replay: --speed must be >= 0, got {args.speed}", file=sys.stderr)
        return 2
    setup_logging(cfg.runtime.log_format, "replay")
    endpoint = args.publish or cfg.transport.publish
    try:
        check_endpoint("--publish", endpoint)
    except ConfigError as e:
        print(f"realtime replay: {e}", file=sys.stderr)
        return 2
    try:
        sent = replay(args.path, endpoint, speed=args.speed, wait_s=args.wait, loop=args.loop, progress=True)
    except RecordingError as e:
        log.error("%s", e)
        return 2
    except zmq.ZMQError as e:
        log.error("cannot publish on %s: %s", endpoint, e)
        return 2
    log.info("replay finished", extra=fields(path=str(args.path), messages=sent, publish=endpoint))
    return 0
