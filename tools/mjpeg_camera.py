"""Serve a video file as a live IP camera: MJPEG over HTTP (``multipart/x-mixed-replace``), looping at
its frame rate, each client getting the current frame onwards, as network cameras do.

For trying the pipeline's network-source path (reconnects included) without a camera, and for the
tests and ``tools/bench_capture.py``. The JPEGs are encoded once at start. With ``stamp=True``
(``--stamp``) each frame carries its index in the file as a block code in its top-left corner
(:func:`draw_stamp`, read back from a decoded image by :func:`read_stamp`), so a reader can tell
which frame a decoder gave it and measure latency against :attr:`MjpegCamera.sent_at`.

    python tools/mjpeg_camera.py VIDEO [--port 8090] [--fps 30]
    realtime run --source http://127.0.0.1:8090/stream.mjpg
"""
from __future__ import annotations

import argparse
import http.server
import socketserver
import threading
import time
from pathlib import Path

import cv2
import numpy as np

BOUNDARY = b"frame"

#: Stamp geometry: 16 bits as two rows of 8 blocks, then a row holding each bit inverted as a half block (a check).
STAMP_BLOCK = 32
STAMP_BITS = 16
STAMP_COLS = 8


def draw_stamp(image: np.ndarray, index: int) -> None:
    """Write ``index % 65536`` into the image's top-left 256x96 pixels as black/white blocks."""
    b = STAMP_BLOCK
    for bit in range(STAMP_BITS):
        row, col = divmod(bit, STAMP_COLS)
        image[row * b:(row + 1) * b, col * b:(col + 1) * b] = 255 if (index >> bit) & 1 else 0
    for col in range(STAMP_COLS):  # check row: bit pairs (col, col + 8) inverted as two half-blocks
        lo, hi = (index >> col) & 1, (index >> (col + STAMP_COLS)) & 1
        image[2 * b:3 * b, col * b:col * b + b // 2] = 0 if lo else 255
        image[2 * b:3 * b, col * b + b // 2:(col + 1) * b] = 0 if hi else 255


def read_stamp(image: np.ndarray) -> int | None:
    """The index :func:`draw_stamp` wrote (mod 65536), or None if the code does not check out."""
    b, q = STAMP_BLOCK, STAMP_BLOCK // 4
    if image.shape[0] < 3 * b or image.shape[1] < STAMP_COLS * b:
        return None
    gray = image[:3 * b, :STAMP_COLS * b].mean(axis=2) if image.ndim == 3 else image[:3 * b, :STAMP_COLS * b]
    index = 0
    for bit in range(STAMP_BITS):
        row, col = divmod(bit, STAMP_COLS)
        on = gray[row * b + q:(row + 1) * b - q, col * b + q:(col + 1) * b - q].mean() > 128
        half = col * b + (b // 2 if row else 0)
        check = gray[2 * b + q:3 * b - q, half + q // 2:half + b // 2 - q // 2].mean() > 128
        if on == check:
            return None
        index |= int(on) << bit
    return index


class MjpegCamera:
    """A live MJPEG camera on ``http://127.0.0.1:<port>/stream.mjpg``; ``stop()`` drops every client
    at once (a camera losing power), a new instance on the same port brings it back."""

    def __init__(self, video: str | Path, port: int = 0, fps: float | None = None, quality: int = 90,
                 max_frames: int = 0, stamp: bool = False) -> None:
        cap = cv2.VideoCapture(str(video))
        self.fps = fps or cap.get(cv2.CAP_PROP_FPS) or 30.0
        self.jpegs: list[bytes] = []
        while not max_frames or len(self.jpegs) < max_frames:
            ok, frame = cap.read()
            if not ok:
                break
            if stamp:
                draw_stamp(frame, len(self.jpegs))
            self.jpegs.append(cv2.imencode(".jpg", frame, [cv2.IMWRITE_JPEG_QUALITY, quality])[1].tobytes())
        cap.release()
        if not self.jpegs:
            raise ValueError(f"{video}: no frames to serve")
        self.t0 = time.time()
        #: Wall time each frame index was written to a client last (for latency measurements).
        self.sent_at: dict[int, float] = {}
        self._stopped = threading.Event()
        self._server = socketserver.ThreadingTCPServer(("127.0.0.1", port), self._handler(), bind_and_activate=False)
        self._server.allow_reuse_address = True
        self._server.daemon_threads = True
        self._server.server_bind()
        self._server.server_activate()
        self.port = self._server.server_address[1]
        self.url = f"http://127.0.0.1:{self.port}/stream.mjpg"
        threading.Thread(target=self._server.serve_forever, daemon=True).start()

    def current(self) -> int:
        """The index of the frame on air now (the camera runs whether or not anyone watches)."""
        return int((time.time() - self.t0) * self.fps)

    def _handler(self) -> type[http.server.BaseHTTPRequestHandler]:
        camera = self

        class Handler(http.server.BaseHTTPRequestHandler):
            def log_message(self, *args: object) -> None:
                pass

            def do_GET(self) -> None:
                self.send_response(200)
                self.send_header("Content-Type", f"multipart/x-mixed-replace; boundary={BOUNDARY.decode()}")
                self.send_header("Cache-Control", "no-cache")
                self.end_headers()
                index = camera.current()
                try:
                    while not camera._stopped.is_set():
                        jpeg = camera.jpegs[index % len(camera.jpegs)]
                        self.wfile.write(b"--%s\r\nContent-Type: image/jpeg\r\nContent-Length: %d\r\n\r\n"
                                         % (BOUNDARY, len(jpeg)) + jpeg + b"\r\n")
                        self.wfile.flush()
                        camera.sent_at[index] = time.time()
                        index += 1
                        time.sleep(max(0.0, camera.t0 + index / camera.fps - time.time()))
                except (BrokenPipeError, ConnectionResetError):
                    pass

        return Handler

    def stop(self) -> None:
        self._stopped.set()
        self._server.shutdown()
        self._server.server_close()

    def __enter__(self) -> "MjpegCamera":
        return self

    def __exit__(self, *exc: object) -> None:
        self.stop()


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("video")
    p.add_argument("--port", type=int, default=8090)
    p.add_argument("--fps", type=float, help="frame rate (default: the file's)")
    p.add_argument("--stamp", action="store_true", help="draw each frame's index as a block code (top left)")
    args = p.parse_args()
    camera = MjpegCamera(args.video, args.port, args.fps, stamp=args.stamp)
    print(f"serving {args.video} ({len(camera.jpegs)} frames at {camera.fps:g} fps) on {camera.url}", flush=True)
    try:
        threading.Event().wait()
    except KeyboardInterrupt:
        camera.stop()


if __name__ == "__main__":
    main()
