"""The stream against hostile peers and bad input: floods, forged messages, unknown keys, bad settings.

Every attack is on loopback, bounded in count and time, against a real `realtime run`: each asserts
that the processes stay up (no restart), memory stays bounded, the stream has no gap over a second,
and a forged message changes nothing but a counter.
"""
from __future__ import annotations

import os
import re
import subprocess
import sys
import threading
import time

import msgpack
import numpy as np
import pytest
import zmq

from pipeline import REPO, Run, curve_config, free_port, free_port_run, generate_keys, pipeline_config
from realtime.client import Subscriber
from realtime.transport.messages import SIGNED_BY_LIFTING, PeopleMessage
from realtime.transport.schema import Frame
from realtime.transport.security import SecurityError, client_keys

pytestmark = pytest.mark.skipif(not (REPO / "engines" / "pose_prior.npz").exists(),
                                reason="engines/pose_prior.npz (the committed pose prior) is not present")


def _rss_mb(pid: int) -> float:
    with open(f"/proc/{pid}/status") as f:
        return next(int(line.split()[1]) for line in f if line.startswith("VmRSS:")) / 1024


class _Watcher(threading.Thread):
    """A well-behaved subscriber: when each frame arrived."""

    def __init__(self, endpoint: str, curve=None) -> None:
        super().__init__(daemon=True)
        self.sub = Subscriber(endpoint, curve=curve)
        self.arrivals: list[float] = []
        self.frames: list[Frame] = []
        self.done = threading.Event()

    def run(self) -> None:
        while not self.done.is_set():
            m = self.sub.recv(timeout_s=0.1)
            if m is not None and isinstance(m[1], Frame):
                self.arrivals.append(time.monotonic())
                self.frames.append(m[1])
        self.sub.close()

    def wait_frames(self, n: int, timeout: float) -> bool:
        deadline = time.monotonic() + timeout
        while len(self.arrivals) < n and time.monotonic() < deadline:
            time.sleep(0.05)
        return len(self.arrivals) >= n

    def largest_gap(self, since: float) -> tuple[float, float]:
        """The longest time without a frame from ``since`` until now (a stream that stopped counts),
        and when it began (seconds after ``since``)."""
        t = np.array([since, *(a for a in self.arrivals if a >= since), time.monotonic()])
        i = int(np.argmax(np.diff(t)))
        return float(t[i + 1] - t[i]), float(t[i] - since)


def _zmtp_send(endpoint: str, first: bytes, size: int, socket_type: bytes = b"SUB") -> None:
    """Send one ``size``-byte message starting with ``first`` (the rest zeros) as a raw ZMTP 3.0 peer
    (NULL security), streamed from a small buffer: libzmq's own sockets would keep a 150 MB
    subscription in their own subscription tree first."""
    import socket
    import struct

    host, port = endpoint[len("tcp://"):].rsplit(":", 1)
    with socket.create_connection((host, int(port)), timeout=5) as s:
        s.sendall(b"\xff" + b"\0" * 8 + b"\x7f" + b"\x03\x00" + b"NULL".ljust(20, b"\0") + b"\0" * 32)
        ready = b"\x05READY" + b"\x0bSocket-Type" + struct.pack(">I", len(socket_type)) + socket_type
        s.sendall(b"\x04" + bytes([len(ready)]) + ready)
        chunk = bytes(1 << 20)
        try:
            s.sendall(b"\x02" + struct.pack(">Q", size) + first)
            for _ in range(size >> 20):
                s.sendall(chunk)
        except OSError:  # the peer closed the connection at the frame's announced size
            pass


