"""Video sources on real files, a live HTTP camera that drops out, and a dead network address."""
from __future__ import annotations

import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest

from realtime.capture import SourceError, VideoSource, resolve_uri, source_kind
from realtime.capture.source import DEMO_VIDEO

REPO = Path(__file__).resolve().parent.parent

sys.path.insert(0, str(REPO / "tools"))
from mjpeg_camera import MjpegCamera  # noqa: E402


def _drain(src: VideoSource, limit: int = 10_000) -> list:
    frames = []
    while not src.ended and len(frames) < limit:
        f = src.read()
        if f is not None:
            frames.append(f)
    return frames


def test_file_reads_every_frame_then_ends(small_video):
    src = VideoSource(str(small_video), realtime=False)
    frames = _drain(src)
    assert len(frames) == 280 and src.ended
    assert frames[0].image.shape == (256, 340, 3) and frames[0].image.dtype == np.uint8
    assert [f.seq for f in frames] == list(range(280))
    assert src.read() is None


def test_file_loops_with_increasing_seq_and_time(small_video):
    src = VideoSource(str(small_video), loop=True, realtime=True)
    src._t0 = time.time() - 100.0  # pretend the run started 100 s ago: no pacing sleeps, frames are "late"
    frames = _drain(src, limit=300)
    assert not src.ended and len(frames) == 300
    seqs = [f.seq for f in frames]
    assert seqs == sorted(seqs) and len(set(seqs)) == len(seqs)
    assert src.skipped > 0  # late frames were passed over to keep up with real time, and counted
    assert seqs[-1] >= 300 and seqs[-1] + 1 == len(frames) + src.skipped


def test_realtime_file_timestamps_follow_the_file(small_video):
    src = VideoSource(str(small_video), realtime=True)
    first = src.read()
    assert 0.0 < src.wait_s() <= 1.0 / 28 + 1e-3  # the next frame is due one frame period later
    time.sleep(src.wait_s())
    second = src.read()
    assert second.t_capture - first.t_capture == pytest.approx(1.0 / 28, abs=1e-3)


def test_not_a_video_is_a_clear_error(tmp_path):
    bad = tmp_path / "notes.mp4"
    bad.write_text("this is not a video")
    with pytest.raises(SourceError, match="notes.mp4: not a video"):
        VideoSource(str(bad))
    with pytest.raises(SourceError, match="no such video file"):
        VideoSource(str(tmp_path / "missing.mp4"))
    with pytest.raises(SourceError, match="webcam:N"):
        VideoSource("webcam:front")


def test_a_still_image_as_a_source_points_to_realtime_estimate(photos_dir):
    """OpenCV opens a JPEG as a one-frame video that then gives nothing: say what to do instead."""
    with pytest.raises(SourceError, match="a still image, not a video: `realtime estimate"):
        VideoSource(str(photos_dir / "p2.jpg"))
    done = subprocess.run([sys.executable, "-m", "realtime", "run", "--source", str(photos_dir / "p2.jpg")],
                          cwd=REPO, capture_output=True, text=True, timeout=60)
    assert done.returncode == 2 and "realtime estimate" in done.stderr, done.stderr


def test_dead_rtsp_address_is_retried_with_backoff():
    events = []
    src = VideoSource("rtsp://127.0.0.1:9/stream", reconnect_initial_s=0.05, reconnect_max_s=0.2,
                      on_event=events.append)
    deadline = time.monotonic() + 1.5
    while time.monotonic() < deadline:
        time.sleep(src.wait_s())
        assert src.read() is None
    assert not src.connected and not src.ended
    assert len(events) >= 3 and all(e["event"] == "source_down" for e in events)
    assert [e["retry_in_s"] for e in events[:4]] == [0.05, 0.1, 0.2, 0.2]


def test_live_http_camera_that_drops_out_is_reconnected(small_video):
    """A real MJPEG-over-HTTP camera on loopback: frames are decoded live and stamped with the wall
    clock; the camera going away is reported and retried; when it is back, frames continue."""
    events = []
    camera = MjpegCamera(small_video, max_frames=60)
    src = VideoSource(camera.url, reconnect_initial_s=0.1, reconnect_max_s=0.4, on_event=events.append)
    assert src.kind == "stream" and (src.width, src.height) == (340, 256)
    frames = []
    while len(frames) < 10:
        f = src.read()
        if f is not None:
            frames.append(f)
    assert [f.seq for f in frames] == list(range(10))
    assert all(abs(f.t_capture - time.time()) < 2.0 for f in frames) and frames[-1].image.shape == (256, 340, 3)
    camera.stop()
    deadline = time.monotonic() + 10
    while not any(e["event"] == "source_down" for e in events) and time.monotonic() < deadline:
        time.sleep(src.wait_s())
        src.read()
    assert not src.connected and events[0]["reason"] == "read failed", events
    camera = MjpegCamera(small_video, port=camera.port, max_frames=60)
    try:
        later = None
        while later is None and time.monotonic() < deadline:
            time.sleep(src.wait_s())
            later = src.read()
        assert later is not None and later.seq >= 10, events
        assert events[-1] == {"event": "reconnected", "uri": camera.url, "attempts": len(events) - 1}
    finally:
        camera.stop()
        src.close()


def test_uri_kinds_and_demo():
    assert source_kind("rtsp://cam/1") == "stream" and source_kind("http://x/y.mjpg") == "stream"
    assert source_kind("webcam:0") == "webcam" and source_kind("a.mp4") == "file"
    assert resolve_uri("demo") == (str(DEMO_VIDEO) if DEMO_VIDEO.exists() else "webcam:0")
