"""Benchmark network-stream capture: OpenCV (as ``realtime.capture.VideoSource`` reads) against PyAV.

Measures, per reader, how long after a live camera sent a frame the reader has it as a BGR image,
so we can tell whether PyAV (``pip install av``) lowers capture latency enough to use it for
RTSP/HTTP sources. The camera is ``tools/mjpeg_camera.py`` (MJPEG over HTTP, as IP cameras serve)
with each frame's index drawn into its top-left corner as a block code (``stamp=True``); the reader
decodes the code from the image it got, and

    latency = wall time the BGR image is in hand - wall time the camera wrote that frame
              (``MjpegCamera.sent_at``: after its bytes went to the socket)

Readers, each in its own subprocess reading ``--frames`` frames as fast as they come (as the
capture process does), one after another against the same camera, the order rotated each repeat:

  opencv             cv2.VideoCapture(url, CAP_FFMPEG, [open/read timeouts]), grab() + retrieve():
                     what VideoSource does with [source] stream_decode_threads = 0
  opencv-lowdelay    the same with OPENCV_FFMPEG_CAPTURE_OPTIONS="fflags;nobuffer|flags;low_delay"
                     (FFmpeg options as key;value pairs joined by |, read when the capture opens)
  opencv-lowdelay-1thread  the same plus CAP_PROP_N_THREADS=1 as an open parameter: one decoder
                     thread instead of OpenCV's one per CPU, which for H.264 means frame threading
                     (a frame of delay per extra thread)
  pyav               av.open(url), decode(), frame.to_ndarray(format="bgr24"); PyAV's default
                     decoder threading (slice threads)
  pyav-lowdelay      the same with options fflags=nobuffer, flags=low_delay
  pyav-lowdelay-auto the same with stream.thread_type = "AUTO" (frame + slice threads)

Per reader: frames read, latency p50/p95/p99 ms (the first ``--warmup`` frames left out: they
include the backlog FFmpeg's stream probe reads while opening, drained over the first frames), frames skipped (gaps in the frame indices),
CPU ms per frame (``time.process_time`` of the reader process over its read loop, all threads,
divided by frames) and start-up ms (open -> first BGR frame). Every number is the median over
``--repeats`` runs.

    .venv/bin/python tools/bench_capture.py [--video V] [--frames 300] [--repeats 3] [--json]
    .venv/bin/python tools/bench_capture.py --rtsp NODE_MODULES [--video V] ...

RTSP (``--rtsp``): the same readers against a local RTSP server, the npm package
``rtsp-streaming-server`` (pure JavaScript; ``npm install rtsp-streaming-server@2.1.0`` in some
folder, pass its node_modules folder), fed by a PyAV publisher subprocess (``rtsp`` output format)
that sends the stamped video as H.264 (libx264 ultrafast, zerolatency, a keyframe every 30 frames,
encoded once at start so encoding costs nothing during the measurement); ``sent_at`` is then the
time the publisher handed the frame's packets to the server. That server only relays RTP over UDP,
so every reader uses UDP (OpenCV's default, ``rtsp_flags=prefer_tcp``, falls back to it; the other
readers are given ``rtsp_transport=udp``). Latency here includes the server's relay.
"""
from __future__ import annotations

import argparse
import bisect
import json
import os
import socket
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path

import numpy as np
from tqdm import tqdm

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))
sys.path.insert(0, str(REPO / "tools"))

from mjpeg_camera import MjpegCamera, draw_stamp, read_stamp  # noqa: E402
from realtime.stats import percentiles  # noqa: E402

DEFAULT_VIDEO = REPO.parent / "shared" / "data" / "video" / "deepstream_Retail02_short.mp4"
READERS = ("opencv", "opencv-lowdelay", "opencv-lowdelay-1thread", "pyav", "pyav-lowdelay", "pyav-lowdelay-auto")
LOWDELAY = {"fflags": "nobuffer", "flags": "low_delay"}
#: VideoSource's timeouts (realtime/capture/source.py).
OPEN_TIMEOUT_MS = READ_TIMEOUT_MS = 3000
#: The stamp's pixels (top-left) kept per frame and decoded after the read loop.
STAMP_H, STAMP_W = 96, 256