@pytest.mark.slow
def test_floods_and_forged_messages_over_tcp_change_nothing_but_counters(tmp_path, small_video):
    """512-byte subscriptions (each on a new connection: the first closes it) and a 150 MB one, 100k
    unique subscriptions that match nothing, 100k messages that are not subscriptions, forged results
    (no signature, another key, an epoch of 2**63, an end of stream),
    garbage to the capture socket: the publisher stays under 300 MB, the stream has no gap over 1 s,
    no process restarts, and the run does not end until it is told to."""
    config = pipeline_config(tmp_path)
    base = free_port_run(4) - 1
    text = re.sub(r'(?m)^scheme = .*$', 'scheme = "tcp"', config.read_text())
    text = re.sub(r"(?m)^hang_timeout_s = .*$", "hang_timeout_s = 10.0", text)   # the default, not the tests' 3 s
    config.write_text(re.sub(r"(?m)^base_port = .*$", f"base_port = {base}", text))
    run = Run("--config", str(config), "--source", str(small_video), "--loop")
    watcher = _Watcher(run.endpoint)
    watcher.start()
    ctx = zmq.Context()
    try:
        assert watcher.wait_frames(10, 90), run.log
        publisher = run.pid_of("publisher")
        start, rss = time.monotonic(), [_rss_mb(publisher)]

        def xsub() -> zmq.Socket:
            sock = ctx.socket(zmq.XSUB)
            sock.setsockopt(zmq.SNDHWM, 0)
            sock.connect(run.endpoint)
            return sock

        rng = np.random.default_rng(0)
        phases = {}
        # Size attacks first, each on a connection of its own that the publisher closes at the size
        # limit: libzmq walks every subscription it stores for the socket's peers on each connection
        # close (~0.45 s with the 100k below: docs/protocol.md, tools/bench_subscriptions.py).
        phases["512-byte"] = time.monotonic() - start
        for _ in range(5):       # 512-byte subscriptions: the first closes its connection
            _zmtp_send(run.endpoint, b"\x01" + rng.bytes(512), 513)
        phases["150 MB"] = time.monotonic() - start
        _zmtp_send(run.endpoint, b"\x01", 150 << 20)     # one 150 MB subscription
        rss.append(_rss_mb(publisher))
        short, other = xsub(), xsub()
        phases["100k subscriptions"] = time.monotonic() - start
        for i in range(100_000):                          # unique subscriptions no topic can match,
            short.send(b"\x01" + b"frame/x" + rng.bytes(34))  # as long as a subscription may be
            if i % 20_000 == 0:
                rss.append(_rss_mb(publisher))
        phases["not subscriptions"] = time.monotonic() - start
        for _ in range(100_000):                          # messages that are not subscriptions at all
            other.send(b"hello")
        rss.append(_rss_mb(publisher))

        phases["forged"] = time.monotonic() - start
        results = ctx.socket(zmq.PUSH)                    # forged results into the publisher
        results.connect(f"tcp://127.0.0.1:{base + 2}")
        forged = PeopleMessage("frame", "cam0", seq=10 ** 9, epoch=2 ** 63 - 1, iseq=0, t_capture=time.time())
        eos = PeopleMessage("eos", "cam0", seq=0, epoch=2 ** 63 - 1, iseq=0, t_capture=time.time())
        for m in (forged, eos):
            results.send(m.body())                                        # unsigned
            results.send_multipart(m.pack(os.urandom(32), SIGNED_BY_LIFTING))  # signed with another key
        results.send(b"\x00garbage")
        results.send_multipart([forged.body()[:20], os.urandom(16)])            # truncated msgpack
        oversize = ctx.socket(zmq.PUSH)                   # larger than any result: its connection is closed
        oversize.connect(f"tcp://127.0.0.1:{base + 2}")
        oversize.send_multipart([os.urandom(2 << 20), os.urandom(16)])
        results.send(msgpack.packb({"kind": "eos", "source": "cam0", "epoch": 2 ** 64 - 1}))

        frames = ctx.socket(zmq.DEALER)                   # garbage to the capture process's socket
        frames.connect(f"tcp://127.0.0.1:{base + 3}")
        for _ in range(1000):
            frames.send_multipart([rng.bytes(8), rng.bytes(40)])
        frames.send(b"x" * 10_000)

        t_attacked = time.monotonic()
        phases["after"] = t_attacked - start
        while time.monotonic() - t_attacked < 4.0:
            assert os.path.exists(f"/proc/{publisher}"), f"the publisher died:\n{run.log}"
            rss.append(_rss_mb(publisher))
            time.sleep(0.2)
        assert run.proc.poll() is None, f"the run ended:\n{run.log}"
        gap, gap_at = watcher.largest_gap(start)
        timeline = ", ".join(f"{k} at {v:.2f} s" for k, v in phases.items())
        print(f"publisher RSS MB: first {rss[0]:.0f}, largest {max(rss):.0f}; largest gap {gap:.2f} s "
              f"from {gap_at:.2f} s; {timeline}")
    finally:
        watcher.done.set()
        watcher.join(5)
        ctx.destroy(linger=0)
        rc = run.stop()
    assert rc == 0, run.log
    assert max(rss) < 300, rss
    assert gap < 1.0, f"a {gap:.2f} s gap in the stream from {gap_at:.2f} s ({timeline})\n{run.log}"
    assert "restarting" not in run.log, run.log
    assert run.pid_of("publisher") == publisher
    assert re.search(r"publisher .*bad result messages skipped count=\d+", run.log), run.log
    assert re.search(r"capture-0 .*bad frame requests skipped count=\d+", run.log), run.log
    assert len(run.log) < 100_000, f"{len(run.log)} bytes of log"  # counted per interval, not per message
    seqs = [f.seq for f in watcher.frames]
    assert seqs == sorted(set(seqs)) and max(seqs) < 10 ** 9      # no forged frame was published


