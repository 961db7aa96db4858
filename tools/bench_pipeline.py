"""Benchmark the whole streaming pipeline: `realtime run` on the demo video, measured by a subscriber.

Reports processed fps, dropped frames, people per frame, capture->publish latency (p50/p95/p99)
in total and per stage (from the stage timestamps every frame carries), the transport cost
publish -> subscriber receive, and each stage's CPU use (median of the run's status lines; 100 =
one core) and, every 10 s, each child's resident memory (``--loop --frames 6000`` makes a
long run to watch it for growth). ``--source`` may be repeated: several sources run at once (one capture process each,
their frames batched together in the one inference process), reported per source and in total. With ``--kill CHILD`` it SIGKILLs one child after 30 frames and reports how
long until a frame captured after the kill was published. Prints a table, or one JSON object with --json.

    .venv/bin/python tools/bench_pipeline.py --frames 300 [--backend onnxruntime] [--json]
    .venv/bin/python tools/bench_pipeline.py --source demo --source demo --frames 150 [--camera-pitch 19.9]
"""
from __future__ import annotations

import argparse
import json
import os
import re
import signal
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

from realtime.client import Subscriber  # noqa: E402
from realtime.stats import STAGE_ORDER, percentiles, stage_latencies  # noqa: E402
from realtime.transport.schema import Frame  # noqa: E402


