#!/usr/bin/env python3
"""What the browser viewer costs the pipeline: `realtime run` on the demo video without the viewer, with
it and no browser, with one headless Chromium on the page (on this same machine, so its rendering
competes for the cores), and with one WebSocket client that only receives (a browser on another
machine: what the pipeline's box pays).

For each mode, after a warm-up, over a window: the stream's fps as a subscriber receives it, the CPU of
the whole `realtime run` process tree (supervisor, every stage, the viewer; 100 = one core) and that
CPU per published frame, the viewer process's own CPU, the browser's, and previews published per
second. The video is decoded unpaced by default (`--no-pace`: every stage's work is then per frame, so
CPU per frame is the viewer's cost even when other programs take cores; `--paced` plays it at its
frame rate). Modes are interleaved round by round (the machine may be shared: noisy), and the table
holds each mode's median.

    tools/bench_viewer.py [--seconds 20] [--warmup 12] [--rounds 3] [--modes off,view,ws,browser] [--paced] [--json]
"""
from __future__ import annotations

import argparse
import asyncio
import json
import os
import re
import socket
import subprocess
import sys
import threading
import time
from pathlib import Path

import numpy as np
from tqdm import tqdm

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))
sys.path.insert(0, str(REPO / "tests"))

from realtime.client import Subscriber  # noqa: E402
from realtime.transport.schema import TOPIC_FRAME_PREFIX, TOPIC_PREVIEW_PREFIX  # noqa: E402

MODES = ("off", "view", "ws", "browser")
TICK = os.sysconf("SC_CLK_TCK")


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def tree_cpu_s(root: int) -> float:
    """CPU seconds (user + system) of ``root`` and all its descendants now alive."""
    parent, cpu = {}, {}
    for entry in os.listdir("/proc"):
        if not entry.isdigit():
            continue
        try:
            with open(f"/proc/{entry}/stat") as f:
                fields = f.read().rsplit(")", 1)[1].split()
        except OSError:
            continue
        parent[int(entry)] = int(fields[1])
        cpu[int(entry)] = (int(fields[11]) + int(fields[12])) / TICK
    total, todo = 0.0, [root]
    children: dict[int, list[int]] = {}
    for pid, ppid in parent.items():
        children.setdefault(ppid, []).append(pid)
    while todo:
        pid = todo.pop()
        total += cpu.get(pid, 0.0)
        todo += children.get(pid, [])
    return total


class WsClient:
    """A WebSocket client that receives everything the viewer sends, on its own thread."""

    def __init__(self, url: str) -> None:
        self.url, self.messages, self.stop = url, 0, threading.Event()
        self.thread = threading.Thread(target=lambda: asyncio.run(self._run()), daemon=True)
        self.thread.start()

    async def _run(self) -> None:
        import aiohttp

        async with aiohttp.ClientSession() as session:
            async with session.ws_connect(self.url) as ws:
                while not self.stop.is_set():
                    try:
                        await ws.receive(timeout=0.5)
                        self.messages += 1
                    except asyncio.TimeoutError:
                        pass

    def close(self) -> None:
        self.stop.set()
        self.thread.join(5)


def measure(mode: str, source: str, warmup: float, seconds: float, paced: bool) -> dict:
    endpoint, port = f"tcp://127.0.0.1:{_free_port()}", _free_port()
    cmd = [sys.executable, "-m", "realtime", "run", "--headless", "--source", source, "--loop",
           "--camera-pitch", "19.9", "--publish", endpoint] + ([] if paced else ["--no-pace"])
    if mode != "off":
        cmd += ["--view", str(port)]
    proc = subprocess.Popen(cmd, cwd=REPO, stderr=subprocess.PIPE, text=True)
    log: list[str] = []
    threading.Thread(target=lambda: log.extend(line.rstrip() for line in proc.stderr), daemon=True).start()
    driver = client = None
    try:
        time.sleep(warmup / 2)
        if mode == "browser":
            from browser import chromium
            context = chromium()
            driver = context.__enter__()
            driver.get(f"http://127.0.0.1:{port}/")
        elif mode == "ws":
            client = WsClient(f"http://127.0.0.1:{port}/ws")
        time.sleep(warmup / 2)
        browser_pid = driver.service.process.pid if driver is not None else None
        viewers = re.findall(r"started viewer pid=(\d+)", "\n".join(log))
        viewer_pid = int(viewers[-1]) if viewers else None
        with Subscriber(endpoint, topics=(TOPIC_FRAME_PREFIX, TOPIC_PREVIEW_PREFIX)) as sub:
            time.sleep(0.5)
            while sub.sock.poll(0):
                sub.sock.recv_multipart()
            vcpu0 = tree_cpu_s(viewer_pid) if viewer_pid else 0.0
            cpu0, bcpu0, t0 = tree_cpu_s(proc.pid), tree_cpu_s(browser_pid) if browser_pid else 0.0, time.monotonic()
            frames = previews = 0
            while time.monotonic() - t0 < seconds:
                if sub.sock.poll(100):
                    topic, _ = sub.sock.recv_multipart()
                    if topic.startswith(TOPIC_PREVIEW_PREFIX):
                        previews += 1
                    else:
                        frames += 1
            elapsed = time.monotonic() - t0
            cpu = 100 * (tree_cpu_s(proc.pid) - cpu0) / elapsed
            bcpu = 100 * (tree_cpu_s(browser_pid) - bcpu0) / elapsed if browser_pid else 0.0
            vcpu = 100 * (tree_cpu_s(viewer_pid) - vcpu0) / elapsed if viewer_pid else 0.0
        drawn = driver.execute_script("return window.rtViewer.drawn3d") if driver is not None else None
    finally:
        if driver is not None:
            context.__exit__(None, None, None)
        if client is not None:
            client.close()
        proc.terminate()
        proc.wait(30)
    if "restarting" in "\n".join(log):
        raise SystemExit(f"a child was restarted during mode {mode}:\n" + "\n".join(log[-20:]))
    return {"fps": frames / elapsed, "cpu_percent": cpu, "cpu_ms_per_frame": 10 * cpu / max(frames / elapsed, 1e-9),
            "viewer_cpu_percent": vcpu, "browser_cpu_percent": bcpu,
            "previews_per_s": previews / elapsed, "page_redraws_3d": drawn,
            "ws_messages_per_s": client.messages / (warmup / 2 + elapsed) if client else None}


