"""`realtime export`: BVH/CSV/JSON from a real recording (CMU mocap people written with the Recorder)."""
from __future__ import annotations

import csv
import json
import subprocess
import sys

import numpy as np
import pytest
from downstream_data import REPO_ROOT, cut_and_bad_recordings, fixed_lengths, mocap_people, write_recording

from realtime import skeleton as sk
from realtime.cli import main
from realtime.mocap.bvh import read_bvh
from realtime.record import Recorder
from realtime.rig import BONE_HEADS, BONES
from realtime.transport.schema import Skeleton, pack

FPS = 30.0
FRAMES = 24
OFFSETS = {3: np.array([0.0, 0.0, -3.0]), 7: np.array([1.5, 0.0, -3.0])}


@pytest.fixture(scope="module")
def people(mocap_dir):
    return dict(zip((3, 7), mocap_people(mocap_dir, FPS, FRAMES)))


@pytest.fixture(scope="module")
def recording(people, tmp_path_factory):
    return write_recording(tmp_path_factory.mktemp("export") / "session.mcap", list(people.values()), FPS)


def test_bvh_per_track_replays_the_recorded_joints(recording, people, tmp_path, capsys):
    assert main(["export", str(recording), "--format", "bvh", "--output", str(tmp_path / "take.bvh")]) == 0
    assert capsys.readouterr().out.split() == [str(tmp_path / "take_3.bvh"), str(tmp_path / "take_7.bvh")]
    for track, joints in people.items():
        motion = read_bvh(tmp_path / f"take_{track}.bvh")  # the mocap reader: an independent BVH parser
        assert motion.fps == pytest.approx(FPS, rel=1e-3)
        assert motion.positions.shape[0] == FRAMES
        assert set(BONES) <= set(motion.names)
        expected = fixed_lengths(joints + OFFSETS[track])
        for bone, joint in zip(BONES, BONE_HEADS):
            got = motion.positions[:, motion.names.index(bone)]
            np.testing.assert_allclose(got, expected[:, sk.JOINTS3D.index(joint)], atol=1e-3)
        np.testing.assert_allclose(motion.positions[:, motion.names.index("Head/end")],
                                   expected[:, sk.JOINTS3D.index("head_top")], atol=1e-3)


def test_csv_and_json_hold_every_joint_of_every_frame(recording, people, tmp_path):
    assert main(["export", str(recording), "--output", str(tmp_path / "j.csv"), "--track", "7"]) == 0
    with open(tmp_path / "j.csv", newline="") as f:
        rows = list(csv.reader(f))
    assert rows[0] == ["time", "seq", "track", "joint", "x", "y", "z"]
    assert len(rows) == 1 + FRAMES * len(sk.JOINTS3D)
    assert {r[2] for r in rows[1:]} == {"7"}
    xyz = np.array([[float(v) for v in r[4:]] for r in rows[1:]]).reshape(FRAMES, len(sk.JOINTS3D), 3)
    np.testing.assert_allclose(xyz, people[7] + OFFSETS[7], atol=2e-5)
    times = np.array([float(r[0]) for r in rows[1::len(sk.JOINTS3D)]])
    np.testing.assert_allclose(np.diff(times), 1.0 / FPS, atol=1e-5)

    assert main(["export", str(recording), "--format", "json", "--output", str(tmp_path / "j.json")]) == 0
    for track in (3, 7):
        doc = json.loads((tmp_path / f"j_{track}.json").read_text())
        assert doc["joint_names"] == list(sk.JOINTS3D) and doc["columns"][3] == "joint"
        assert len(doc["rows"]) == FRAMES * len(sk.JOINTS3D)
        first = {r[3]: r[4:] for r in doc["rows"][:len(sk.JOINTS3D)]}
        np.testing.assert_allclose(first["l_wrist"], people[track][0, sk.JOINTS3D.index("l_wrist")] + OFFSETS[track],
                                   atol=2e-5)


