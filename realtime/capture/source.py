"""Video sources through OpenCV: files, webcams (``webcam:N``), RTSP/HTTP streams, and "demo".

A source never sleeps on its own: :meth:`VideoSource.wait_s` says how long until the next frame
is due so the capture process can keep answering its consumer meanwhile. Live sources are
stamped with the wall clock at read; files with their own presentation time (CAP_PROP_POS_MSEC)
relative to the wall-clock start of the run, so a file paced in real time behaves like a camera
and latency measured from ``t_capture`` includes any time capture itself fell behind.
"""
from __future__ import annotations

import contextlib
import logging
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import cv2
import numpy as np

from realtime.config import REPO_ROOT

#: The bundled demo video, used by ``--source demo`` when present (else ``webcam:0``).
DEMO_VIDEO = REPO_ROOT.parent / "shared" / "data" / "video" / "deepstream_Retail02_short.mp4"
NETWORK_SCHEMES = ("rtsp://", "rtsps://", "http://", "https://", "rtmp://", "udp://", "tcp://")
#: File names taken for still images and for videos: each command points the other kind to the
#: command that takes it (``realtime estimate`` for images, ``realtime run --source`` for videos).
IMAGE_SUFFIXES = (".jpg", ".jpeg", ".png", ".bmp", ".webp", ".tif", ".tiff")
VIDEO_SUFFIXES = (".mp4", ".mov", ".avi", ".mkv", ".webm", ".m4v", ".mpg", ".mpeg", ".ts")
_OPEN_TIMEOUT_MS = 3000
_READ_TIMEOUT_MS = 3000

log = logging.getLogger("realtime.capture")


class SourceError(RuntimeError):
    """A source cannot be used at all (missing file, not a video); the message names it."""


@dataclass
class CapturedFrame:
    image: np.ndarray    # (H, W, 3) uint8 BGR
    seq: int             # frame index in the source (keeps counting across loops and reconnects)
    t_capture: float     # unix seconds


def resolve_uri(uri: str) -> str:
    if uri == "demo":
        return str(DEMO_VIDEO) if DEMO_VIDEO.exists() else "webcam:0"
    return uri


def video_frames(path: str | Path, limit: int = 0) -> Iterator[np.ndarray]:
    """Every BGR frame of a video file in order, at most ``limit`` (0 = all): for offline tools and
    tests, which want each frame rather than the newest (a live pipeline's :class:`VideoSource`).
    On a terminal a progress bar (tqdm) counts them: the benchmarks' long loops read through here."""
    from tqdm import tqdm

    cap = cv2.VideoCapture(str(path))
    total = int(cap.get(cv2.CAP_PROP_FRAME_COUNT)) or None
    bar = tqdm(total=min(limit, total or limit) if limit else total, desc=Path(path).name, unit="frame",
               disable=None, leave=False)
    with contextlib.closing(_timed(cap, limit)) as frames:
        try:
            for _, frame in frames:
                yield frame
                bar.update()
        finally:
            bar.close()


def timed_frames(path: str | Path, limit: int = 0) -> Iterator[tuple[float, np.ndarray]]:
    """(time in seconds, BGR frame) for every frame of a video file, at most ``limit`` (0 = all): the
    file's own timestamps, or its frame rate's where the container has none (``realtime.estimate_video``
    and ``realtime estimate clip.mp4``). The file is checked here, before the first frame is asked
    for: a missing file, a still image or a file OpenCV cannot open raises :class:`SourceError` at once."""
    if not Path(path).is_file():
        raise SourceError(f"{path}: no such video file")
    if Path(path).suffix.lower() in IMAGE_SUFFIXES:   # OpenCV would open it as a video of one frame
        raise SourceError(f"{path}: a still image, not a video: use realtime.estimate({str(path)!r})")
    cap = cv2.VideoCapture(str(path))
    if not cap.isOpened():
        raise SourceError(f"{path}: not a video OpenCV can open")
    return _timed(cap, limit)


def _timed(cap: cv2.VideoCapture, limit: int) -> Iterator[tuple[float, np.ndarray]]:
    fps = cap.get(cv2.CAP_PROP_FPS) or 30.0
    try:
        count = 0
        while not limit or count < limit:
            ok, frame = cap.read()
            if not ok:
                return
            msec = cap.get(cv2.CAP_PROP_POS_MSEC)
            # a container without timestamps reports 0 for every frame: count at its frame rate
            yield (msec / 1e3 if msec > 0 or count == 0 else count / fps), frame
            count += 1
    finally:
        cap.release()