@pytest.mark.slow
def test_with_curve_only_allowed_clients_get_the_stream(tmp_path, small_video):
    import zmq.auth

    keys = generate_keys(tmp_path)
    config = pipeline_config(tmp_path)
    curve_config(config, keys)
    stranger_public, stranger_secret = zmq.auth.create_certificates(str(tmp_path), "stranger")
    run = Run("--config", str(config), "--source", str(small_video), "--loop")
    allowed = _Watcher(run.endpoint, curve=client_keys(keys / "server.key", keys / "consumer.key_secret"))
    plain = _Watcher(run.endpoint)
    stranger = _Watcher(run.endpoint, curve=client_keys(keys / "server.key", stranger_secret))
    for w in (allowed, plain, stranger):
        w.start()
    try:
        assert allowed.wait_frames(20, 90), run.log
    finally:
        for w in (allowed, plain, stranger):
            w.done.set()
            w.join(5)
        rc = run.stop()
    assert rc == 0, run.log
    assert plain.frames == [] and stranger.frames == [] and plain.sub.received == 0 == stranger.sub.received
    with pytest.raises(SecurityError, match="no secret key"):
        client_keys(keys / "server.key", keys / "consumer.key")


def test_curve_without_its_keys_is_one_clear_error(tmp_path, small_video):
    config = pipeline_config(tmp_path)
    config.write_text(re.sub(r"(?m)^curve = false$", "curve = true", config.read_text()))
    done = subprocess.run([sys.executable, "-m", "realtime", "run", "--config", str(config), "--source",
                           str(small_video), "--max-frames", "1"], cwd=REPO, capture_output=True, text=True,
                          timeout=60)
    assert done.returncode == 2
    assert done.stderr.strip() == ("realtime run: [security] server_key: needed with curve = true "
                                   "(realtime keys generate)")


