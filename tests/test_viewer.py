"""Seeing the stream: camera previews only on request, the viewer server, bad input, and the page and
the HTML report in a real browser (headless Chromium) against a real pipeline on the demo video."""
from __future__ import annotations

import asyncio
import json
import os
import re
import shutil
import socket
import subprocess
import sys
import time
from pathlib import Path

import cv2
import msgpack
import numpy as np
import pytest
import zmq
from browser import browser_log, chromium, element_crop, needs_browser, palette_pixels, screenshot, wait_until
from downstream_data import mocap_people, write_recording
from test_runtime import Run, config  # noqa: F401  (the pipeline fixture and runner of the runtime tests)

from realtime.client import Subscriber
from realtime.config import load_config
from realtime.outputs import preview as preview_mod
from realtime.outputs.preview import PREVIEW_REQUEST, PreviewMaker, PreviewRelay
from realtime.transport.schema import (TOPIC_PREVIEW_PREFIX, Frame, Person, Preview, frame_topic, pack,
                                       preview_topic, unpack)
from realtime.viewer.state import ViewState

REPO = Path(__file__).resolve().parent.parent
PALETTE = ["#1f77b4", "#ff7f0e", "#2ca02c", "#d62728", "#9467bd", "#8c564b", "#e377c2", "#17becf", "#bcbd22"]
#: Set to a path to keep the live page's screenshot (docs/images/viewer.jpg is made this way).
DOCS_SCREENSHOT = os.environ.get("REALTIME_VIEWER_SCREENSHOT")


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _realtime(*args: str, timeout: float = 60) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "realtime", *args], cwd=REPO, capture_output=True, text=True,
                          timeout=timeout)


# ---- previews: made only while a viewer asks --------------------------------------------------------------------

def _pump(relay: PreviewRelay, maker: PreviewMaker, publisher, seconds: float) -> None:
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        publisher.on_subscriptions()
        relay.on_readable()
        maker.poll()
        time.sleep(0.01)


def test_previews_are_made_and_published_only_while_a_viewer_asks(tmp_path, monkeypatch):
    """Real sockets as in a run: capture's maker, the publisher's XPUB and relay, a viewer's XSUB. No
    request: nothing is encoded or sent. A request: one downscaled JPEG per 1/preview_fps, published on
    preview/cam0 and decodable. The lease runs out: encoding stops. A forged message is counted, not sent."""
    from realtime.lifting import PosePrior
    from realtime.outputs.publisher import Publisher

    monkeypatch.setattr(preview_mod, "LEASE_S", 0.6)
    cfg = load_config()
    ctx = zmq.Context()
    pub = ctx.socket(zmq.XPUB)
    pub.setsockopt(zmq.XPUB_VERBOSE, 1)
    endpoint = f"ipc://{tmp_path}/pub"
    pub.bind(endpoint)
    publisher = Publisher(cfg, ["cam0"], pub, None, PosePrior.load())
    relay = publisher.preview = PreviewRelay(ctx, f"ipc://{tmp_path}/preview", pub, ["cam0"])
    maker = PreviewMaker(ctx, f"ipc://{tmp_path}/preview", cfg.viewer, "cam0")
    viewer = ctx.socket(zmq.XSUB)
    viewer.connect(endpoint)
    viewer.send(b"\x01" + TOPIC_PREVIEW_PREFIX)
    image = np.random.default_rng(0).integers(0, 255, (1080, 1920, 3), np.uint8)
    try:
        _pump(relay, maker, publisher, 1.2)  # the maker has asked at least twice, and was told no
        assert not maker.wanted and not maker.offer(1, 10.0, image) and maker.sent == 0
        viewer.send(PREVIEW_REQUEST)
        deadline = time.monotonic() + 3
        while not maker.wanted and time.monotonic() < deadline:
            _pump(relay, maker, publisher, 0.05)
        assert maker.wanted and relay.requests == 1
        assert maker.offer(7, 12.5, image)
        assert not maker.offer(8, 12.6, image)  # rate-limited: 1 / preview_fps
        _pump(relay, maker, publisher, 0.2)
        assert viewer.poll(2000)
        topic, payload = viewer.recv_multipart()
        p = unpack(payload)
        assert topic == preview_topic("cam0") and isinstance(p, Preview)
        assert (p.seq, p.t_capture, p.width, p.height) == (7, 12.5, 1920, 1080)
        jpeg = cv2.imdecode(np.frombuffer(p.jpeg, np.uint8), cv2.IMREAD_COLOR)
        assert jpeg.shape == (360, 640, 3)
        maker.sock.send(msgpack.packb({"v": 1, "type": "preview", "source": "cam9", "seq": 1, "t_capture": 0.0,
                                       "width": 8, "height": 8, "jpeg": b"\xff\xd8x"}))
        maker.sock.send(b"\x00garbage")
        _pump(relay, maker, publisher, 0.3)
        assert relay.bad == 2 and relay.published == 1 and not viewer.poll(200)
        _pump(relay, maker, publisher, 2.0)  # the lease (0.6 s) ran out and the maker was told so
        assert not maker.wanted and not maker.offer(9, 13.0, image) and maker.sent == 1
    finally:
        maker.close()
        relay.close()
        for s in (viewer, pub):
            s.close(0)
        ctx.term()