def _av_version() -> str | None:
    try:
        import av
    except ImportError:
        return None
    return av.__version__


def have_av() -> bool:
    try:
        import av  # noqa: F401
    except ImportError:
        return False
    return True


# --- readers (run in a subprocess: --worker READER) ---------------------------------------------

def _worker(reader: str, url: str, frames: int, rtsp: bool, out: str) -> None:
    """Read ``frames`` frames; write open time, first-frame time, per-frame (time, cpu, stamp) to ``out``."""
    times: list[float] = []
    cpus: list[float] = []
    crops: list[np.ndarray] = []
    if reader.startswith("opencv"):
        import cv2
        if "lowdelay" in reader:  # read by OpenCV when the capture opens; keep prefer_tcp as without it
            opts = "|".join(f"{k};{v}" for k, v in {**LOWDELAY, **({"rtsp_flags": "prefer_tcp"} if rtsp else {})}.items())
            os.environ["OPENCV_FFMPEG_CAPTURE_OPTIONS"] = opts
        t_open = time.time()
        params = [cv2.CAP_PROP_OPEN_TIMEOUT_MSEC, OPEN_TIMEOUT_MS, cv2.CAP_PROP_READ_TIMEOUT_MSEC, READ_TIMEOUT_MS]
        if reader.endswith("-1thread"):  # OpenCV's default is one decoder thread per CPU (frame threading)
            params += [cv2.CAP_PROP_N_THREADS, 1]
        cap = cv2.VideoCapture(url, cv2.CAP_FFMPEG, params)
        if not cap.isOpened():
            raise SystemExit(f"{reader}: could not open {url}")
        while len(times) < frames and cap.grab():
            ok, image = cap.retrieve()
            if not ok or image is None:
                continue
            times.append(time.time())
            cpus.append(time.process_time())
            crops.append(image[:STAMP_H, :STAMP_W].copy())
        cap.release()
    else:
        import av
        options = dict(LOWDELAY) if "lowdelay" in reader else {}
        if rtsp:
            options["rtsp_transport"] = "udp"
        t_open = time.time()
        container = av.open(url, options=options, timeout=(OPEN_TIMEOUT_MS / 1e3, READ_TIMEOUT_MS / 1e3))
        stream = container.streams.video[0]
        if reader.endswith("-auto"):
            stream.thread_type = "AUTO"
        try:
            for frame in container.decode(stream):
                image = frame.to_ndarray(format="bgr24")
                times.append(time.time())
                cpus.append(time.process_time())
                crops.append(image[:STAMP_H, :STAMP_W].copy())
                if len(times) >= frames:
                    break
        except av.error.FFmpegError as e:  # a read timeout or a dropped connection ends the run
            print(f"{reader}: {e}", file=sys.stderr)
        container.close()
    Path(out).write_text(json.dumps({"t_open": t_open, "times": times, "cpu": cpus,
                                     "stamps": [read_stamp(c) for c in crops]}))


# --- sources ------------------------------------------------------------------------------------

class SentLog:
    """Send times by absolute frame index; resolves a stamp (index mod loop length) to its frame."""

    def __init__(self, loop: int) -> None:
        self.loop = loop
        self.sent_at: dict[int, float] = {}

    def resolve(self, stamp: int, t_done: float) -> tuple[int, float] | None:
        """The frame with this stamp sent nearest ``t_done`` (a loop apart from any other): (absolute
        index, send time). Nearest, not last before: the camera notes the time after its write returns,
        which for a small frame can be after the reader already has it (latency then reads ~0)."""
        rows = self._by_stamp.get(stamp)
        if not rows:
            return None
        i = bisect.bisect_right(rows, (t_done, float("inf")))
        t, k = min(rows[max(i - 1, 0):i + 1], key=lambda row: abs(row[0] - t_done))
        return k, t

    def snapshot(self) -> None:
        self._by_stamp: dict[int, list[tuple[float, int]]] = {}
        for k, t in sorted(dict(self.sent_at).items(), key=lambda kv: kv[1]):
            self._by_stamp.setdefault(k % self.loop, []).append((t, k))


