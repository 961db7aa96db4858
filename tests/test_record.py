"""MCAP recording: round trip, survival of SIGKILL, replay over a real socket."""
from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest

from realtime.client import Subscriber
from realtime.record import Recorder, RecordingError, RecordingReader, join_parts, part_path, read_recording
from realtime.transport import schema

REPO = Path(__file__).resolve().parent.parent


def _frame(seq: int, t: float) -> schema.Frame:
    person = schema.Person(track_id=1, score=0.8, keypoints2d=np.full((14, 2), float(seq)), confidence=np.ones(14),
                           joints3d=np.full((16, 3), 0.1), uncertainty=np.full(16, 0.01), root=np.array([0.0, 0, -3]))
    return schema.Frame(source="cam0", seq=seq, t_capture=t, t_publish=t + 0.04, people=[person])


def _write(path: Path, n: int, t0: float = 1000.0, dt: float = 0.01, flush_every_s: float = 0.1) -> None:
    with Recorder(path, flush_every_s=flush_every_s) as rec:
        rec.write(schema.TOPIC_SKELETON, int(t0 * 1e9), schema.pack(schema.Skeleton()))
        for i in range(n):
            rec.write(schema.frame_topic("cam0"), int((t0 + i * dt) * 1e9), schema.pack(_frame(i, t0 + i * dt)))


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def test_round_trip(tmp_path):
    path = tmp_path / "s.mcap"
    _write(path, 50)
    messages = list(read_recording(path))
    assert [t for t, _, _ in messages] == ["skeleton"] + ["frame/cam0"] * 50
    frames = [m for _, _, m in messages[1:]]
    assert [f.seq for f in frames] == list(range(50))
    assert [lt for _, lt, _ in messages[1:]] == [int((1000.0 + i * 0.01) * 1e9) for i in range(50)]
    assert frames[7].people[0].keypoints2d[0, 0] == 7.0 and frames[7].people[0].root[2] == -3.0


def test_not_a_recording_is_a_clear_error(tmp_path):
    bad = tmp_path / "x.mcap"
    bad.write_bytes(b"definitely not mcap")
    with pytest.raises(RecordingError, match="x.mcap: not an MCAP recording"):
        list(read_recording(bad))
    with pytest.raises(RecordingError, match="no such recording"):
        read_recording(tmp_path / "missing.mcap")


WRITER = """
import sys, time
import numpy as np
from realtime.record import Recorder
from realtime.transport import schema
rec = Recorder(sys.argv[1], flush_every_s=0.2)
rec.write(schema.TOPIC_SKELETON, time.time_ns(), schema.pack(schema.Skeleton()))
i = 0
while True:
    f = schema.Frame(source="cam0", seq=i, t_capture=time.time(), t_publish=time.time(), people=[])
    rec.write(schema.frame_topic("cam0"), time.time_ns(), schema.pack(f))
    if i == 30:
        print("writing", flush=True)
    i += 1
    time.sleep(0.005)
"""


def test_recording_survives_sigkill(tmp_path):
    path = tmp_path / "killed.mcap"
    proc = subprocess.Popen([sys.executable, "-c", WRITER, str(path)], stdout=subprocess.PIPE, cwd=REPO, text=True)
    try:
        assert proc.stdout.readline().strip() == "writing"
        time.sleep(1.0)
    finally:
        os.kill(proc.pid, signal.SIGKILL)
        proc.wait()
    reader = RecordingReader(path)
    messages = list(reader)
    seqs = [m.seq for t, _, m in messages if t == "frame/cam0"]
    assert messages[0][0] == "skeleton"
    assert len(seqs) > 30 and seqs == list(range(len(seqs)))  # everything up to the last flushed chunk
    assert reader.skipped == 0
    times = [lt for _, lt, _ in messages]
    assert times == sorted(times)


def test_parts_of_a_restarted_recorder_join_into_one_file(tmp_path):
    """A part cut mid-chunk (as by SIGKILL), the restarted recorder's part, and a stale part of an
    earlier run: the first two become the one complete file, the stale one is left alone."""
    path = tmp_path / "run.mcap"
    _write(path, 60, flush_every_s=0.0)  # a chunk per message
    whole = list(read_recording(path))
    data = path.read_bytes()
    path.write_bytes(data[: len(data) * 2 // 3])  # cut inside a record, as a killed writer leaves it
    cut = RecordingReader(path)
    kept = list(cut)
    assert cut.truncated and 1 < len(kept) < len(whole)
    assert part_path(path, 1) == tmp_path / "run.1.mcap"
    _write(part_path(path, 1), 20, t0=2000.0)
    _write(part_path(path, 2), 5, t0=3000.0)  # left by an earlier run that restarted twice
    joined = join_parts(path, restarts=1)
    assert (joined.parts, joined.messages) == (2, len(kept) + 21)
    joined = RecordingReader(path)
    messages = list(joined)
    assert not joined.truncated and joined.skipped == 0
    assert [m.seq for t, _, m in messages if t == "frame/cam0"] == [m.seq for t, _, m in kept[1:]] + list(range(20))
    times = [lt for _, lt, _ in messages]
    assert times == sorted(times)
    assert not part_path(path, 1).exists() and part_path(path, 2).exists()
    joined = join_parts(path, restarts=0)
    assert (joined.parts, joined.messages) == (1, 0)


def test_replay_republishes_every_message(tmp_path):
    path = tmp_path / "r.mcap"
    _write(path, 40, dt=0.01)
    endpoint = f"tcp://127.0.0.1:{_free_port()}"
    with Subscriber(endpoint) as sub:
        proc = subprocess.Popen([sys.executable, "-m", "realtime", "replay", str(path), "--publish", endpoint,
                                 "--wait", "1.5", "--speed", "1"], cwd=REPO, stderr=subprocess.PIPE, text=True)
        got = []
        while len(got) < 41 and (m := sub.recv(timeout_s=20)) is not None:
            got.append((time.monotonic(), m))
        _, err = proc.communicate(timeout=30)
    assert proc.returncode == 0, err
    assert "replay finished" in err
    frames = [m for _, (t, m) in got if t == "frame/cam0"]
    assert [f.seq for f in frames] == list(range(40))
    assert got[-1][0] - got[0][0] >= 0.3  # paced at the recorded 10 ms per frame, not dumped at once
    assert sub.rejected == 0


def test_replay_bad_file_exits_with_error(tmp_path):
    bad = tmp_path / "bad.mcap"
    bad.write_text("nope")
    proc = subprocess.run([sys.executable, "-m", "realtime", "replay", str(bad), "--wait", "0",
                           "--publish", f"tcp://127.0.0.1:{_free_port()}"], cwd=REPO, capture_output=True, text=True,
                          timeout=60)
    assert proc.returncode == 2 and "bad.mcap: not an MCAP recording" in proc.stderr