def _person(track: int, x: float) -> Person:
    kp = np.stack([np.full(14, x), np.linspace(100, 400, 14)], axis=1)
    return Person(keypoints2d=kp, confidence=np.full(14, 0.9), score=0.9, bbox=np.array([x - 20, 90, x + 20, 410]),
                  track_id=track, joints3d=np.zeros((16, 3)), root=np.array([0.0, -1.0, -4.0]))


def _frame(seq: int, people: list[Person]) -> bytes:
    t = 1000.0 + seq / 30
    stages = {"capture": t, "queued": t + 0.005, "received": t + 0.01, "pose2d": t + 0.06, "lift": t + 0.07,
              "track": t + 0.075}
    return pack(Frame(source="cam0", seq=seq, t_capture=t, t_publish=t + 0.08, people=people, width=1920,
                      height=1080, stages=stages))


def test_view_state_draws_each_preview_with_the_people_of_its_own_frame():
    state = ViewState()
    jpeg = cv2.imencode(".jpg", np.zeros((36, 64, 3), np.uint8))[1].tobytes()
    preview = pack(Preview("cam0", 5, 1000.0, 1920, 1080, jpeg))
    assert state.on_message(preview_topic("cam0"), preview, now=0.0) == []  # its frame is still in the pipeline
    out = dict(state.on_message(frame_topic("cam0"), _frame(4, [_person(1, 300)]), now=0.05))
    assert set(out) == {"frame/cam0"}  # frame 4 has no preview yet: it may still come, nothing drawn in 2D
    out = dict(state.on_message(frame_topic("cam0"), _frame(5, [_person(2, 600), _person(-1, 900)]), now=0.1))
    view = json.loads(out["view2d/cam0"])
    assert view["seq"] == 5 and view["image"].startswith("data:image/jpeg;base64,")
    assert [p["id"] for p in view["people"]] == [2, -1] and view["people"][0]["kp"][0] == [600.0, 100.0]
    frame = json.loads(out["frame/cam0"])
    assert frame["people"][0]["root"] == [0.0, -1.0, -4.0] and len(frame["people"][0]["j3"]) == 16
    assert frame["stats"]["latency_ms"]["pose2d"] == pytest.approx(50.0, abs=0.2)
    assert frame["stats"]["latency_ms"]["total"] == pytest.approx(80.0, abs=0.2)
    assert frame["stats"]["fps"] == pytest.approx(30.0, rel=0.01)
    # previews stopped (no viewer asked, or [viewer] preview off): the people alone, on every frame
    view = json.loads(dict(state.on_message(frame_topic("cam0"), _frame(6, []), now=5.0))["view2d/cam0"])
    assert view["image"] is None and view["seq"] == 6
    assert state.on_message(b"frame/cam0", b"\x93not a frame", now=5.1) == [] and state.rejected == 1


# ---- the server on its own: bad input and what it lets in -------------------------------------------------------

