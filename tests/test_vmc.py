"""VMC output checked by real python-osc UDP servers on loopback, as a Unity receiver would read it."""
from __future__ import annotations

import socket
import threading
import time

import numpy as np
import pytest
import zmq
from downstream_data import fixed_lengths, mocap_people, write_recording
from pythonosc import dispatcher, osc_packet, osc_server

from realtime import skeleton as sk
from realtime.outputs.vmc import VmcBridge
from realtime.record import read_recording
from realtime.rig import BONE_HEADS, BONE_PARENTS, BONES
from realtime.transport.schema import Frame, frame_topic, pack

FPS = 30.0
FRAMES = 20
MIRROR_Z = np.array([1.0, 1.0, -1.0])


class _Bundles(dispatcher.Dispatcher):
    """Keeps each received datagram's messages together: one entry per OSC bundle."""

    def __init__(self) -> None:
        super().__init__()
        self.bundles: list[list[tuple[str, tuple]]] = []

    def call_handlers_for_packet(self, data: bytes, client_address: tuple[str, int]) -> list:
        packet = osc_packet.OscPacket(data)
        self.bundles.append([(m.message.address, tuple(m.message.params)) for m in packet.messages])
        return []


@pytest.fixture
def receivers():
    """Two python-osc servers on consecutive loopback UDP ports (one per track)."""
    for _ in range(20):
        with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as s:
            s.bind(("127.0.0.1", 0))
            base = s.getsockname()[1]
        if base >= 65535:
            continue
        try:
            servers = [osc_server.ThreadingOSCUDPServer(("127.0.0.1", base + k), _Bundles()) for k in range(2)]
        except OSError:
            continue
        threads = [threading.Thread(target=s.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True)
                   for s in servers]
        for t in threads:
            t.start()
        yield base, [s.dispatcher for s in servers]
        for s in servers:
            s.shutdown()
            s.server_close()
        return
    pytest.fail("no two consecutive free UDP ports on loopback")


@pytest.fixture(scope="module")
def people(mocap_dir):
    return mocap_people(mocap_dir, FPS, FRAMES)


@pytest.fixture(scope="module")
def recording(people, tmp_path_factory):
    return write_recording(tmp_path_factory.mktemp("vmc") / "session.mcap", people, FPS)


def _wait(predicate, timeout_s: float = 10.0) -> None:
    deadline = time.monotonic() + timeout_s
    while not predicate() and time.monotonic() < deadline:
        time.sleep(0.02)


def _unity_fk(messages: list[tuple[str, tuple]]) -> tuple[dict[str, np.ndarray], float]:
    """World bone-head positions as a Unity receiver computes them from one bundle (Unity frame)."""
    root = next(args for addr, args in messages if addr == "/VMC/Ext/Root/Pos")
    bones = {args[0]: args[1:] for addr, args in messages if addr == "/VMC/Ext/Bone/Pos"}
    t = next(args[0] for addr, args in messages if addr == "/VMC/Ext/T")
    assert root[0] == "root" and np.allclose(root[4:], [0, 0, 0, 1])
    pos, rot = {}, {}
    for i, name in enumerate(BONES):
        local_pos, q = np.array(bones[name][:3]), np.array(bones[name][3:])
        parent_pos, parent_rot = ((np.array(root[1:4]), np.eye(3)) if BONE_PARENTS[i] < 0
                                  else (pos[BONES[BONE_PARENTS[i]]], rot[BONES[BONE_PARENTS[i]]]))
        pos[name] = parent_pos + parent_rot @ local_pos
        rot[name] = parent_rot @ _quat_matrix(q)
    return pos, t


def _quat_matrix(q: np.ndarray) -> np.ndarray:
    x, y, z, w = q / np.linalg.norm(q)
    return np.array([[1 - 2 * (y * y + z * z), 2 * (x * y - z * w), 2 * (x * z + y * w)],
                     [2 * (x * y + z * w), 1 - 2 * (x * x + z * z), 2 * (y * z - x * w)],
                     [2 * (x * z - y * w), 2 * (y * z + x * w), 1 - 2 * (x * x + y * y)]])


def _check_track(bundles: list, joints_world: np.ndarray) -> None:
    """Every frame came as one bundle with every bone, placing the joints where the person was."""
    assert len(bundles) == FRAMES
    expected = fixed_lengths(joints_world)
    times = []
    for messages, joints in zip(bundles, expected):
        addresses = [a for a, _ in messages]
        assert addresses[0] == "/VMC/Ext/Root/Pos" and addresses[-2:] == ["/VMC/Ext/OK", "/VMC/Ext/T"]
        assert [args[0] for a, args in messages if a == "/VMC/Ext/Bone/Pos"] == list(BONES)
        pos, t = _unity_fk(messages)
        times.append(t)
        for bone, joint in zip(BONES, BONE_HEADS):
            # OSC floats are 32-bit: a few micrometres of rounding per bone along the chain
            np.testing.assert_allclose(pos[bone], joints[sk.JOINTS3D.index(joint)] * MIRROR_Z, atol=1e-3)
    np.testing.assert_allclose(np.diff(times), 1.0 / FPS, atol=1e-4)