def cameras_found() -> list[str]:
    """The video devices of this machine (``/dev/video*`` on Linux; empty elsewhere or if none)."""
    import glob

    return sorted(glob.glob("/dev/video*"), key=lambda p: (len(p), p))


def check_webcam(uri: str) -> None:
    """Fail with one line (naming the cameras there are) when ``webcam:N`` is malformed or cannot be opened."""
    found = ", ".join(cameras_found()) or "none"
    try:
        index = int(uri.split(":", 1)[1])
    except ValueError:
        raise SourceError(f"{uri}: expected webcam:N with N a camera number (cameras found: {found})") from None
    level = cv2.utils.logging.getLogLevel()
    cv2.utils.logging.setLogLevel(cv2.utils.logging.LOG_LEVEL_SILENT)  # OpenCV's own warnings say the same
    try:
        cap = cv2.VideoCapture(index)
        opened = cap.isOpened()
        cap.release()
    finally:
        cv2.utils.logging.setLogLevel(level)
    if not opened:
        raise SourceError(f"{uri}: camera {index} cannot be opened (cameras found: {found})")


def source_kind(uri: str) -> str:
    if uri.startswith("webcam:"):
        return "webcam"
    if uri.lower().startswith(NETWORK_SCHEMES):
        return "stream"
    return "file"


