"""The Blender add-on, run for real in headless Blender (Debian's blender 3.4 on the system Python).

Blender's Python needs numpy, pyzmq, msgpack, zstandard and lz4 (Debian: python3-numpy python3-zmq
python3-msgpack python3-zstandard python3-lz4); mcap, pure Python, is put on its path from this
project's environment.
"""
from __future__ import annotations

import importlib.util
import json
import os
import shutil
import subprocess
import threading
import time
from pathlib import Path

import mcap
import numpy as np
import pytest
import zmq
from downstream_data import (REPO_ROOT, cut_and_bad_recordings, fixed_lengths, mocap_people, wait_for,
                             write_recording)

from realtime import skeleton as sk
from realtime.export.cli import export
from realtime.record import read_recording
from realtime.rig import BONE_HEADS, BONES
from realtime.transport.schema import frame_topic, pack

BLENDER = shutil.which("blender")
pytestmark = [pytest.mark.blender, pytest.mark.skipif(BLENDER is None, reason="needs the blender executable")]

_spec = importlib.util.spec_from_file_location("blender_addon_build", REPO_ROOT / "clients" / "blender" / "build.py")
build = importlib.util.module_from_spec(_spec)  # clients/blender/build.py: assembles the add-on
_spec.loader.exec_module(build)

FPS = 30
FRAMES = 12
TO_BLENDER = np.array([[1.0, 0.0, 0.0], [0.0, 0.0, -1.0], [0.0, 1.0, 0.0]])
OFFSETS = {3: np.array([0.0, 0.0, -3.0]), 7: np.array([1.5, 0.0, -3.0])}
NEEDS = ["numpy", "zmq", "msgpack", "mcap", "zstandard", "lz4"]


@pytest.fixture(scope="module")
def people(mocap_dir):
    return dict(zip((3, 7), mocap_people(mocap_dir, FPS, FRAMES)))


@pytest.fixture(scope="module")
def recording(people, tmp_path_factory):
    return write_recording(tmp_path_factory.mktemp("blender") / "session.mcap", list(people.values()), FPS)


@pytest.fixture
def addon(tmp_path):
    folder = build.assemble(tmp_path / "addon" / "realtime_pose")
    return shutil.make_archive(str(folder), "zip", folder.parent, folder.name)


def _config(tmp_path: Path, addon: str, **extra) -> Path:
    deps = tmp_path / "deps"
    deps.mkdir()
    (deps / "mcap").symlink_to(Path(mcap.__file__).parent, target_is_directory=True)
    cfg = {"addon_zip": addon, "paths": [str(deps)], "needs": NEEDS, "fps": FPS, "out": str(tmp_path), **extra}
    path = tmp_path / "config.json"
    path.write_text(json.dumps(cfg))
    return path


def _blender(script: str, config: Path, tmp_path: Path, ui: bool = False) -> subprocess.Popen:
    """Headless Blender (``-b``), or with ``ui`` its full UI under Xvfb, where its own loop fires timers."""
    env = dict(os.environ, BLENDER_USER_SCRIPTS=str(tmp_path / "user_scripts"),
               BLENDER_USER_CONFIG=str(tmp_path / "user_config"))
    head = ["xvfb-run", "-a", "-s", "-screen 0 1280x720x24", BLENDER] if ui else [BLENDER, "-b"]
    return subprocess.Popen([*head, "--factory-startup", "--python-exit-code", "1",
                             "--python", str(REPO_ROOT / "tests" / "blender" / script), "--", str(config)],
                            stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True, env=env)


def _finish(proc: subprocess.Popen, tmp_path: Path, timeout_s: float = 120.0) -> dict:
    out, _ = proc.communicate(timeout=timeout_s)
    if proc.returncode == 3 and "MISSING" in out:
        pytest.skip("Blender's Python lacks a module: " + out[out.index("MISSING"):].splitlines()[0])
    assert proc.returncode == 0, out[-4000:]
    return json.loads((tmp_path / "results.json").read_text())


def _expected(joints_world: np.ndarray) -> np.ndarray:
    """Where the armature's bones should be: fixed bone lengths, Blender's z-up axes."""
    return fixed_lengths(joints_world) @ TO_BLENDER.T