@pytest.fixture(scope="module")
def recording(mocap_dir, tmp_path_factory) -> Path:
    """Two CMU mocap people walking, recorded with the Recorder as a run would (tracks 3 and 7)."""
    return write_recording(tmp_path_factory.mktemp("viewer") / "session.mcap", mocap_people(mocap_dir, 30.0, 90), 30.0)


def test_bad_input_is_one_clear_line(tmp_path, small_video):
    busy = socket.create_server(("127.0.0.1", 0))
    port = str(busy.getsockname()[1])
    try:
        cases = {
            "--connect": _realtime("view", "--connect", "5560"),
            "missing recording": _realtime("view", str(tmp_path / "nowhere.mcap")),
            "not a recording": _realtime("view", str(small_video)),
            "view port in use": _realtime("view", "--port", port),
            "run --view port in use": _realtime("run", "--headless", "--source", str(small_video), "--view", port),
        }
    finally:
        busy.close()
    for name, r in cases.items():
        lines = r.stderr.strip().splitlines()
        assert r.returncode == 2 and len(lines) == 1 and "Traceback" not in r.stderr, (name, r.stderr)
    assert "--connect '5560'" in cases["--connect"].stderr
    assert "no such recording" in cases["missing recording"].stderr
    assert "not an MCAP recording" in cases["not a recording"].stderr
    assert f"cannot listen on 127.0.0.1:{port}" in cases["view port in use"].stderr
    assert "--view: cannot listen" in cases["run --view port in use"].stderr and "started" not in cases[
        "run --view port in use"].stderr


def test_nothing_to_connect_to_is_said_once_and_the_page_waits(tmp_path):
    port, nobody = _free_port(), f"tcp://127.0.0.1:{_free_port()}"
    proc = subprocess.Popen([sys.executable, "-m", "realtime", "view", "--connect", nobody, "--port", str(port)],
                            cwd=REPO, stderr=subprocess.PIPE, text=True)
    try:
        deadline, err = time.monotonic() + 30, ""
        while "nothing received" not in err and time.monotonic() < deadline:
            err += proc.stderr.readline()
        assert "nothing received from the stream " + nobody in err and "Traceback" not in err
        import urllib.request
        assert b"plot3d" in urllib.request.urlopen(f"http://127.0.0.1:{port}/", timeout=5).read()
    finally:
        proc.terminate()
        proc.wait(10)


async def _ws_messages(url: str, origin: str | None, count: int) -> list[dict]:
    import aiohttp

    headers = {"Origin": origin} if origin else {}
    async with aiohttp.ClientSession() as session:
        async with session.ws_connect(url, headers=headers) as ws:
            out = []
            while len(out) < count:
                out.append(json.loads((await ws.receive(timeout=10)).data))
            return out


def test_a_recording_is_served_to_same_origin_pages_only(recording):
    """`realtime view REC.mcap`: the recorded people reach a browser's WebSocket; a page from another
    origin (any web site the user has open) is refused, and nothing a page sends is acted on."""
    import aiohttp

    port = _free_port()
    proc = subprocess.Popen([sys.executable, "-m", "realtime", "view", str(recording), "--port", str(port)],
                            cwd=REPO, stderr=subprocess.PIPE, text=True)
    try:
        url = f"http://127.0.0.1:{port}/ws"
        for _ in range(100):
            try:
                messages = asyncio.run(_ws_messages(url, f"http://127.0.0.1:{port}", 8))
                break
            except (aiohttp.ClientConnectorError, ConnectionError):
                time.sleep(0.2)
        kinds = [m["type"] for m in messages]
        assert kinds[:2] == ["hello", "skeleton"] and "frame" in kinds and "view2d" in kinds
        frame = next(m for m in messages if m["type"] == "frame")
        assert sorted(p["id"] for p in frame["people"]) == [3, 7] and all(len(p["j3"]) == 16 for p in frame["people"])
        assert next(m for m in messages if m["type"] == "view2d")["image"] is None  # recordings hold no images
        with pytest.raises(aiohttp.WSServerHandshakeError) as refused:
            asyncio.run(_ws_messages(url, "http://evil.example", 1))
        assert refused.value.status == 403
    finally:
        proc.terminate()
        proc.wait(10)