def test_replay_sends_every_bone_of_every_track_every_frame_at_the_source_rate(recording, people, receivers):
    base, (first, second) = receivers
    bridge = VmcBridge(port=base, track=-1)
    start = time.monotonic()
    bridge.replay(read_recording(recording), realtime=True)
    elapsed = time.monotonic() - start
    _wait(lambda: len(first.bundles) >= FRAMES and len(second.bundles) >= FRAMES)
    assert bridge.sent == 2 * FRAMES and bridge.skipped == 0
    offset = np.array([1.5, 0.0, -3.0])  # where write_recording put the second person
    _check_track(first.bundles, people[0] + (0.0, 0.0, -3.0))
    _check_track(second.bundles, people[1] + offset)
    assert elapsed >= 0.95 * (FRAMES - 1) / FPS  # paced at the recording's frame rate, not faster


def test_chosen_track_goes_to_the_configured_port_only(recording, receivers):
    base, (first, second) = receivers
    bridge = VmcBridge(port=base, track=7)
    bridge.replay(read_recording(recording), realtime=False)
    _wait(lambda: len(first.bundles) >= FRAMES)
    time.sleep(0.2)
    assert len(first.bundles) == FRAMES and not second.bundles
    assert list(bridge.senders) == [7]


def test_a_bad_person_is_skipped_and_the_stream_goes_on(recording, receivers):
    base, (first, _) = receivers
    bridge = VmcBridge(port=base, track=3)
    frames = [m for _, _, m in read_recording(recording) if isinstance(m, Frame)]
    bridge.handle(frames[0])
    broken = frames[1]
    broken.people[0].joints3d[4] = np.nan
    bridge.handle(broken)
    bridge.handle(frames[2])
    _wait(lambda: len(first.bundles) >= 2)
    assert bridge.sent == 2 and bridge.skipped == 1


def test_live_stream_from_a_zeromq_publisher(recording, people, receivers):
    """A real PUB socket on loopback -> VmcBridge.follow -> OSC receivers."""
    base, (first, second) = receivers
    ctx = zmq.Context.instance()
    pub = ctx.socket(zmq.PUB)
    port = pub.bind_to_random_port("tcp://127.0.0.1")
    bridge = VmcBridge(port=base, track=-1)
    follower = threading.Thread(target=bridge.follow, args=(f"tcp://127.0.0.1:{port}",),
                                kwargs={"max_frames": FRAMES, "timeout_s": 20.0}, daemon=True)
    follower.start()
    messages = list(read_recording(recording))
    skeleton = messages[0][2]
    _wait(lambda: (pub.send_multipart([b"skeleton", pack(skeleton)]) or bridge.skeleton is not None), 10.0)
    pub.send_multipart([b"garbage", b"\xc1not msgpack"])
    for _, _, message in messages[1:]:
        pub.send_multipart([frame_topic(message.source), pack(message)])
        time.sleep(1.0 / FPS)
    follower.join(20.0)
    pub.close()
    assert not follower.is_alive()
    _wait(lambda: len(first.bundles) >= FRAMES and len(second.bundles) >= FRAMES)
    _check_track(first.bundles, people[0] + (0.0, 0.0, -3.0))
    _check_track(second.bundles, people[1] + (1.5, 0.0, -3.0))


def test_python_client_example_prints_each_tracks_pose(recording):
    """clients/python/subscribe.py, run as a user would, against a real publisher."""
    import subprocess
    import sys

    from downstream_data import REPO_ROOT
    ctx = zmq.Context.instance()
    pub = ctx.socket(zmq.PUB)
    port = pub.bind_to_random_port("tcp://127.0.0.1")
    proc = subprocess.Popen([sys.executable, str(REPO_ROOT / "clients" / "python" / "subscribe.py"),
                             f"tcp://127.0.0.1:{port}"], stdout=subprocess.PIPE, text=True, cwd=REPO_ROOT)
    lines: list[str] = []
    reader = threading.Thread(target=lambda: lines.extend(proc.stdout), daemon=True)
    reader.start()
    frames = [m for _, _, m in read_recording(recording) if isinstance(m, Frame)]
    try:
        deadline = time.monotonic() + 30
        while not lines and time.monotonic() < deadline and proc.poll() is None:
            pub.send_multipart([frame_topic(frames[0].source), pack(frames[0])])  # until it has subscribed
            time.sleep(0.1)
        for frame in frames[1:]:
            pub.send_multipart([frame_topic(frame.source), pack(frame)])
        _wait(lambda: any(line.startswith(f"{FRAMES - 1} 7 ") for line in lines), 10.0)
    finally:
        proc.kill()
        proc.wait()
        pub.close()
    last = next(line for line in lines if line.startswith(f"{FRAMES - 1} 7 "))
    assert "'Hips': [" in last and "'Spine': [" in last
    root = [float(v) for v in last.split("[", 1)[1].split("]", 1)[0].split(",")]
    person = next(p for p in frames[-1].people if p.track_id == 7)
    np.testing.assert_allclose(root, person.root + person.joints3d[sk.JOINTS3D.index("pelvis")], atol=1e-3)
    assert {line.split()[1] for line in lines} == {"3", "7"}


def test_command_line_sends_a_recording_and_reports_bad_input(recording, receivers, capsys, tmp_path):
    import argparse

    from realtime.outputs import vmc
    parser = argparse.ArgumentParser()
    vmc.add_arguments(parser)
    base, (first, second) = receivers
    assert vmc.run(parser.parse_args(["--recording", str(recording), "--port", str(base), "--fast"])) == 0
    assert "40 bundles sent to 2 receiver(s), 0 skipped" in capsys.readouterr().out
    _wait(lambda: len(first.bundles) >= FRAMES and len(second.bundles) >= FRAMES)
    assert vmc.run(parser.parse_args(["--recording", str(tmp_path / "missing.mcap")])) == 2  # a usage error, like every bad argument
    assert "missing.mcap: no such recording" in capsys.readouterr().err