def test_gaps_in_a_track_hold_the_last_pose_to_keep_time(people, tmp_path):
    path = tmp_path / "gappy.mcap"
    write_recording(path, list(people.values()), FPS)
    from realtime.export.tracks import load_tracks
    from realtime.record import read_recording
    from realtime.transport.schema import Frame
    gappy = tmp_path / "gappy2.mcap"
    with Recorder(gappy) as rec:
        for topic, t, m in read_recording(path):
            if isinstance(m, Frame) and 5 <= m.seq < 9:
                m.people = [p for p in m.people if p.track_id != 7]
            rec.write(topic, t, pack(m))
    assert len(load_tracks(gappy, 7).tracks[7].times) == FRAMES - 4
    assert main(["export", str(gappy), "--output", str(tmp_path / "g.bvh"), "--track", "7"]) == 0
    motion = read_bvh(tmp_path / "g.bvh")
    assert motion.positions.shape[0] == FRAMES
    np.testing.assert_allclose(motion.positions[5:9], np.repeat(motion.positions[4:5], 4, axis=0))


def test_bad_input_gives_a_clear_error(recording, tmp_path, capsys):
    not_mcap = tmp_path / "notes.mcap"
    not_mcap.write_text("hello, not a recording\n")
    assert main(["export", str(not_mcap), "--output", str(tmp_path / "x.bvh")]) == 1
    assert "notes.mcap" in capsys.readouterr().err

    empty = tmp_path / "empty.mcap"
    with Recorder(empty) as rec:
        rec.write("skeleton", 1, pack(Skeleton()))
    assert main(["export", str(empty), "--output", str(tmp_path / "x.csv")]) == 1
    assert "no frames" in capsys.readouterr().err

    assert main(["export", str(recording), "--output", str(tmp_path / "x.bvh"), "--track", "9"]) == 1
    assert "no track 9 with 3D poses (tracks: 3, 7)" in capsys.readouterr().err

    assert main(["export", str(recording), "--output", str(tmp_path / "x.txt")]) == 2
    assert "--format" in capsys.readouterr().err
    assert not list(tmp_path.glob("x*"))


def test_export_runs_as_a_command(recording, tmp_path):
    out = subprocess.run([sys.executable, "-m", "realtime", "export", str(recording), "--format", "csv",
                          "--output", str(tmp_path / "cmd.csv"), "--track", "3"],
                         cwd=REPO_ROOT, capture_output=True, text=True, timeout=120)
    assert out.returncode == 0, out.stderr
    assert out.stdout.strip() == str(tmp_path / "cmd.csv")
    assert (tmp_path / "cmd.csv").read_text().count("\n") == 1 + FRAMES * len(sk.JOINTS3D)


def test_several_sources_need_a_choice(people, tmp_path, capsys):
    path = tmp_path / "two_cameras.mcap"
    write_recording(tmp_path / "a.mcap", list(people.values()), FPS, source="cam0")
    write_recording(tmp_path / "b.mcap", list(people.values()), FPS, source="cam1", track_ids=(11, 12))
    from realtime.record import read_recording
    with Recorder(path) as rec:
        for part in ("a.mcap", "b.mcap"):
            for topic, t, m in read_recording(tmp_path / part):
                rec.write(topic, t, pack(m))
    assert main(["export", str(path), "--output", str(tmp_path / "s.csv")]) == 1
    assert "several sources (cam0, cam1); choose one with --source" in capsys.readouterr().err
    assert main(["export", str(path), "--output", str(tmp_path / "s.csv"), "--source", "cam1"]) == 0
    assert capsys.readouterr().out.split() == [str(tmp_path / "s_11.csv"), str(tmp_path / "s_12.csv")]
    assert main(["export", str(path), "--output", str(tmp_path / "s.csv"), "--source", "cam9"]) == 1
    assert "no frames from source 'cam9'" in capsys.readouterr().err


def test_a_recording_cut_short_exports_up_to_the_cut(recording, tmp_path, capsys):
    cut, _ = cut_and_bad_recordings(recording, tmp_path)
    assert main(["export", str(cut), "--output", str(tmp_path / "c.csv"), "--track", "3"]) == 0
    assert "file cut short" in capsys.readouterr().err
    rows = (tmp_path / "c.csv").read_text().splitlines()[1:]
    assert 0 < len(rows) < FRAMES * len(sk.JOINTS3D) and len(rows) % len(sk.JOINTS3D) == 0