@pytest.mark.parametrize("settings, message", [
    ({"heartbeat_s": "30.0"}, "[runtime] hang_timeout_s: 10.0 must be at least twice heartbeat_s (30.0)"),
    ({"reconnect_initial_s": "20.0"}, "[source] reconnect_initial_s: 20.0 is above reconnect_max_s (10.0)"),
    ({"publish": '"tcp://127.0.0.1:99999"'}, "[transport] publish: 'tcp://127.0.0.1:99999': port 99999 is outside"),
    ({"publish": '"garbage"'}, "[transport] publish: 'garbage' is not an endpoint"),
    ({"elevations_deg": '["a"]'}, "[lifting] elevations_deg[0]: expected a finite number, got 'a'"),
    ({"host": '"tcp://10.0.0.5"'}, "[transport] host: 'tcp://10.0.0.5' is not a host name or address"),
])
def test_bad_settings_stop_before_any_process_starts(tmp_path, settings, message):
    text = (REPO / "config.toml").read_text()
    for key, value in settings.items():
        text, n = re.subn(rf"(?m)^#? ?{key} = .*$", f"{key} = {value}", text, count=1)
        assert n == 1, key
    config = tmp_path / "config.toml"
    config.write_text(text)
    t0 = time.monotonic()
    done = subprocess.run([sys.executable, "-m", "realtime", "run", "--config", str(config), "--max-frames", "1"],
                          cwd=REPO, capture_output=True, text=True, timeout=60)
    assert done.returncode == 2 and message in done.stderr, done.stderr
    assert len(done.stderr.strip().splitlines()) == 1 and time.monotonic() - t0 < 10


@pytest.mark.parametrize("args, message", [
    (["run", "--source", "webcam:abc"], "webcam:abc: expected webcam:N with N a camera number (cameras found:"),
    (["run", "--source", "webcam:57"], "webcam:57: camera 57 cannot be opened (cameras found:"),
    (["run", "--max-frames", "-5"], "--max-frames: must be at least 1, got -5"),
    (["vmc", "--connect", "foo://bar"], "--connect: 'foo://bar' is not an endpoint"),
    (["vmc", "--connect", "tcp://127.0.0.1:5560", "--port", "70000"], "--port: 70000 is outside 1-65535"),
    (["replay", "missing.mcap", "--publish", "tcp://127.0.0.1:0"], "port 0 is outside 1-65535"),
])
def test_bad_arguments_are_one_line_and_fast(args, message):
    t0 = time.monotonic()
    done = subprocess.run([sys.executable, "-m", "realtime", *args], cwd=REPO, capture_output=True, text=True,
                          timeout=60)
    assert done.returncode == 2 and message in done.stderr, done.stderr
    assert "Traceback" not in done.stderr and time.monotonic() - t0 < 15


def test_an_unwritable_ipc_dir_is_one_clear_error(tmp_path):
    if os.geteuid() == 0:
        pytest.skip("root can write anywhere")
    locked = tmp_path / "locked"
    locked.mkdir(mode=0o500)
    config = pipeline_config(tmp_path)
    config.write_text(re.sub(r'(?m)^ipc_dir = .*$', f'ipc_dir = "{locked / "ipc"}"', config.read_text()))
    done = subprocess.run([sys.executable, "-m", "realtime", "run", "--config", str(config), "--max-frames", "1"],
                          cwd=REPO, capture_output=True, text=True, timeout=60)
    assert done.returncode == 2 and "[transport] ipc_dir" in done.stderr and "Traceback" not in done.stderr


def test_record_never_overwrites_a_session(tmp_path, small_video):
    existing = tmp_path / "session.mcap"
    existing.write_bytes(b"an earlier session")
    done = subprocess.run([sys.executable, "-m", "realtime", "run", "--source", str(small_video), "--record",
                           str(existing), "--max-frames", "1"], cwd=REPO, capture_output=True, text=True, timeout=60)
    assert done.returncode == 2 and f"{existing} exists" in done.stderr and "--overwrite" in done.stderr
    assert existing.read_bytes() == b"an earlier session"
    part = tmp_path / "other.1.mcap"   # the parts an earlier run left (its join failed): its data
    part.write_bytes(b"part")
    done = subprocess.run([sys.executable, "-m", "realtime", "run", "--source", str(small_video), "--record",
                           str(tmp_path / "other.mcap"), "--max-frames", "1"], cwd=REPO, capture_output=True,
                          text=True, timeout=60)
    assert done.returncode == 2 and "realtime record join" in done.stderr
    blocked = tmp_path / "a-file"      # a directory that cannot be made: one line, before anything starts
    blocked.write_bytes(b"")
    done = subprocess.run([sys.executable, "-m", "realtime", "run", "--source", str(small_video), "--record",
                           str(blocked / "run.mcap"), "--max-frames", "1"], cwd=REPO, capture_output=True,
                          text=True, timeout=60)
    assert done.returncode == 2 and "cannot make the directory" in done.stderr, done.stderr