class VideoSource:
    """One opened source. ``read()`` returns the next frame, or None when none is available now
    (a live source reconnecting: see ``wait_s``) or the source ended (``ended`` is then true)."""

    def __init__(self, uri: str, *, loop: bool = False, realtime: bool = True,
                 reconnect_initial_s: float = 0.5, reconnect_max_s: float = 10.0,
                 stream_decode_threads: int = 1, start_seq: int = 0, on_event: Callable[[dict[str, Any]], None] | None = None,
                 give_up_after_s: float | None = None) -> None:
        """``give_up_after_s``: a live source down (not connected) this long ends (``ended``, with
        ``end_reason`` "gave_up") instead of being retried forever."""
        self.uri = resolve_uri(uri)
        self.kind = source_kind(self.uri)
        self.loop = loop and self.kind == "file"
        self.realtime = realtime
        self.reconnect_initial_s = reconnect_initial_s
        self.reconnect_max_s = reconnect_max_s
        self.stream_decode_threads = stream_decode_threads
        self.on_event = on_event or (lambda event: None)
        self.seq = start_seq
        self.skipped = 0          # frames decoded but passed over to keep up with real time
        self.reconnects = 0
        self.ended = False
        self.end_reason = ""
        self.give_up_after_s = give_up_after_s
        self._down_since: float | None = None
        self.width = self.height = 0
        self.fps = 0.0
        self._cap: cv2.VideoCapture | None = None
        self._t0: float | None = None          # wall time of the file's position 0 (this loop)
        self._next_retry = 0.0
        self._grabbed: tuple[int, float] | None = None
        self._backoff = reconnect_initial_s
        self._open_first(start_seq)

    def _open_first(self, start_seq: int) -> None:
        if self.kind == "file":
            path = Path(self.uri)
            if not path.is_file():
                raise SourceError(f"{self.uri}: no such video file")
            if path.suffix.lower() in IMAGE_SUFFIXES:
                raise SourceError(f"{self.uri}: a still image, not a video: `realtime estimate {self.uri}` "
                                  "gives its people in 3D")
            cap = cv2.VideoCapture(str(path))
            ok, _ = cap.read() if cap.isOpened() else (False, None)
            if not ok:
                cap.release()
                raise SourceError(f"{self.uri}: not a video OpenCV can decode")
            self._cap = cap
            self._init_props()
            self._frame_count = max(int(cap.get(cv2.CAP_PROP_FRAME_COUNT)), 1)
            cap.set(cv2.CAP_PROP_POS_FRAMES, start_seq % self._frame_count)
        elif not self._connect():
            self._schedule_retry("could not open")

    def _connect(self) -> bool:
        if self.kind == "webcam":
            try:
                index = int(self.uri.split(":", 1)[1])
            except ValueError:
                raise SourceError(f"{self.uri}: expected webcam:N with an integer N") from None
            cap = cv2.VideoCapture(index)
        else:
            params = [cv2.CAP_PROP_OPEN_TIMEOUT_MSEC, _OPEN_TIMEOUT_MS, cv2.CAP_PROP_READ_TIMEOUT_MSEC, _READ_TIMEOUT_MS]
            if self.stream_decode_threads > 0:  # frame threads delay each frame (docs/benchmarks.md, Capture)
                params += [cv2.CAP_PROP_N_THREADS, self.stream_decode_threads]
            cap = cv2.VideoCapture(self.uri, cv2.CAP_FFMPEG, params)
        if not cap.isOpened():
            cap.release()
            return False
        self._cap = cap
        self._init_props()
        self._down_since = None
        if self.reconnects:
            self.on_event({"event": "reconnected", "uri": self.uri, "attempts": self.reconnects})
        self._backoff = self.reconnect_initial_s
        return True

    def _init_props(self) -> None:
        assert self._cap is not None
        self.width = int(self._cap.get(cv2.CAP_PROP_FRAME_WIDTH))
        self.height = int(self._cap.get(cv2.CAP_PROP_FRAME_HEIGHT))
        self.fps = float(self._cap.get(cv2.CAP_PROP_FPS) or 0.0)

    def _schedule_retry(self, why: str) -> None:
        if self._cap is not None:
            self._cap.release()
            self._cap = None
        now = time.monotonic()
        self._down_since = self._down_since or now
        if self.give_up_after_s is not None and now - self._down_since >= self.give_up_after_s:
            self.ended, self.end_reason = True, "gave_up"
            self.on_event({"event": "source_gave_up", "uri": self.uri, "reason": why,
                           "down_s": round(now - self._down_since, 1), "attempts": self.reconnects})
            return
        self.reconnects += 1
        self._next_retry = time.monotonic() + self._backoff
        self.on_event({"event": "source_down", "uri": self.uri, "reason": why,
                       "attempt": self.reconnects, "retry_in_s": round(self._backoff, 3)})
        self._backoff = min(self._backoff * 2.0, self.reconnect_max_s)

    @property
    def connected(self) -> bool:
        return self._cap is not None

    def wait_s(self) -> float:
        """Seconds until ``read()`` can give the next frame (0 = now)."""
        if self.ended:
            return 0.0
        if self._cap is None:
            return max(0.0, self._next_retry - time.monotonic())
        if self.kind == "file" and self.realtime and self._t0 is not None:
            due = self._t0 + self._cap.get(cv2.CAP_PROP_POS_MSEC) / 1000.0 + self._frame_period()
            return max(0.0, due - time.time())
        return 0.0

    def _frame_period(self) -> float:
        return 1.0 / self.fps if self.fps > 0 else 1.0 / 30.0

    def read(self) -> CapturedFrame | None:
        return self.retrieve() if self.grab() else None

    def grab(self) -> bool:
        """Decode the next frame without converting it to BGR (cheap to drop: see :meth:`retrieve`)."""
        self._grabbed = None
        if self.ended:
            return False
        if self._cap is None:
            if time.monotonic() < self._next_retry or not self._connect():
                if self._cap is None and time.monotonic() >= self._next_retry:
                    self._schedule_retry("could not reconnect")
                return False
        if self.kind == "file":
            return self._grab_file()
        if not self._cap.grab():
            self._schedule_retry("read failed")
            return False
        self._grabbed = (self.seq, time.time())
        self.seq += 1
        return True

    def retrieve(self) -> CapturedFrame | None:
        """The last grabbed frame as a BGR image (None if there is none or it cannot be converted)."""
        if self._grabbed is None or self._cap is None:
            return None
        seq, t = self._grabbed
        self._grabbed = None
        ok, image = self._cap.retrieve()
        if not ok or image is None:
            return None
        return CapturedFrame(image=image, seq=seq, t_capture=t)

    def _grab_file(self) -> bool:
        assert self._cap is not None
        if self.realtime and self._t0 is not None:
            late = time.time() - (self._t0 + self._cap.get(cv2.CAP_PROP_POS_MSEC) / 1000.0)
            while late > 2 * self._frame_period() and self._cap.grab():
                self.skipped += 1
                self.seq += 1
                late -= self._frame_period()
        if not self._cap.grab():
            if not self.loop:
                self.ended = True
                return False
            self._cap.set(cv2.CAP_PROP_POS_FRAMES, 0)
            self._t0 = None
            if not self._cap.grab():
                self.ended = True
                return False
        pos = self._cap.get(cv2.CAP_PROP_POS_MSEC) / 1000.0
        if not self.realtime:
            t = time.time()
        else:
            if self._t0 is None:
                self._t0 = time.time() - pos
            t = self._t0 + pos
        self._grabbed = (self.seq, t)
        self.seq += 1
        return True

    def close(self) -> None:
        if self._cap is not None:
            self._cap.release()
            self._cap = None