class MjpegSource(SentLog):
    def __init__(self, video: Path, camera_frames: int) -> None:
        self.camera = MjpegCamera(video, max_frames=camera_frames, stamp=True)
        super().__init__(len(self.camera.jpegs))
        self.sent_at = self.camera.sent_at
        self.url, self.fps = self.camera.url, self.camera.fps
        image = _first_frame(video)
        self.describe = (f"MJPEG over HTTP ({image.shape[1]}x{image.shape[0]}, {self.fps:g} fps, "
                         f"{np.mean([len(j) for j in self.camera.jpegs]) / 1e3:.0f} kB/frame)")

    def close(self) -> None:
        self.camera.stop()


class RtspSource(SentLog):
    """rtsp-streaming-server (node) + a PyAV publisher subprocess (``--worker publish``)."""

    def __init__(self, video: Path, camera_frames: int, node_modules: str) -> None:
        pub_port, client_port = _free_port(), _free_port()
        rtp = 20000 + (os.getpid() % 200) * 100
        script = ("const S = require('rtsp-streaming-server').default;"
                  f"new S({{serverPort: {pub_port}, clientPort: {client_port}, rtpPortStart: {rtp},"
                  " rtpPortCount: 100}).start().then(() => console.log('ready'));")
        self.server = subprocess.Popen(["node", "-e", script], env={**os.environ, "NODE_PATH": node_modules},
                                       stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
        if self.server.stdout.readline().strip() != "ready":
            self.server.kill()
            raise SystemExit("the RTSP server did not start: " + self.server.stdout.read()[-2000:])
        cap_frames = camera_frames - camera_frames % 30 or 30  # whole GOPs, so each loop starts on a keyframe
        self.publisher = subprocess.Popen(
            [sys.executable, __file__, "--worker", "publish", "--url", f"rtsp://127.0.0.1:{pub_port}/cam",
             "--video", str(video), "--camera-frames", str(cap_frames)],
            stdout=subprocess.PIPE, text=True)
        header = json.loads(self.publisher.stdout.readline() or "{}")
        if "loop" not in header:
            self.close()
            raise SystemExit("the RTSP publisher did not start")
        super().__init__(header["loop"])
        self.fps, self.url = header["fps"], f"rtsp://127.0.0.1:{client_port}/cam"
        self.describe = (f"RTSP/UDP via rtsp-streaming-server, H.264 ({header['width']}x{header['height']}, "
                         f"{self.fps:g} fps, {header['kb_per_frame']:.0f} kB/frame)")
        threading.Thread(target=self._follow, daemon=True).start()
        time.sleep(1.0)

    def _follow(self) -> None:
        for line in self.publisher.stdout:
            k, t = line.split()
            self.sent_at[int(k)] = float(t)

    def close(self) -> None:
        for proc in (getattr(self, "publisher", None), self.server):
            if proc is not None and proc.poll() is None:
                proc.terminate()
                proc.wait(5)


def _publish(url: str, video: str, frames: int) -> None:
    """Encode the stamped video once, then send it to ``url`` (RTSP ANNOUNCE/RECORD) in a loop, in real
    time; print a JSON header, then "index send_time" per frame."""
    import av
    import cv2
    cap = cv2.VideoCapture(video)
    fps = cap.get(cv2.CAP_PROP_FPS) or 30.0
    images = []
    while len(images) < frames:
        ok, image = cap.read()
        if not ok:
            break
        draw_stamp(image, len(images))
        images.append(image)
    images = images[:len(images) - len(images) % 30 or len(images)]
    container = av.open(url, "w", format="rtsp", options={"rtsp_transport": "udp"})
    stream = container.add_stream("libx264", rate=round(fps),
                                  options={"preset": "ultrafast", "tune": "zerolatency", "g": "30",
                                           "keyint_min": "30", "sc_threshold": "0"})
    stream.width, stream.height, stream.pix_fmt = images[0].shape[1], images[0].shape[0], "yuv420p"
    encoded: list[list[tuple[bytes, bool]]] = []
    for i, image in enumerate(images):
        frame = av.VideoFrame.from_ndarray(image, format="bgr24")
        frame.pts = i
        encoded.append([(bytes(p), p.is_keyframe) for p in stream.encode(frame)])
    tail = [(bytes(p), p.is_keyframe) for p in stream.encode(None)]
    if tail:  # zerolatency gives one packet per frame at once; anything left is attached to the last frame
        encoded[-1] += tail
    print(json.dumps({"loop": len(images), "fps": fps, "width": stream.width, "height": stream.height,
                      "kb_per_frame": sum(len(b) for f in encoded for b, _ in f) / len(encoded) / 1e3}), flush=True)
    t0 = time.time()
    k = 0
    try:
        while True:
            for data, key in encoded[k % len(encoded)]:
                packet = av.Packet(data)
                packet.pts = packet.dts = k
                packet.time_base = stream.codec_context.time_base or stream.time_base
                packet.is_keyframe = key
                packet.stream = stream
                container.mux(packet)
            print(k, repr(time.time()), flush=True)
            k += 1
            time.sleep(max(0.0, t0 + k / fps - time.time()))
    except (BrokenPipeError, KeyboardInterrupt):
        pass


def _first_frame(video: Path) -> np.ndarray:
    from realtime.capture import video_frames
    image = next(video_frames(video, 1), None)
    if image is None:
        raise SystemExit(f"{video}: cannot read")
    return image


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


# --- measurement --------------------------------------------------------------------------------

def run_reader(source: SentLog, reader: str, frames: int, warmup: int, rtsp: bool) -> dict:
    with tempfile.NamedTemporaryFile(suffix=".json") as f:
        env = {**os.environ, "OPENCV_FFMPEG_LOGLEVEL": "-8"}
        env.pop("OPENCV_FFMPEG_CAPTURE_OPTIONS", None)
        proc = subprocess.run([sys.executable, __file__, "--worker", reader, "--url", source.url,
                               "--frames", str(frames), "--out", f.name] + (["--rtsp-worker"] if rtsp else []),
                              env=env, capture_output=True, text=True, timeout=60 + 3 * frames / source.fps)
        if proc.returncode != 0:
            raise SystemExit(f"{reader} failed (exit {proc.returncode}):\n{proc.stderr[-3000:]}")
        raw = json.loads(Path(f.name).read_text())
    source.snapshot()
    rows = []
    unreadable = 0
    for t, stamp in zip(raw["times"], raw["stamps"]):
        hit = source.resolve(stamp, t) if stamp is not None else None
        if hit is None:
            unreadable += 1
            continue
        rows.append((hit[0], t - hit[1]))
    if len(rows) < 2:
        raise SystemExit(f"{reader}: {len(rows)} frames with a readable stamp of {len(raw['times'])}")
    index = np.array([k for k, _ in rows])
    gaps = np.diff(index)
    lat = [dt * 1e3 for _, dt in rows[warmup:] if rows[warmup:]] or [dt * 1e3 for _, dt in rows]
    n = len(raw["times"])
    return {"frames": n, "unreadable": unreadable,
            "latency_ms": percentiles(lat, (50, 95, 99)),
            "skipped": int(np.clip(gaps - 1, 0, None).sum()), "out_of_order": int((gaps <= 0).sum()),
            "cpu_ms_per_frame": (raw["cpu"][-1] - raw["cpu"][0]) / (n - 1) * 1e3,
            "startup_ms": (raw["times"][0] - raw["t_open"]) * 1e3}


def bench(args: argparse.Namespace) -> dict:
    readers = [r for r in args.readers.split(",") if r]
    unknown = set(readers) - set(READERS)
    if unknown:
        raise SystemExit(f"unknown readers {sorted(unknown)}; choose from {', '.join(READERS)}")
    notes = []
    if not have_av():
        dropped = [r for r in readers if r.startswith("pyav")]
        readers = [r for r in readers if not r.startswith("pyav")]
        if dropped:
            notes.append(f"PyAV rows skipped ({', '.join(dropped)}): `av` is not importable (pip install av)")
        if args.rtsp:
            raise SystemExit("--rtsp needs PyAV for its publisher: pip install av")
    source: MjpegSource | RtspSource = (RtspSource(Path(args.video), args.camera_frames, args.rtsp) if args.rtsp
                                        else MjpegSource(Path(args.video), args.camera_frames))
    runs: dict[str, list[dict]] = {r: [] for r in readers}
    try:
        time.sleep(0.5)
        for rep in tqdm(range(args.repeats), desc="repeats", disable=None, leave=False):
            order = readers[rep % len(readers):] + readers[:rep % len(readers)]
            for reader in order:
                runs[reader].append(run_reader(source, reader, args.frames, args.warmup, bool(args.rtsp)))
                time.sleep(0.5)
    finally:
        source.close()
    import cv2
    result = {"video": str(args.video), "source": source.describe, "url": source.url,
              "frames": args.frames, "repeats": args.repeats, "warmup": args.warmup,
              "opencv": cv2.__version__, "pyav": _av_version(), "notes": notes,
              "readers": {r: _median(v) for r, v in runs.items()}, "runs": runs}
    return result


def _median(runs: list[dict]) -> dict:
    out = {k: float(np.median([r[k] for r in runs])) for k in runs[0] if k != "latency_ms"}
    out["latency_ms"] = {q: float(np.median([r["latency_ms"][q] for r in runs])) for q in runs[0]["latency_ms"]}
    return out


def _table(r: dict) -> str:
    lines = [f"{r['source']} from {Path(r['video']).name}; OpenCV {r['opencv']}, PyAV {r['pyav'] or '-'}",
             f"{r['frames']} frames per run, medians over {r['repeats']} repeats (readers one after another, "
             f"order rotated); latency without the first {r['warmup']} frames", *r["notes"], "",
             f"{'reader':<25}{'frames':>7}{'p50 ms':>8}{'p95 ms':>8}{'p99 ms':>8}{'skipped':>9}"
             f"{'CPU ms/frame':>14}{'startup ms':>12}"]
    for name, v in r["readers"].items():
        lat = v["latency_ms"]
        bad = f"  ({v['unreadable']:.0f} unreadable)" if v["unreadable"] else ""
        lines.append(f"{name:<25}{v['frames']:7.0f}{lat['p50']:8.1f}{lat['p95']:8.1f}{lat['p99']:8.1f}"
                     f"{v['skipped']:9.0f}{v['cpu_ms_per_frame']:14.2f}{v['startup_ms']:12.0f}{bad}")
    return "\n".join(lines)


def main() -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--video", default=str(DEFAULT_VIDEO), help="video the camera serves (default: the 1080p demo)")
    p.add_argument("--frames", type=int, default=300, help="frames each reader reads per run")
    p.add_argument("--repeats", type=int, default=3, help="runs per reader (medians are reported)")
    p.add_argument("--warmup", type=int, default=60,
                   help="first frames left out of the latency statistics (the backlog read while opening)")
    p.add_argument("--readers", default=",".join(READERS), help=f"comma-separated subset of {', '.join(READERS)}")
    p.add_argument("--camera-frames", type=int, default=300, help="frames of the video the camera loops over")
    p.add_argument("--rtsp", metavar="NODE_MODULES", help="measure RTSP instead: rtsp-streaming-server's node_modules")
    p.add_argument("--json", action="store_true", help="print one JSON object instead of the table")
    p.add_argument("--worker", help=argparse.SUPPRESS)
    p.add_argument("--url", help=argparse.SUPPRESS)
    p.add_argument("--out", help=argparse.SUPPRESS)
    p.add_argument("--rtsp-worker", action="store_true", help=argparse.SUPPRESS)
    args = p.parse_args()
    if args.worker == "publish":
        _publish(args.url, args.video, args.camera_frames)
        return 0
    if args.worker:
        _worker(args.worker, args.url, args.frames, args.rtsp_worker, args.out)
        return 0
    result = bench(args)
    print(json.dumps(result) if args.json else _table(result))
    return 0


if __name__ == "__main__":
    sys.exit(main())