#: --kill: the child is killed after this many received frames (or half of --frames if fewer).
KILL_AFTER = 30


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def bench(sources: list[str], frames: int, backend: str | None, workers: int | None, skip: int,
          kill: str | None, extra: list[str]) -> dict:
    endpoint = f"tcp://127.0.0.1:{_free_port()}"
    cmd = [sys.executable, "-m", "realtime", "run", "--headless", "--publish", endpoint,
           "--max-frames", str(frames), *extra]
    for source in sources:
        cmd += ["--source", source]
    if backend:
        cmd += ["--backend", backend]
    if workers:
        cmd += ["--workers", str(workers)]
    proc = subprocess.Popen(cmd, cwd=REPO, stderr=subprocess.PIPE, text=True)
    log: list[str] = []
    reader = threading.Thread(target=lambda: log.extend(line.rstrip() for line in proc.stderr), daemon=True)
    reader.start()
    rss: dict[str, list[float]] = {}
    sampler = threading.Thread(target=_sample_rss, args=(proc, log, rss), daemon=True)
    sampler.start()
    received: list[tuple[float, Frame]] = []
    kill_at = kill_gap = None
    bar = tqdm(total=frames * len(sources), desc="frames published", unit="frame", disable=None, leave=False)
    with Subscriber(endpoint) as sub:
        while proc.poll() is None or sub.sock.poll(0):
            m = sub.recv(timeout_s=0.5)
            if m is None or not isinstance(m[1], Frame):
                continue
            received.append((sub.received_at, m[1]))
            bar.update()
            if kill and kill_at is None and len(received) == min(frames // 2, KILL_AFTER):
                pids = re.findall(rf"started {re.escape(kill)} pid=(\d+)", "\n".join(log))
                if not pids:
                    raise SystemExit(f"no child named {kill!r} in the run's log")
                os.kill(int(pids[-1]), signal.SIGKILL)
                kill_at = time.time()
            elif kill_at is not None and kill_gap is None and m[1].t_capture > kill_at:
                kill_gap = sub.received_at - kill_at
    bar.close()
    rc = proc.wait()
    sampler.join(5)
    reader.join(5)
    if rc != 0 or not received:
        raise SystemExit(f"the run failed (exit status {rc}):\n" + "\n".join(log[-30:]))
    by_source: dict[str, list[tuple[float, Frame]]] = {}
    for t, f in received:
        by_source.setdefault(f.source, []).append((t, f))
    per_source = {name: _source_stats(rows, skip) for name, rows in by_source.items()}
    measured = [row for rows in by_source.values() for row in (rows[skip:] if len(rows) > skip + 10 else rows)]
    published = [f for _, f in measured]
    lat = [stage_latencies(f.stages, f.t_publish) for f in published]
    stages = {k: percentiles([row[k] for row in lat if k in row], (50, 95, 99))
              for k in (*STAGE_ORDER[1:], "total") if any(k in row for row in lat)}
    transport = percentiles([(t - f.t_publish) * 1e3 for t, f in measured], (50, 95, 99))
    text = "\n".join(log)
    backend_used = re.findall(r"inference_started backend=(\S+)", text)
    cpu = [{k: float(v) for k, v in re.findall(r"(\w+)=(\d+)", m)} for m in re.findall(r"\| cpu% ([^|]*)", text)]
    first = next(iter(per_source.values()))
    finished = re.findall(r"inference_finished frames=(\d+) batches=(\d+)", text)
    return {
        "frames_per_2d_batch": int(finished[-1][0]) / max(int(finished[-1][1]), 1) if finished else None,
        "sources": sources, "frames_requested": frames, "frames_received": len(received),
        "frames_measured": len(published), "skipped_warmup": len(received) - len(published),
        "processed_fps": sum(r["processed_fps"] for r in per_source.values()),
        "dropped": sum(r["dropped"] for r in per_source.values()),
        "source_frames": sum(r["source_frames"] for r in per_source.values()),
        "people_per_frame": float(np.mean([len(f.people) for f in published])),
        "people_3d_per_frame": float(np.mean([sum(p.joints3d is not None for p in f.people) for f in published])),
        "latency_ms": stages, "transport_ms": transport,
        "cpu_percent": {k: float(np.median([c[k] for c in cpu[1:] or cpu])) for k in (cpu[0] if cpu else {})},
        "per_source": per_source,
        "backend": backend_used[-1] if backend_used else "?",
        "workers": workers, "killed": kill if kill_at is not None else None, "resume_after_kill_s": kill_gap,
        "width": first["width"], "height": first["height"],
        "rss_mb": {name: _rss_summary(v) for name, v in rss.items()},
    }


#: Seconds between RSS samples of each child (memory growth over a long run: ``--loop``).
RSS_EVERY_S = 10.0
#: Samples taken as warm-up (models loaded, queues and caches filled) before memory should be flat.
RSS_WARMUP_SAMPLES = 12


def _rss_summary(v: list[float]) -> dict:
    """First, after warm-up (2 min), last and largest RSS, and one sample every 5 minutes."""
    warm = v[min(RSS_WARMUP_SAMPLES, len(v) - 1)]
    return {"first": v[0], "after_warmup": warm, "last": v[-1], "max": max(v), "samples": len(v),
            "growth_after_warmup": v[-1] - warm, "every_5_min": v[::30]}


def _sample_rss(proc: subprocess.Popen, log: list[str], rss: dict[str, list[float]]) -> None:
    """Resident memory (MB, from /proc) of each child named in the run's log, every RSS_EVERY_S."""
    while proc.poll() is None:
        pids = dict(re.findall(r"started (\S+) pid=(\d+)", "\n".join(log)))  # the latest pid of each
        for name, pid in pids.items():
            try:
                with open(f"/proc/{pid}/status") as f:
                    kb = next(int(line.split()[1]) for line in f if line.startswith("VmRSS:"))
            except (OSError, StopIteration, ValueError):
                continue
            rss.setdefault(name, []).append(kb / 1024.0)
        time.sleep(RSS_EVERY_S)


def _source_stats(rows: list[tuple[float, Frame]], skip: int) -> dict:
    measured = [f for _, f in (rows[skip:] if len(rows) > skip + 10 else rows)]
    span = measured[-1].t_publish - measured[0].t_publish
    last = rows[-1][1]
    return {"processed_fps": (len(measured) - 1) / span if span > 0 else float("nan"),
            "dropped": last.dropped, "source_frames": last.seq + 1, "frames_measured": len(measured),
            "people_per_frame": float(np.mean([len(f.people) for f in measured])),
            "width": last.width, "height": last.height}


def _table(r: dict) -> str:
    lines = [f"source {', '.join(r['sources'])} ({r['width']}x{r['height']}), backend {r['backend']}, "
             f"{r['frames_measured']} frames measured (first {r['skipped_warmup']} skipped)",
             f"processed fps        {r['processed_fps']:8.1f}",
             f"dropped frames       {r['dropped']:8d}  of {r['source_frames']} source frames",
             f"people per frame     {r['people_per_frame']:8.2f}  (with 3D: {r['people_3d_per_frame']:.2f})"]
    if len(r["per_source"]) > 1:
        lines += [f"  {name:<18} fps {v['processed_fps']:5.1f}  dropped {v['dropped']:5d} of {v['source_frames']:5d}"
                  f"  people/frame {v['people_per_frame']:.2f}" for name, v in r["per_source"].items()]
    if len(r["per_source"]) > 1 and r["frames_per_2d_batch"]:
        lines.append(f"frames per 2D batch  {r['frames_per_2d_batch']:8.2f}  (one detector + one keypoint call each)")
    if r["cpu_percent"]:
        lines.append("cpu % (100 = a core)  " + "  ".join(f"{k} {v:.0f}" for k, v in r["cpu_percent"].items()))
    lines += ["", f"{'latency (ms)':<22}{'p50':>8}{'p95':>8}{'p99':>8}"]
    for k, v in r["latency_ms"].items():
        name = "capture->publish" if k == "total" else k
        lines.append(f"{name:<22}{v['p50']:8.1f}{v['p95']:8.1f}{v['p99']:8.1f}")
    t = r["transport_ms"]
    lines.append(f"{'publish->subscriber':<22}{t['p50']:8.2f}{t['p95']:8.2f}{t['p99']:8.2f}")
    if any(v["samples"] > 1 for v in r["rss_mb"].values()):
        lines.append("\nRSS MB (first -> after 2 min -> last, max)  " + "  ".join(
            f"{name} {v['first']:.0f}->{v['after_warmup']:.0f}->{v['last']:.0f} ({v['max']:.0f})"
            for name, v in sorted(r["rss_mb"].items())))
    if r["killed"]:
        gap = r["resume_after_kill_s"]
        lines.append(f"\nSIGKILL {r['killed']}: publishing resumed after "
                     + (f"{gap:.2f} s" if gap is not None else "never (within the run)"))
    return "\n".join(lines)


def main() -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--source", action="append", help="source (repeat for several at once; default: demo)")
    p.add_argument("--frames", type=int, default=300, help="processed frames to run for")
    p.add_argument("--backend", help="2D backend (default: [pose2d] backend)")
    p.add_argument("--workers", type=int, help="lifting workers (default: [runtime] workers)")
    p.add_argument("--skip", type=int, default=10, help="first frames left out of the statistics (start-up)")
    p.add_argument("--kill", metavar="CHILD", help="SIGKILL this child (e.g. lift-0, inference) after 30 frames")
    p.add_argument("--config", help="config file passed to realtime run")
    p.add_argument("--no-pace", action="store_true", help="decode the file as fast as the pipeline takes it")
    p.add_argument("--loop", action="store_true", help="loop file sources (a long run: --frames 6000 --loop)")
    p.add_argument("--camera-pitch", type=float, metavar="DEG", help="passed to realtime run (demo: 19.9)")
    p.add_argument("--json", action="store_true", help="print one JSON object instead of the table")
    args = p.parse_args()
    extra = ((["--config", args.config] if args.config else []) + (["--no-pace"] if args.no_pace else [])
             + (["--camera-pitch", str(args.camera_pitch)] if args.camera_pitch is not None else [])
             + (["--loop"] if args.loop else []))
    result = bench(args.source or ["demo"], args.frames, args.backend, args.workers, args.skip, args.kill, extra)
    print(json.dumps(result) if args.json else _table(result))
    return 0


if __name__ == "__main__":
    sys.exit(main())
