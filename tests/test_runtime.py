"""The whole pipeline as real processes over real sockets: `realtime run` end to end, restarts, errors."""
from __future__ import annotations

import math
import os
import re
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest

from realtime.client import Subscriber
from realtime.record import RecordingReader
from realtime.transport.schema import Frame, Skeleton

from pipeline import REPO, Run, curve_config, free_port, free_port_run, generate_keys, pipeline_config
from realtime.transport.security import client_keys

sys.path.insert(0, str(REPO / "tools"))
@pytest.fixture
def config(tmp_path) -> Path:
    """The repository's config with a quick status line and ipc sockets in this test's directory."""
    if not (REPO / "engines" / "pose_prior.npz").exists():
        pytest.skip("engines/pose_prior.npz (the committed pose prior) is not present")
    return pipeline_config(tmp_path)


@pytest.mark.slow
@pytest.mark.parametrize("refine", [True, False])
def test_the_configured_prior_serves_every_part_and_each_person_is_lifted_once(config, small_video, tmp_path,
                                                                               refine):
    """A prior named in [lifting] is the one the 2D feedback, the lifting workers and the skeleton
    message use (each process says which it loaded; the skeleton's rest pose is that prior's); with
    the feedback on, its lift is the person's 3D pose and the workers lift nobody again."""
    import dataclasses

    from realtime.lifting import PosePrior

    default = PosePrior.load()
    custom = dataclasses.replace(default, means=default.means * 1.1, info={**default.info, "note": "scaled"})
    custom.save(tmp_path / "custom.npz")
    text = re.sub(r'(?m)^# prior = .*$', f'prior = "{tmp_path / "custom.npz"}"', config.read_text())
    text = re.sub(r"(?m)^refine_3d = .*$", f"refine_3d = {'true' if refine else 'false'}", text)
    config.write_text(text)
    run = Run("--config", str(config), "--source", str(small_video), "--max-frames", "20", "--no-pace")
    skeleton = None
    with Subscriber(run.endpoint) as sub:
        while run.proc.poll() is None or sub.sock.poll(0):
            m = sub.recv(timeout_s=1.0)
            if m is not None and not isinstance(m[1], Frame):
                skeleton = m[1]
    assert run.stop() == 0, run.log
    assert skeleton is not None and np.allclose(skeleton.rest_offsets, custom.rest_offsets())
    assert not np.allclose(skeleton.rest_offsets, default.rest_offsets())
    where = f"prior={tmp_path / 'custom.npz'}"
    assert len(re.findall(rf"worker_started {re.escape(where)}", run.log)) == 2, run.log
    assert re.search(rf"publisher_started .*{re.escape(where)}", run.log), run.log
    assert bool(re.search(rf"inference_started .*{re.escape(where)}", run.log)) == refine, run.log
    assert re.search(r"inference_started .*warm_up_s=[\d.]+", run.log), run.log   # networks ready before frame 1
    ratio = float(re.findall(r"lifts/person=([\d.]+)", run.log)[-1])
    assert ratio == 1.0 if refine else 0.5 <= ratio <= 1.0, run.log


