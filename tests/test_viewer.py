"""Seeing the stream: camera previews only on request, the viewer server, bad input, and the page and
the HTML report in a real browser (headless Chromium) against a real pipeline on the demo video."""
from __future__ import annotations

import asyncio
import json
import os
import re
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
from browser import (browser_log, chromium, element_crop, palette_pixels, screenshot, skip_without_browser,
                     wait_until)
from downstream_data import mocap_people, write_recording
from pipeline import Run, curve_config, generate_keys, pipeline_config  # `realtime run`, as in the runtime tests

from realtime.client import Subscriber
from realtime.config import load_config
from realtime.outputs import preview as preview_mod
from realtime.outputs.preview import PREVIEW_REQUEST, PreviewMaker, PreviewRelay
from realtime.transport.messages import SIGNED_BY_CAPTURE, sign
from realtime.transport.sockets import make_socket
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
    pub.setsockopt(zmq.XPUB_MANUAL, 1)  # as the publisher process makes it
    endpoint = f"ipc://{tmp_path}/pub"
    pub.bind(endpoint)
    publisher = Publisher(cfg, ["cam0"], pub, None, PosePrior.load())
    secret = b"s" * 32
    relay_sock = make_socket(ctx, zmq.ROUTER, bind=f"ipc://{tmp_path}/preview", hwm=8,
                             max_message=PreviewRelay.MAX_MESSAGE)
    relay = publisher.preview = PreviewRelay(relay_sock, pub, ["cam0"], secret)
    publisher.topics.append(preview_topic("cam0"))
    maker = PreviewMaker(make_socket(ctx, zmq.DEALER, connect=f"ipc://{tmp_path}/preview", hwm=2,
                                     max_message=PreviewMaker.MAX_MESSAGE), cfg.viewer,
                         "cam0", secret)
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
        forged = msgpack.packb({"v": 1, "type": "preview", "source": "cam9", "seq": 1, "t_capture": 0.0,
                                "width": 8, "height": 8, "jpeg": b"\xff\xd8x"})
        maker.sock.send_multipart([forged, sign(secret, SIGNED_BY_CAPTURE, forged)])  # an unknown source
        maker.sock.send_multipart([payload, sign(b"x" * 32, SIGNED_BY_CAPTURE, payload)])  # another run's key
        maker.sock.send(b"\x00garbage")
        _pump(relay, maker, publisher, 0.3)
        assert relay.bad == 3 and relay.published == 1 and not viewer.poll(200)
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
    return write_recording(tmp_path_factory.mktemp("viewer") / "session.mcap", mocap_people(mocap_dir, 30.0, 60), 30.0)


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


@pytest.mark.slow
def test_with_curve_on_the_viewer_is_an_allowed_client(tmp_path, small_video):
    """`realtime run --view` with `[security] curve = true`: the publisher takes only allowed clients,
    and the viewer (one of the pipeline's processes, with its client_key) gets the stream to the page.
    `realtime view` with half a key pair is one clear line."""
    import aiohttp

    config = pipeline_config(tmp_path)
    curve_config(config, generate_keys(tmp_path))
    port = _free_port()
    run = Run("--config", str(config), "--source", str(small_video), "--loop", "--view", str(port))
    try:
        messages: list[dict] = []
        deadline = time.monotonic() + 90
        while not any(m["type"] == "frame" and m["people"] for m in messages) and time.monotonic() < deadline:
            try:
                messages = asyncio.run(_ws_messages(f"http://127.0.0.1:{port}/ws", f"http://127.0.0.1:{port}", 12))
            except (aiohttp.ClientConnectorError, ConnectionError, asyncio.TimeoutError):
                time.sleep(0.5)
        assert any(m["type"] == "frame" and m["people"] for m in messages), run.log
        assert "restarting" not in run.log, run.log
    finally:
        run.stop()
    done = _realtime("view", "--connect", "tcp://127.0.0.1:1", "--server-key", str(tmp_path / "keys" / "server.key"))
    assert done.returncode == 2 and "--server-key and --client-key go together" in done.stderr, done.stderr


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