def _check_heads(heads: dict, expected: np.ndarray, atol: float = 1e-4) -> None:
    for bone, joint in zip(BONES, BONE_HEADS):
        np.testing.assert_allclose(heads[bone], expected[sk.JOINTS3D.index(joint)], atol=atol, err_msg=bone)
    np.testing.assert_allclose(heads["Head/tail"], expected[sk.JOINTS3D.index("head_top")], atol=atol)


#: Opt-in: REALTIME_BLENDER_UI=1 also runs the live link in Blender's UI under Xvfb (about a minute).
UI = os.environ.get("REALTIME_BLENDER_UI") == "1"


@pytest.mark.parametrize("ui", [False] + ([True] if UI else []), ids=lambda ui: "ui" if ui else "background")
def test_live_link_drives_one_armature_per_track_and_keys_every_frame(recording, people, addon, tmp_path, ui):
    if ui and shutil.which("xvfb-run") is None:
        pytest.skip("needs xvfb-run")
    ctx = zmq.Context.instance()
    pub = ctx.socket(zmq.PUB)
    port = pub.bind_to_random_port("tcp://127.0.0.1")
    config = _config(tmp_path, addon, endpoint=f"tcp://127.0.0.1:{port}", frames=FRAMES, timeout_s=90)
    proc = _blender("live_check.py", config, tmp_path, ui)
    messages = list(read_recording(recording))
    skeleton = messages[0][2]

    def publish() -> None:
        wait_for(tmp_path / "connected", proc, 90)
        wait_for(tmp_path / "skeleton", proc, 30, lambda: pub.send_multipart([b"skeleton", pack(skeleton)]))
        pub.send_multipart([b"frame/cam0", b"\xc1 not msgpack"])  # a bad message must not stop the link
        for _, _, frame in messages[1:]:
            pub.send_multipart([frame_topic(frame.source), pack(frame)])
            time.sleep(1.0 / FPS)

    publisher = threading.Thread(target=publish, daemon=True)
    publisher.start()
    try:
        results = _finish(proc, tmp_path, 240.0 if ui else 120.0)
    finally:
        publisher.join(10)
        pub.close()
    assert results["background"] is not ui
    assert results["frames"] == FRAMES and results["skipped"] == 0 and results["bad"] == 1
    assert sorted(results["tracks"]) == ["3", "7"]
    for track, joints in people.items():
        got = results["tracks"][str(track)]
        assert got["name"] == f"track_{track}"
        assert got["keyed"] == list(range(1, FRAMES + 1))
        expected = _expected(joints + OFFSETS[track])
        for i, frame in enumerate(got["keyed"]):
            _check_heads(got["heads"][str(frame)], expected[i])
        live = results["live"][str(track)]  # the pose applied live, before any frame change
        for bone, joint in zip(BONES, BONE_HEADS):
            np.testing.assert_allclose(live[bone], expected[-1][sk.JOINTS3D.index(joint)], atol=1e-4)
    moved = np.linalg.norm(expected[-1] - expected[0], axis=1).max()
    assert moved > 0.02  # the data moves 200 times the tolerance: matching it means the bones moved


def test_bvh_export_and_recording_import_in_blender(recording, people, addon, tmp_path):
    (bvh,) = export(recording, tmp_path / "take.bvh", "bvh", track=7)
    cut, not_mcap = cut_and_bad_recordings(recording, tmp_path)
    config = _config(tmp_path, addon, bvh=str(bvh), mcap=str(recording), cut_mcap=str(cut), not_mcap=str(not_mcap))
    results = _finish(_blender("offline_check.py", config, tmp_path), tmp_path)

    got = results["bvh"]
    assert sorted(got["bones"]) == sorted(BONES)
    assert got["frame_end"] - got["frame_start"] + 1 == FRAMES
    assert got["scene_fps"] == FPS
    _check_heads(got["first"], _expected(people[7] + OFFSETS[7])[0], atol=1e-3)

    assert sorted(results["mcap"]) == ["recorded_3", "recorded_7"]
    for track, joints in people.items():
        imported = results["mcap"][f"recorded_{track}"]
        assert len(imported["keyed"]) == FRAMES
        expected = _expected(joints + OFFSETS[track])
        for i, frame in enumerate(imported["keyed"]):
            _check_heads(imported["heads"][str(frame)], expected[i])
    assert results["cut"]["truncated"] and 0 < results["cut"]["frames"] < FRAMES
    assert "notes.mcap: not a readable MCAP recording" in results["not_mcap"]