def test_record_makes_its_directory(tmp_path, small_video):
    """`make demo` on a fresh clone records to out/demo.mcap before out/ exists."""
    target = tmp_path / "new" / "dir" / "run.mcap"
    run = Run("--config", str(pipeline_config(tmp_path)), "--source", str(small_video), "--max-frames", "3",
              "--no-pace", "--record", str(target))
    run.proc.wait(90)
    assert run.stop() == 0, run.log
    assert "published=3" in run.log, run.log
    assert target.exists() and target.stat().st_size > 0


@pytest.mark.slow
def test_a_dated_recording_name_and_a_status_line_that_fits_80_columns(tmp_path, small_video):
    """On a terminal the status line is redrawn in place, at most 79 characters, and every log line
    starts on a line of its own (the status line is cleared first)."""
    import pty

    config = pipeline_config(tmp_path)
    pattern = str(tmp_path / "session-%Y%m%d-%H%M%S.mcap")
    master, slave = pty.openpty()
    proc = subprocess.Popen([sys.executable, "-m", "realtime", "run", "--config", str(config), "--source",
                             str(small_video), "--max-frames", "40", "--record", pattern,
                             "--publish", f"tcp://127.0.0.1:{free_port()}"], cwd=REPO, stderr=slave,
                            stdout=subprocess.DEVNULL, env={**os.environ, "COLUMNS": "80"})
    os.close(slave)
    out = b""
    while True:
        try:
            chunk = os.read(master, 65536)
        except OSError:
            break
        if not chunk:
            break
        out += chunk
    assert proc.wait(60) == 0, out.decode(errors="replace")
    os.close(master)
    text = out.decode(errors="replace")
    segments = [s for line in text.split("\r\n") for s in line.split("\r\x1b[K") if s]
    status = [s for s in segments if " fps" in s and "INFO" not in s]
    assert status and all(len(s) <= 79 for s in status), status
    assert all(re.match(r"\d{4}-\d\d-\d\dT", s) for s in segments if "INFO" in s or "WARN" in s), segments
    (recorded,) = list(tmp_path.glob("session-*.mcap"))
    assert re.fullmatch(r"session-\d{8}-\d{6}\.mcap", recorded.name)