def test_the_html_report_holds_every_track_its_timeline_and_the_3d_frames(recording, tmp_path):
    """`realtime export --format html` on a recording of two mocap people: one self-contained file whose
    data has each frame's people in 3D, one unbroken timeline per track and the people per frame;
    --track keeps one; a missing recording is one line."""
    out = tmp_path / "report.html"
    r = _realtime("export", str(recording), "--format", "html", "--output", str(out))
    assert r.returncode == 0 and r.stdout.strip() == str(out), r.stderr
    text = out.read_text()
    data = json.loads(re.search(r'id="data">(.*?)</script>', text, re.S).group(1))
    assert len(data["frames"]) == data["summary"]["frames"] == 60
    assert all(sorted(p["id"] for p in f["people"]) == [3, 7] for f in data["frames"])
    assert all(len(p["j3"]) == 16 and p["root"] is not None for p in data["frames"][0]["people"])
    assert {k: len(v) for k, v in data["timelines"].items()} == {"3": 1, "7": 1}
    assert data["timelines"]["3"][0] == [0.0, pytest.approx(59 / 30, abs=1e-3)]
    assert set(data["series"]["people"]) == {2.0}
    assert not re.search(r"<(script|link)[^>]+(src|href)=", text) and "Plotly" in text
    one = _realtime("export", str(recording), "--format", "html", "--output", str(tmp_path / "one.html"), "--track", "7")
    assert one.returncode == 0, one.stderr
    data = json.loads(re.search(r'id="data">(.*?)</script>', (tmp_path / "one.html").read_text(), re.S)
                      .group(1))
    assert list(data["timelines"]) == ["7"] and data["track"] == 7
    missing = _realtime("export", str(tmp_path / "none.mcap"), "--format", "html", "--output", str(out))
    assert missing.returncode == 1 and len(missing.stderr.strip().splitlines()) == 1
    assert "no such recording" in missing.stderr


# ---- in a real browser, against a real pipeline -------------------------------------------------------------

@pytest.fixture(scope="module")
def live(demo_video, tmp_path_factory):
    """`realtime run --view` on the demo video (looping, recorded), shared by the browser tests below."""
    if not (REPO / "engines" / "pose_prior.npz").exists():
        pytest.skip("engines/pose_prior.npz (the committed pose prior) is not present")
    tmp = tmp_path_factory.mktemp("live")
    text = (REPO / "config.toml").read_text()
    text = re.sub(r"(?m)^status_every_s = .*$", "status_every_s = 1.0", text)
    text = re.sub(r'(?m)^# ipc_dir = .*$', f'ipc_dir = "{tmp / "ipc"}"', text)
    (tmp / "config.toml").write_text(text)
    port = _free_port()
    run = Run("--config", str(tmp / "config.toml"), "--source", str(demo_video), "--loop", "--camera-pitch", "19.9",
              "--view", str(port), "--record", str(tmp / "live.mcap"))
    run.url, run.recording = f"http://127.0.0.1:{port}/", tmp / "live.mcap"
    deadline = time.monotonic() + 60
    while "viewer_started" not in run.log and run.proc.poll() is None and time.monotonic() < deadline:
        time.sleep(0.1)
    assert "viewer_started" in run.log, run.log
    yield run
    run.stop()


PAGE_STATE = "return window.rtViewer || null"


def _page_drew_people(v: dict) -> bool:
    return v["images"] >= 2 and v["people3d"] > 0 and v["people2d"] > 0 and v["drawn3d"] >= 3


@pytest.mark.slow
@pytest.mark.browser
def test_the_live_page_shows_the_people_in_3d_and_over_the_camera(live, tmp_path):
    """The page gets frames and camera previews from the running pipeline and draws its people: in
    the page's own state, and in pixels (track colours in the 3D plot, the camera image in the canvas)."""
    skip_without_browser()
    with chromium() as driver:
        driver.get(live.url)
        v = wait_until(driver, PAGE_STATE, _page_drew_people, 90)
        assert v is not None and _page_drew_people(v), (v, browser_log(driver), live.log[-3000:])
        assert v["errors"] == [] and v["sources"] == ["cam0"] and v["hello"]["feed"].startswith("stream tcp://")
        time.sleep(1.0)  # let the newest preview and plot settle before the picture
        shot = screenshot(driver, tmp_path / "viewer.png")
        plot, camera = element_crop(driver, shot, "plot3d"), element_crop(driver, shot, "camera")
        assert palette_pixels(plot, PALETTE) > 300, "no person drawn in the 3D plot"
        assert camera.std() > 25, "the camera canvas is blank"
        assert palette_pixels(camera, PALETTE, tolerance=25) > 100, "no skeleton drawn over the camera image"
        text = driver.find_element("id", "stats").text
        assert "frames per second" in text and "latency: pose2d" in text
        if DOCS_SCREENSHOT:
            cv2.imwrite(DOCS_SCREENSHOT, shot[:780], [cv2.IMWRITE_JPEG_QUALITY, 80])
    assert "viewer_started url=" + live.url in live.log and "restarting" not in live.log