@pytest.mark.slow
def test_run_publishes_3d_people_and_records_every_frame(config, demo_video, tmp_path):
    """The demo video (people walking, full body, 1080p), every frame processed (--no-pace)."""
    record = tmp_path / "run.mcap"
    run = Run("--config", str(config), "--source", str(demo_video), "--max-frames", "12", "--no-pace",
              "--record", str(record))
    frames: list[Frame] = []
    skeletons = 0
    with Subscriber(run.endpoint) as sub:
        while run.proc.poll() is None or sub.sock.poll(0):
            m = sub.recv(timeout_s=1.0)
            if m is not None and isinstance(m[1], Frame):
                frames.append(m[1])
            elif m is not None:
                skeletons += 1
    rc = run.stop()
    assert rc == 0, run.log
    published = int(re.search(r"end_of_stream published=(\d+)", run.log).group(1))
    assert published == 12, run.log  # every processed frame: a slow one is waited for, not dropped
    assert frames and skeletons >= 1 and sub.rejected == 0
    with_3d = [p for f in frames for p in f.people if p.joints3d is not None]
    assert with_3d, "no 3D people published"
    assert all(p.joints3d.shape == (16, 3) and p.root is not None and p.root[2] < 0 for p in with_3d)
    assert all({"capture", "queued", "pose2d", "lift", "track"} <= set(f.stages) for f in frames)
    assert all(f.t_capture <= f.stages["pose2d"] <= f.stages["lift"] <= f.stages["track"] <= f.t_publish
               for f in frames)
    reader = RecordingReader(record)
    messages = list(reader)
    recorded = [(lt, m) for t, lt, m in messages if t == "frame/cam0"]
    assert len(recorded) == published and not reader.truncated
    log_times = [lt for lt, _ in recorded]
    assert log_times == sorted(log_times) and len(set(log_times)) == len(log_times)
    assert [m.seq for _, m in recorded] == list(range(12))  # unpaced: every source frame, in order, none dropped
    assert recorded[-1][1].dropped == 0
    assert any(t == "skeleton" for t, _, _ in messages)
    assert "status fps" in run.log


@pytest.mark.slow
def test_two_sources_are_batched_and_published_on_their_own_topics(config, demo_video, small_video, tmp_path):
    """Two files at once, unpaced: every frame of each comes out on its own topic and in the recording,
    and the inference process put frames of both sources through the networks together. (Unpaced
    files decode only on request, which takes a 1080p frame longer than the default batch wait.)"""
    config.write_text(re.sub(r"(?m)^batch_wait_ms = .*$", "batch_wait_ms = 500.0", config.read_text()))
    record = tmp_path / "two.mcap"
    run = Run("--config", str(config), "--source", str(demo_video), "--source", str(small_video),
              "--max-frames", "10", "--no-pace", "--record", str(record))
    seen: dict[str, list[int]] = {"cam0": [], "cam1": []}
    with Subscriber(run.endpoint) as sub:
        while run.proc.poll() is None or sub.sock.poll(0):
            m = sub.recv(timeout_s=1.0)
            if m is not None and isinstance(m[1], Frame):
                seen[m[1].source].append(m[1].seq)
    assert run.stop() == 0, run.log
    assert seen == {"cam0": list(range(10)), "cam1": list(range(10))}, run.log
    finished = re.search(r"inference_finished frames=(\d+) batches=(\d+)", run.log)
    assert finished and int(finished.group(1)) == 20 and int(finished.group(2)) < 20, run.log
    recorded = [m.source for t, _, m in RecordingReader(record) if t.startswith("frame/")]
    assert sorted(recorded) == ["cam0"] * 10 + ["cam1"] * 10


@pytest.mark.slow
def test_camera_tables_reach_the_lifting_workers(config, demo_video):
    """The same video as two sources, the second described by a [[camera]] table with twice the focal
    length: its people come out at twice the distance, frame for frame. (Without the perspective
    correction, which the focal length also changes a little, so that the ratio is exact.)"""
    config.write_text(config.read_text() + '\n[[camera]]\nname = "cam1"\nfocal_px = 3072.0\n')
    config.write_text(re.sub(r"(?m)^focal_px = 0.0$", "focal_px = 1536.0", config.read_text(), count=1))
    text = re.sub(r"(?m)^perspective = true$", "perspective = false", config.read_text())
    assert "perspective = false" in text
    config.write_text(text)
    run = Run("--config", str(config), "--source", str(demo_video), "--source", str(demo_video),
              "--max-frames", "3", "--no-pace")
    people: dict[tuple[str, int], list] = {}
    with Subscriber(run.endpoint) as sub:
        while run.proc.poll() is None or sub.sock.poll(0):
            m = sub.recv(timeout_s=1.0)
            if m is not None and isinstance(m[1], Frame):
                people[m[1].source, m[1].seq] = [p for p in m[1].people if p.root is not None]
    assert run.stop() == 0, run.log
    # each person of cam1 against the same person of cam0 (same keypoints, give or take batching's
    # rounding, which may send a rare person to another of the lifter's solutions: hence the median)
    ratios = [b.root[2] / a.root[2] for seq in range(3) for b in people.get(("cam1", seq), [])
              for a in people.get(("cam0", seq), []) if np.abs(a.keypoints2d - b.keypoints2d).max() < 1.0]
    assert len(ratios) >= 3 and abs(np.median(ratios) - 2.0) < 0.02, (np.round(ratios, 3), run.log)
    assert "matches no source" not in run.log