def test_a_damaged_chunk_costs_only_that_chunk(tmp_path, mocap_dir):
    """A flipped byte inside one chunk: the reader, export and replay skip that chunk with one warning
    naming its bytes, and keep every other chunk."""
    from downstream_data import mocap_people
    from realtime.record import Recorder, RecordingReader
    from realtime.transport import schema

    (joints, _) = mocap_people(mocap_dir, frames=60)
    path = tmp_path / "run.mcap"
    with Recorder(path, flush_every_s=0.0) as rec:   # a chunk per message
        for seq, pose in enumerate(joints):
            t = 1000.0 + seq / 30
            person = schema.Person(track_id=3, score=0.9, keypoints2d=np.zeros((14, 2)), confidence=np.ones(14),
                                   joints3d=pose - pose[0], root=pose[0], bbox=np.array([0.0, 0.0, 1.0, 1.0]))
            frame = schema.Frame(source="cam0", seq=seq, t_capture=t, t_publish=t, people=[person])
            rec.write(schema.frame_topic("cam0"), int(t * 1e9), schema.pack(frame))
    data = bytearray(path.read_bytes())
    data[len(data) // 2] ^= 0xFF
    path.write_bytes(bytes(data))
    reader = RecordingReader(path)
    seqs = [m.seq for _, _, m in reader]
    assert len(seqs) == 59 and seqs == sorted(seqs) and len(reader.corrupt) == 1, (seqs, reader.errors)
    assert re.search(r"bytes \d+-\d+: unreadable chunk skipped", reader.errors[0])
    out = tmp_path / "run.csv"
    done = subprocess.run([sys.executable, "-m", "realtime", "export", str(path), "--output", str(out)], cwd=REPO,
                          capture_output=True, text=True, timeout=60)
    written = tmp_path / "run_3.csv"   # one file per track
    assert done.returncode == 0 and written.exists(), done.stderr
    assert len(re.findall(r"unreadable chunk skipped", done.stderr)) == 1, done.stderr
    assert len(written.read_text().splitlines()) > 50


def test_a_lifting_worker_skips_malformed_and_forged_messages_and_stays_up(tmp_path):
    """A worker of a split run (`--stages lifting`) between a 2D stage and a publisher played by this
    test: garbage, unsigned and wrongly signed messages are skipped and counted; the good message
    after them is lifted and passed on, signed."""
    from realtime.transport.messages import SIGNED_BY_2D
    from realtime.transport.schema import Person

    base = free_port_run(3) - 1
    secret = tmp_path / "secret"
    secret.write_text(os.urandom(32).hex())
    config = pipeline_config(tmp_path)
    text = re.sub(r'(?m)^scheme = .*$', 'scheme = "tcp"', config.read_text())
    text = re.sub(r"(?m)^base_port = .*$", f"base_port = {base}", text)
    config.write_text(re.sub(r'(?m)^# secret_file = .*$', f'secret_file = "{secret}"', text))
    ctx = zmq.Context()
    people_2d = ctx.socket(zmq.PUSH)
    people_2d.bind(f"tcp://127.0.0.1:{base + 1}")
    results = ctx.socket(zmq.PULL)
    results.bind(f"tcp://127.0.0.1:{base + 2}")
    run = Run("--config", str(config), "--stages", "lifting", "--workers", "1")
    try:
        assert people_2d.poll(60_000, zmq.POLLOUT), run.log
        person = Person(keypoints2d=np.tile([[300.0, 200.0]], (14, 1)) + np.arange(28).reshape(14, 2) * 5,
                        confidence=np.full(14, 0.9), score=0.9, bbox=np.array([250.0, 150.0, 400.0, 450.0]))
        good = PeopleMessage("frame", "cam0", seq=5, epoch=1, iseq=0, t_capture=time.time(), width=640,
                             height=480, people=[person])
        key = bytes.fromhex(secret.read_text())
        for junk in ([b"\xc1"], [good.body()], good.pack(os.urandom(32), SIGNED_BY_2D),
                     [msgpack.packb({"people": ["x"] * 10 ** 4}), b"0" * 16], [os.urandom(100), os.urandom(16)]):
            people_2d.send_multipart(junk)
        people_2d.send_multipart(good.pack(key, SIGNED_BY_2D))
        assert results.poll(30_000), run.log
        back = PeopleMessage.unpack(results.recv_multipart(), key, SIGNED_BY_LIFTING)
        assert back.seq == 5 and back.people[0].joints3d is not None
        time.sleep(1.5)  # a heartbeat with the counters
        assert run.proc.poll() is None and "restarting" not in run.log, run.log
    finally:
        ctx.destroy(linger=0)
        rc = run.stop()
    assert rc == 0, run.log
    assert re.search(r"lift-0 .*bad messages skipped count=1 ", run.log), run.log  # the first, then per interval


def test_a_dead_network_source_is_given_up_after_the_configured_time(tmp_path):
    config = pipeline_config(tmp_path)
    text = re.sub(r"(?m)^# give_up_after_s = .*$", "give_up_after_s = 2.0", config.read_text())
    config.write_text(re.sub(r"(?m)^reconnect_initial_s = .*$", "reconnect_initial_s = 0.2", text))
    t0 = time.monotonic()
    run = Run("--config", str(config), "--source", f"rtsp://127.0.0.1:{free_port()}/nothing")
    try:
        rc = run.proc.wait(60)
    finally:
        run.stop()
    assert rc == 0 and time.monotonic() - t0 < 45, run.log
    assert "source_gave_up" in run.log and "reason=gave_up" in run.log, run.log