def encode_ms(source: str, repeats: int = 60) -> dict:
    """Time of one preview as the capture process makes it, on the source's frames, with the defaults."""
    from realtime.capture import video_frames
    from realtime.config import ViewerConfig
    from realtime.outputs.preview import encode

    cfg = ViewerConfig()
    frames = list(video_frames(source, 10))
    times, size = [], 0
    for i in range(repeats):
        t0 = time.perf_counter()
        size = len(encode(frames[i % len(frames)], cfg.preview_width, cfg.preview_quality))
        times.append((time.perf_counter() - t0) * 1e3)
    h, w = frames[0].shape[:2]
    return {"p50": float(np.median(times)), "p95": float(np.percentile(times, 95)), "size": f"{w}x{h}",
            "width": cfg.preview_width, "bytes": size}


def main() -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--source", default=str(REPO.parent / "shared" / "data" / "video" / "deepstream_Retail02_short.mp4"))
    p.add_argument("--seconds", type=float, default=20.0, help="measurement window per mode and round")
    p.add_argument("--warmup", type=float, default=12.0, help="seconds from start to the window (models load)")
    p.add_argument("--rounds", type=int, default=3)
    p.add_argument("--modes", default=",".join(MODES))
    p.add_argument("--paced", action="store_true", help="play the video at its frame rate (default: unpaced)")
    p.add_argument("--json", action="store_true")
    args = p.parse_args()
    modes = [m for m in args.modes.split(",") if m]
    if unknown := [m for m in modes if m not in MODES]:
        raise SystemExit(f"unknown mode {unknown[0]!r} (choose from {', '.join(MODES)})")
    runs: dict[str, list[dict]] = {m: [] for m in modes}
    for _ in tqdm(range(args.rounds), desc="rounds", disable=None):
        for mode in modes:
            runs[mode].append(measure(mode, args.source, args.warmup, args.seconds, args.paced))
    keys = ("fps", "cpu_percent", "cpu_ms_per_frame", "viewer_cpu_percent", "browser_cpu_percent", "previews_per_s")
    result = {"source": args.source, "seconds": args.seconds, "rounds": args.rounds, "cores": os.cpu_count(),
              "paced": args.paced, "load_average": os.getloadavg(),
              "preview_encode_ms": encode_ms(args.source),
              "median": {m: {k: float(np.median([r[k] for r in rs])) for k in keys} for m, rs in runs.items()},
              "runs": runs}
    med = result["median"]
    if "off" in med:
        base = med["off"]
        result["vs_off"] = {m: {"fps_change_percent": 100 * (v["fps"] / base["fps"] - 1),
                                "cpu_added_percent_of_pipeline": 100 * (v["cpu_percent"] / base["cpu_percent"] - 1),
                                "cpu_per_frame_added_percent": 100 * (v["cpu_ms_per_frame"] / base["cpu_ms_per_frame"] - 1)}
                            for m, v in med.items() if m != "off"}
    if args.json:
        print(json.dumps(result))
        return 0
    print(f"{'mode':8s} {'fps':>6s} {'cpu% run':>9s} {'cpu ms/frame':>13s} {'cpu% viewer':>12s} {'cpu% browser':>13s}"
          f" {'previews/s':>11s}   (medians of {args.rounds} rounds, {args.seconds:.0f} s each, "
          f"{'paced' if args.paced else 'unpaced'}, {os.cpu_count()} cores, load {result['load_average'][0]:.1f})")
    for m, v in med.items():
        print(f"{m:8s} {v['fps']:6.1f} {v['cpu_percent']:9.0f} {v['cpu_ms_per_frame']:13.1f} {v['viewer_cpu_percent']:12.1f}"
              f" {v['browser_cpu_percent']:13.0f} {v['previews_per_s']:11.1f}")
    for m, v in result.get("vs_off", {}).items():
        print(f"{m:8s} vs off: fps {v['fps_change_percent']:+.1f} %, pipeline CPU {v['cpu_added_percent_of_pipeline']:+.1f} %,"
              f" CPU per frame {v['cpu_per_frame_added_percent']:+.1f} %")
    e = result["preview_encode_ms"]
    print(f"one preview (capture process): {e['p50']:.1f} ms p50, {e['p95']:.1f} ms p95 to scale a {e['size']} frame to "
          f"{e['width']} px wide and JPEG-encode it ({e['bytes'] / 1e3:.0f} kB)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
