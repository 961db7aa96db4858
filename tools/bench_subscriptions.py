"""What a peer's stored subscriptions cost an XPUB socket (libzmq), as the publisher uses it.

libzmq keeps every subscription a connected peer sends, even those the publisher refuses in manual
mode (its ``_manual_subscriptions`` trie, kept to send unsubscriptions when the peer leaves), and on
EVERY connection close it walks that whole trie. One peer holding many unique subscriptions therefore
costs memory and makes each later disconnection, anyone's, stall the socket's thread. This measures
both: resident memory per stored subscription, and the time one connection close holds the
socket's thread, for several counts and lengths of stored subscriptions (one attacker connection,
random bytes: the worst case for the trie).

    python tools/bench_subscriptions.py [--counts 0,10000,100000] [--lengths 12,32] [--json]
"""
from __future__ import annotations

import argparse
import json
import time

import numpy as np
import zmq

from realtime.transport.sockets import MAX_SUBSCRIPTION


def _rss_mb() -> float:
    with open("/proc/self/status") as f:
        return next(int(line.split()[1]) for line in f if line.startswith("VmRSS:")) / 1024


def measure(count: int, length: int, closes: int = 3) -> dict:
    """Store ``count`` subscriptions of ``length`` random bytes from one peer, then time ``closes``
    other connections closing: from the close until the publisher's socket hands over that peer's
    unsubscription (after the walk)."""
    ctx = zmq.Context()
    pub = ctx.socket(zmq.XPUB)
    pub.setsockopt(zmq.XPUB_MANUAL, 1)
    pub.setsockopt(zmq.MAXMSGSIZE, MAX_SUBSCRIPTION)
    port = pub.bind_to_random_port("tcp://127.0.0.1")
    attacker = ctx.socket(zmq.XSUB)   # an XSUB keeps no subscription tree of its own
    attacker.setsockopt(zmq.SNDHWM, 0)
    attacker.connect(f"tcp://127.0.0.1:{port}")
    rng = np.random.default_rng(0)
    before = _rss_mb()
    for _ in range(count):
        attacker.send(b"\x01" + rng.bytes(length))
    received = 0
    while received < count and pub.poll(2000):
        pub.recv()
        received += 1
    stored_mb = _rss_mb() - before
    stalls = []
    for _ in range(closes):
        peer = ctx.socket(zmq.SUB)
        peer.connect(f"tcp://127.0.0.1:{port}")
        peer.setsockopt(zmq.SUBSCRIBE, b"frame/")
        time.sleep(0.2)
        while pub.poll(0):
            pub.recv()
        t = time.perf_counter()
        peer.close(0)
        # The close reaches the publisher's socket as a command, processed in its next call: the walk,
        # then the peer's one unsubscription handed to the application (manual mode).
        if pub.poll(10_000):
            pub.recv()
        stalls.append((time.perf_counter() - t) * 1e3)
    ctx.destroy(linger=0)
    return {"count": count, "length": length, "received": received, "rss_mb": stored_mb,
            "close_stall_ms_p50": float(np.median(stalls)), "close_stall_ms": stalls}


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--counts", default="0,10000,100000")
    p.add_argument("--lengths", default=f"12,{MAX_SUBSCRIPTION - 1}")
    p.add_argument("--json", action="store_true")
    args = p.parse_args(argv)
    rows = [measure(int(c), int(n)) for n in args.lengths.split(",") for c in args.counts.split(",")]
    if args.json:
        print(json.dumps({"rows": rows, "libzmq": zmq.zmq_version()}))
        return 0
    print(f"libzmq {zmq.zmq_version()}, XPUB in manual mode, subscriptions from one peer (random bytes)")
    print(f"{'stored':>8} {'bytes':>6} {'RSS MB':>8} {'one close takes (ms, p50)':>27}")
    for r in rows:
        print(f"{r['count']:8d} {r['length']:6d} {r['rss_mb']:8.0f} {r['close_stall_ms_p50']:27.1f}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