@pytest.mark.slow
@pytest.mark.browser
def test_a_browser_leaving_mid_stream_changes_nothing_for_the_pipeline(live):
    """Previews flow while a browser is connected and stop once it has gone (the lease runs out); the
    stream goes on without a gap or a restart."""
    skip_without_browser()
    endpoint = live.endpoint
    with Subscriber(endpoint, topics=(b"frame/", TOPIC_PREVIEW_PREFIX)) as sub:
        with chromium() as driver:
            driver.get(live.url)
            assert _page_drew_people(wait_until(driver, PAGE_STATE, _page_drew_people, 90))
            previews = _count(sub, 2.0)[1]
            assert previews > 0, "no preview while a browser is connected"
        left = time.monotonic()
        frames_after, previews_after, seqs = _count(sub, 8.0, since=left + preview_mod.LEASE_S + 1.5)
    assert previews_after == 0, "previews still made after the browser left"
    assert frames_after > 0 and seqs == sorted(seqs), "the stream stopped or went out of order"
    assert "restarting" not in live.log and live.proc.poll() is None


def _count(sub: Subscriber, seconds: float, since: float = 0.0) -> tuple[int, int, list[int]]:
    """Frames and previews received in the next ``seconds`` (those before ``since`` not counted)."""
    frames = previews = 0
    seqs: list[int] = []
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        if not sub.sock.poll(100):
            continue
        topic, payload = sub.sock.recv_multipart()
        if time.monotonic() < since:
            continue
        if topic.startswith(TOPIC_PREVIEW_PREFIX):
            previews += 1
        else:
            frames += 1
            seqs.append(unpack(payload).seq)
    return frames, previews, seqs


@pytest.mark.slow
@pytest.mark.browser
def test_the_report_of_the_live_recording_works_offline(live, tmp_path):
    """The run above, stopped: its recording as one HTML file that draws in a browser from disk (no
    network: every script is inside it), with a slider that moves the 3D skeletons through time."""
    deadline = time.monotonic() + 60      # frames published (the browser tests above may not have run)
    while (not any(float(f) > 0 for f in re.findall(r"publish=([\d.]+)", live.log))
           and live.proc.poll() is None and time.monotonic() < deadline):
        time.sleep(0.2)
    time.sleep(2.0)                       # ... and some more, for the slider to move through
    assert live.stop() == 0, live.log[-3000:]
    report = tmp_path / "report.html"
    r = _realtime("export", str(live.recording), "--format", "html", "--output", str(report))
    assert r.returncode == 0, r.stderr
    text = report.read_text()
    assert not re.search(r"<(script|link)[^>]+(src|href)=", text)
    skip_without_browser()
    with chromium(1280, 1400, offline=True) as driver:
        driver.get(report.as_uri())
        state = wait_until(driver, "return window.rtReport || null", lambda r: r["ready"], 30)
        assert state["ready"] and state["tracks"] > 0 and state["people"] > 0, (state, browser_log(driver))
        shot = screenshot(driver, tmp_path / "report.png")
        assert palette_pixels(element_crop(driver, shot, "plot3d"), PALETTE) > 300
        assert palette_pixels(element_crop(driver, shot, "timelines"), PALETTE) > 300
        last = driver.execute_script("const s = document.getElementById('slider'); s.value = s.max; s.oninput();"
                                     "return window.rtReport")
        assert last["drawn"] == state["drawn"] + 1 and last["frame"] > state["frame"]
        assert browser_log(driver) == []