@pytest.mark.slow
def test_lifting_workers_of_another_run_over_tcp(config, demo_video):
    """Split across machines, on loopback: one run has capture, inference and publisher and no
    lifting worker; a second run (another machine's) has only lifting workers and connects over tcp,
    CURVE-encrypted, with the shared secret. The first publishes 3D people: every one of them was
    lifted by the second."""
    base = free_port_run(4) - 1
    text = config.read_text()
    text = re.sub(r'(?m)^scheme = .*$', 'scheme = "tcp"', text)
    text = re.sub(r"(?m)^base_port = .*$", f"base_port = {base}", text)
    config.write_text(text)
    curve_config(config, generate_keys(config.parent))  # the two runs share the secret; every tcp socket is CURVE
    text = config.read_text()
    other = config.with_name("other.toml")  # the other machine: its own ipc directory for its supervisor
    other.write_text(re.sub(r'(?m)^ipc_dir = "(.*)"$', r'ipc_dir = "\1-other"', text))
    main = Run("--config", str(config), "--source", str(demo_video), "--max-frames", "8", "--no-pace",
               "--stages", "capture,inference,publisher")
    workers = Run("--config", str(other), "--stages", "lifting", "--workers", "1")
    frames: list[Frame] = []
    try:
        keys = client_keys(config.parent / "keys" / "server.key", config.parent / "keys" / "consumer.key_secret")
        with Subscriber(main.endpoint, curve=keys) as sub:
            while main.proc.poll() is None or sub.sock.poll(0):
                m = sub.recv(timeout_s=1.0)
                if m is not None and isinstance(m[1], Frame):
                    frames.append(m[1])
        assert main.stop() == 0, main.log
    finally:
        assert workers.stop() == 0, workers.log
    assert [f.seq for f in frames] == list(range(8)), main.log
    assert any(p.joints3d is not None for f in frames for p in f.people), main.log
    assert "started lift-0" not in main.log and "started lift-0" in workers.log
    assert "started capture-0" not in workers.log and "stages=lifting" in workers.log


def test_stages_are_checked():
    done = subprocess.run([sys.executable, "-m", "realtime", "run", "--stages", "lifting,tracking"], cwd=REPO,
                          capture_output=True, text=True, timeout=60)
    assert done.returncode == 2 and "unknown stage 'tracking'" in done.stderr
    done = subprocess.run([sys.executable, "-m", "realtime", "run", "--stages", "lifting"], cwd=REPO,
                          capture_output=True, text=True, timeout=60)
    assert done.returncode == 2 and 'scheme = "tcp"' in done.stderr


def _frames_after(sub: Subscriber, t: float, timeout: float, seen: list[Frame] | None = None) -> float | None:
    """When the first frame captured after ``t`` arrived, waiting at most ``timeout`` (every frame
    received is appended to ``seen``)."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        m = sub.recv(timeout_s=0.2)
        if m is not None and isinstance(m[1], Frame):
            if seen is not None:
                seen.append(m[1])
            if m[1].t_capture > t:
                return sub.received_at
    return None


@pytest.mark.slow
def test_killed_or_hung_children_are_restarted_and_publishing_resumes(config, small_video, tmp_path):
    """SIGKILL of each child in turn: publishing resumes; no seq is published twice (a restarted capture
    decodes a few frames again), no track id is given again after the publisher's restart, and the
    joined recording holds every frame published (the killed publisher's last ones from its log)."""
    record = tmp_path / "kill.mcap"
    run = Run("--config", str(config), "--source", str(small_video), "--loop", "--record", str(record))
    seen: list[Frame] = []
    try:
        with Subscriber(run.endpoint) as sub:
            assert _frames_after(sub, 0.0, 90, seen) is not None, run.log
            gaps, killed_at = {}, {}
            for child in ("lift-0", "inference", "capture-0", "publisher"):
                pid = run.pid_of(child)
                os.kill(pid, signal.SIGKILL)
                t_kill = killed_at[child] = time.time()
                resumed = _frames_after(sub, t_kill, 30, seen)
                assert resumed is not None, f"publishing did not resume after killing {child}:\n{run.log}"
                gaps[child] = resumed - t_kill
                deadline = time.monotonic() + 30
                while run.pid_of(child) == pid and time.monotonic() < deadline:
                    time.sleep(0.1)
                assert run.pid_of(child) != pid, run.log
            print("publishing resumed after SIGKILL in (s):", {k: round(v, 2) for k, v in gaps.items()})
            hung = run.pid_of("lift-1")
            os.kill(hung, signal.SIGSTOP)  # alive but silent: only the heartbeat timeout can tell
            deadline = time.monotonic() + 30
            while run.pid_of("lift-1") == hung and time.monotonic() < deadline:
                sub.recv(timeout_s=0.2)
            assert "restarting lift-1 reason=hung: no heartbeat" in run.log, run.log
            after = time.monotonic() + 3.0
            while time.monotonic() < after:  # and keeps going
                m = sub.recv(timeout_s=0.2)
                if m is not None and isinstance(m[1], Frame):
                    seen.append(m[1])
    finally:
        rc = run.stop()
    seqs = [f.seq for f in seen]
    assert len(seqs) == len(set(seqs)) and seqs == sorted(seqs), "a seq was published twice"
    ids_before = {p.track_id for f in seen if f.t_publish < killed_at["publisher"] for p in f.people if p.track_id >= 0}
    ids_after = {p.track_id for f in seen if f.t_publish > killed_at["publisher"] for p in f.people if p.track_id >= 0}
    assert ids_before and ids_after and not ids_before & ids_after, (sorted(ids_before), sorted(ids_after))
    assert rc == 0, run.log
    assert "restarting lift-0 reason=killed by SIGKILL" in run.log
    assert "restarting inference reason=killed by SIGKILL" in run.log
    # The killed publisher's part (every closed chunk) and the restarted one's, joined into the one file.
    joined_parts = re.search(r"recording joined path=\S+kill.mcap parts=(\d+) ", run.log)
    assert joined_parts and int(joined_parts.group(1)) >= 2, run.log
    assert not (tmp_path / "kill.1.mcap").exists()
    joined = RecordingReader(record)
    recorded = [(lt, m.seq) for t, lt, m in joined if t == "frame/cam0"]
    assert recorded and recorded == sorted(recorded) and joined.skipped == 0 and not joined.truncated
    missing = set(seqs) - {seq for _, seq in recorded}
    assert not missing, f"published but not recorded: {sorted(missing)}"


@pytest.mark.slow
def test_live_camera_dropping_out_keeps_the_pipeline_up(config, small_video):
    """A live MJPEG-over-HTTP camera on loopback goes away for a while: the drop is reported, the
    pipeline stays up (the publisher keeps announcing its skeleton), and frames resume when it is back."""
    from mjpeg_camera import MjpegCamera

    camera = MjpegCamera(small_video, max_frames=90)
    run = Run("--config", str(config), "--source", camera.url)
    try:
        with Subscriber(run.endpoint) as sub:
            assert _frames_after(sub, 0.0, 90) is not None, run.log
            camera.stop()
            deadline = time.monotonic() + 20
            skeletons = 0
            while (skeletons < 2 or "source_down" not in run.log) and time.monotonic() < deadline:
                m = sub.recv(timeout_s=0.5)
                skeletons += m is not None and isinstance(m[1], Skeleton)
            assert skeletons >= 2 and "source_down" in run.log and run.proc.poll() is None, run.log
            camera = MjpegCamera(small_video, port=camera.port, max_frames=90)
            back = time.time()
            assert _frames_after(sub, back, 20) is not None, run.log
        assert "reconnected" in run.log and "restarting" not in run.log, run.log
    finally:
        camera.stop()
        assert run.stop() == 0, run.log


@pytest.mark.slow
def test_children_stop_when_the_supervisor_is_killed(config, small_video, tmp_path):
    """SIGKILL of the supervisor itself: its children notice, stop as on SIGTERM (nothing left running,
    the publish port free again) and the publisher closes the recording properly."""
    record = tmp_path / "orphan.mcap"
    run = Run("--config", str(config), "--source", str(small_video), "--loop", "--record", str(record))
    with Subscriber(run.endpoint) as sub:
        assert _frames_after(sub, 0.0, 90) is not None, run.log
    children = [int(pid) for pid in re.findall(r"started \S+ pid=(\d+)", run.log)]
    assert len(children) >= 5, run.log
    run.proc.kill()
    run.proc.wait(10)
    deadline = time.monotonic() + 20
    alive = children
    while alive and time.monotonic() < deadline:
        time.sleep(0.2)
        alive = [pid for pid in alive if _running(pid)]
    assert not alive, f"still running after the supervisor's death: {alive}\n{run.log}"
    port = int(run.endpoint.rsplit(":", 1)[1])
    with socket.socket() as s:
        s.bind(("127.0.0.1", port))  # the publisher let go of it
    reader = RecordingReader(record)
    frames = [m for t, _, m in reader if t == "frame/cam0"]
    assert frames and not reader.truncated and reader.skipped == 0


def _running(pid: int) -> bool:
    try:
        with open(f"/proc/{pid}/stat") as f:
            return f.read().split(") ")[1][0] != "Z"  # a zombie has stopped (its parent reaps it later)
    except (FileNotFoundError, IndexError):
        return False


@pytest.mark.slow
def test_sigterm_to_the_whole_process_group_stops_cleanly(config, small_video, tmp_path):
    """As `timeout` or `kill -TERM -PGID` do: every process gets SIGTERM at once (the forkserver too);
    nothing is restarted during the shutdown, and the recording is complete."""
    record = tmp_path / "group.mcap"
    run = Run("--config", str(config), "--source", str(small_video), "--loop", "--record", str(record),
              own_group=True)
    with Subscriber(run.endpoint) as sub:
        assert _frames_after(sub, 0.0, 90) is not None, run.log
    os.killpg(run.proc.pid, signal.SIGTERM)
    assert run.stop() == 0, run.log
    assert "restarting" not in run.log, run.log
    reader = RecordingReader(record)
    assert [m for t, _, m in reader if t == "frame/cam0"] and not reader.truncated


@pytest.mark.slow
def test_dead_rtsp_source_is_retried_while_the_pipeline_stays_up(config):
    run = Run("--config", str(config), "--source", f"rtsp://127.0.0.1:{free_port()}/none")
    try:
        with Subscriber(run.endpoint) as sub:
            deadline = time.monotonic() + 60
            skeletons = 0
            while skeletons < 2 and time.monotonic() < deadline:  # the publisher keeps announcing itself
                m = sub.recv(timeout_s=1.0)
                skeletons += m is not None and isinstance(m[1], Skeleton)
        assert skeletons >= 2, run.log
        while len(re.findall(r"source_down", run.log)) < 3 and time.monotonic() < deadline:
            time.sleep(0.2)
        assert run.proc.poll() is None, run.log
    finally:
        rc = run.stop()
    assert rc == 0, run.log
    attempts = [int(a) for a in re.findall(r"source_down .*attempt=(\d+)", run.log)]
    assert len(attempts) >= 3 and attempts == sorted(attempts), run.log
    assert "restarting" not in run.log


def test_bad_source_and_bad_config_are_clear_errors(tmp_path):
    notes = tmp_path / "notes.mp4"
    notes.write_text("not a video")
    bad = subprocess.run([sys.executable, "-m", "realtime", "run", "--source", str(notes)],
                         cwd=REPO, capture_output=True, text=True, timeout=60)
    assert bad.returncode == 2 and "notes.mp4: not a video" in bad.stderr
    workers = subprocess.run([sys.executable, "-m", "realtime", "run", "--workers", "0"],
                             cwd=REPO, capture_output=True, text=True, timeout=60)
    assert workers.returncode == 2 and "[runtime] workers: 0 is below the minimum 1" in workers.stderr
    toml = tmp_path / "bad.toml"
    toml.write_text("[runtime]\nlog_format = 'xml'\n")
    fmt = subprocess.run([sys.executable, "-m", "realtime", "run", "--config", str(toml)],
                         cwd=REPO, capture_output=True, text=True, timeout=60)
    assert fmt.returncode == 2 and "[runtime] log_format: 'xml' is not one of text, json" in fmt.stderr


def test_json_log_lines_carry_fields(capsys):
    import json
    import logging

    from realtime.logs import fields, setup_logging

    setup_logging("json", "capture-0")
    logging.getLogger("realtime.capture").warning("source_down", extra=fields(attempt=2, retry_in_s=0.5))
    line = capsys.readouterr().err.strip().splitlines()[-1]
    record = json.loads(line)
    assert record["proc"] == "capture-0" and record["msg"] == "source_down" and record["attempt"] == 2
    setup_logging("text", "capture-0")
    logging.getLogger("realtime.capture").warning("source_down", extra=fields(attempt=3))
    assert capsys.readouterr().err.rstrip().endswith("capture-0  source_down attempt=3")


def test_root_is_placed_in_the_cameras_level_frame():
    from realtime.lifting import Camera

    camera = Camera(focal_px=1000.0)
    # A pelvis on the optical axis, 10 m away (scale 100 px/m, f 1000 px), camera pitched down 20 degrees:
    # below the camera by 10 sin 20 and 10 cos 20 in front of it; with a level camera straight ahead.
    x, y, z = camera.level_root(960.0, 540.0, 100.0, 1920, 1080, 20.0)
    assert (x, y, z) == pytest.approx((0.0, -10 * math.sin(math.radians(20)), -10 * math.cos(math.radians(20))))
    assert camera.level_root(960.0, 540.0, 100.0, 1920, 1080, 0.0) == pytest.approx([0.0, 0.0, -10.0])
    # 100 px right of and above the centre: 1 m right, and 1 m up in camera axes.
    x, y, z = camera.level_root(1060.0, 440.0, 100.0, 1920, 1080, 0.0)
    assert (x, y, z) == pytest.approx((1.0, 1.0, -10.0))
    assert Camera().focal_for(1920) == pytest.approx(0.8 * 1920)      # unknown: a typical webcam's field of view
    with pytest.raises(ValueError, match="pitch_deg"):
        Camera(pitch_deg=120.0)


def test_a_bad_frame_in_a_batch_takes_no_other_source_with_it(photos_dir):
    """The inference process's batch of several sources' frames: one frame that is no image fails the
    batch, the frames are retried one by one, and only the bad one comes out without people."""
    import threading

    import numpy as np
    import zmq

    from realtime.config import Config
    from realtime.pose2d import PoseEstimator2D, VideoFollower, load_image
    from realtime.runtime.child import Child
    from realtime.runtime.inference import _estimate
    from realtime.transport.sockets import Endpoints

    child = Child("inference", Config(), Endpoints("inproc://c", "inproc://i", "inproc://o", (), "inproc://p"),
                  zmq.Context.instance(), threading.Event())
    first = PoseEstimator2D.create(backend="onnxruntime")
    follower = VideoFollower(first, sources=3)
    photo = load_image(photos_dir / "p2.jpg")
    not_an_image = np.zeros((200, 200, 5), np.uint8)
    found, failed = _estimate(child, follower, {0: photo, 1: not_an_image, 2: photo})
    assert failed == 1 and [len(p) for p in found] == [2, 0, 2]
    found, failed = _estimate(child, follower, {0: photo, 1: photo, 2: photo})  # and the stream goes on
    assert failed == 0 and [len(p) for p in found] == [2, 2, 2]
    found, failed = _estimate(child, follower, {2: photo})                      # one source's frame alone
    assert failed == 0 and [len(p) for p in found] == [2]
    first.close()
