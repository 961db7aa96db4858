"""VMC protocol output: each tracked person's humanoid pose as OSC bundles over UDP.

VMC (Virtual Motion Capture protocol) is how Unity (EVMC4U), Unreal (VMC4UE), VSeeFace and VTuber
tools already take live motion. Per frame and person one OSC bundle carries
``/VMC/Ext/Root/Pos``, one ``/VMC/Ext/Bone/Pos`` per humanoid bone, ``/VMC/Ext/OK`` and
``/VMC/Ext/T``. VMC speaks Unity's frame (left-handed, y up), so this adapter flips z; the rest of
the system stays right-handed. The avatar's root sits on the ground under the pelvis and the Hips
bone at the rest hip height above it, so receivers that apply root motion place the pelvis where
the person is.
"""
from __future__ import annotations

import argparse
import logging
import sys
import time
from collections.abc import Iterable
from typing import Any

import numpy as np
from pythonosc import osc_bundle, osc_bundle_builder, osc_message_builder, udp_client

from realtime import skeleton as sk
from realtime.rig import BONES, BonePose, HumanoidRig, RigError
from realtime.transport.schema import Frame, Skeleton

log = logging.getLogger(__name__)

DEFAULT_PORT = 39539


def unity_position(p: np.ndarray) -> np.ndarray:
    """Wire (right-handed, y up) -> Unity (left-handed, y up): mirror z."""
    return np.asarray(p, dtype=np.float64) * (1.0, 1.0, -1.0)


def unity_rotation(q: np.ndarray) -> np.ndarray:
    """Quaternion (x, y, z, w) under the z mirror: the axis flips x and y, the angle changes sign."""
    return np.asarray(q, dtype=np.float64) * (-1.0, -1.0, 1.0, 1.0)


def _message(address: str, *args: object) -> osc_message_builder.OscMessageBuilder:
    msg = osc_message_builder.OscMessageBuilder(address=address)
    for a in args:
        msg.add_arg(a)
    return msg


class VmcSender:
    """Sends one avatar's poses to one VMC receiver (host, port)."""

    def __init__(self, rig: HumanoidRig, host: str = "127.0.0.1", port: int = DEFAULT_PORT):
        self.rig, self.host, self.port = rig, host, port
        self._client = udp_client.UDPClient(host, port)
        self._hip_height = float(-rig.rest_joints[:, 1].min())
        offsets = rig.bone_offsets.copy()
        offsets[0] = (0.0, self._hip_height, 0.0)
        self._bone_positions = unity_position(offsets)

    def bundle(self, pose: BonePose, t: float) -> osc_bundle.OscBundle:
        """One frame as an OSC bundle (timetag 'immediately': receivers apply it on arrival)."""
        b = osc_bundle_builder.OscBundleBuilder(osc_bundle_builder.IMMEDIATELY)
        root = unity_position(np.asarray(pose.root) - (0.0, self._hip_height, 0.0))
        b.add_content(_message("/VMC/Ext/Root/Pos", "root", *map(float, root), 0.0, 0.0, 0.0, 1.0).build())
        rotations = unity_rotation(pose.rotations)
        for name, pos, q in zip(BONES, self._bone_positions, rotations):
            b.add_content(_message("/VMC/Ext/Bone/Pos", name, *map(float, pos), *map(float, q)).build())
        b.add_content(_message("/VMC/Ext/OK", 1).build())
        b.add_content(_message("/VMC/Ext/T", float(t)).build())
        return b.build()

    def send(self, pose: BonePose, t: float) -> None:
        self._client.send(self.bundle(pose, t))


class VmcBridge:
    """Turns published frames into VMC: one sender per track (ports ``port``, ``port+1``, ... in
    order of appearance, at most ``max_senders``) or only the chosen ``track`` on ``port``.

    Each track's rig takes its bone lengths from the skeleton message's rest offsets when the
    stream has them, else from that track's first pose. A frame or person that cannot be used is
    skipped and counted in ``skipped``; it never stops the stream.
    """

    def __init__(self, host: str = "127.0.0.1", port: int = DEFAULT_PORT, track: int = -1, max_senders: int = 4):
        self.host, self.port, self.track, self.max_senders = host, port, track, max_senders
        self.senders: dict[int, VmcSender] = {}
        self.skeleton: Skeleton | None = None
        self.sent = 0
        self.skipped = 0
        self._t0: float | None = None

    def handle(self, message: Skeleton | Frame) -> int:
        """Send the VMC bundles for one message; returns how many were sent."""
        if isinstance(message, Skeleton):
            self.skeleton = message
            return 0
        if self._t0 is None:
            self._t0 = message.t_capture
        names = self.skeleton.joint_names if self.skeleton else None
        sent = 0
        for person in message.people:
            if person.track_id < 0 or person.joints3d is None or (self.track >= 0 and person.track_id != self.track):
                continue
            try:
                sender = self._sender(person.track_id, person.joints3d, names)
                if sender is None:
                    continue
                sender.send(sender.rig.pose(person.joints3d, person.root), message.t_capture - self._t0)
                sent += 1
            except (RigError, OSError) as e:
                self.skipped += 1
                log.warning("vmc: frame %d track %d skipped: %s", message.seq, person.track_id, e)
        self.sent += sent
        return sent

    def _sender(self, track: int, joints: np.ndarray, names: list[str] | None) -> VmcSender | None:
        if track in self.senders:
            return self.senders[track]
        if len(self.senders) >= (1 if self.track >= 0 else self.max_senders):
            return None
        joint_names = tuple(names) if names else sk.JOINTS3D
        skel = self.skeleton
        rig = HumanoidRig.for_stream(joint_names, skel.parents if skel else sk.PARENT_INDEX3D,
                                     skel.rest_offsets if skel else [], joints)
        port = self.port + len(self.senders)
        self.senders[track] = VmcSender(rig, self.host, port)
        log.info("vmc: track %d -> udp %s:%d", track, self.host, port)
        return self.senders[track]

    def replay(self, messages: Iterable[tuple[str, int, Skeleton | Frame]], realtime: bool = True) -> int:
        """Send a recording's messages, paced at their log times (the capture times) when ``realtime``."""
        start_wall = first = None
        for _topic, log_time_ns, message in messages:
            if realtime and isinstance(message, Frame):
                if first is None:
                    first, start_wall = log_time_ns, time.monotonic()
                delay = start_wall + (log_time_ns - first) / 1e9 - time.monotonic()
                if delay > 0:
                    time.sleep(delay)
            self.handle(message)
        return self.sent

    def follow(self, endpoint: str, max_frames: int | None = None, timeout_s: float | None = None,
               curve: Any = None) -> int:
        """Subscribe to a live stream (the runtime's ZeroMQ PUB) and send as frames arrive; ``curve``:
        :class:`realtime.transport.security.CurveKeys` for a CURVE publisher."""
        from realtime.client import Subscriber
        deadline = None if timeout_s is None else time.monotonic() + timeout_s
        frames = 0
        with Subscriber(endpoint, curve=curve) as sub:
            while deadline is None or time.monotonic() < deadline:
                received = sub.recv(timeout_s=0.2)
                if received is None:
                    continue
                self.handle(received[1])
                frames += isinstance(received[1], Frame)
                if max_frames is not None and frames >= max_frames:
                    break
        return self.sent


def add_arguments(p: argparse.ArgumentParser) -> None:
    src = p.add_mutually_exclusive_group(required=True)
    src.add_argument("--connect", metavar="ENDPOINT", help="live stream to follow, e.g. tcp://127.0.0.1:5560")
    src.add_argument("--recording", metavar="PATH.mcap", help="recording to send, paced at its frame rate")
    p.add_argument("--config", help="config.toml with a [vmc] section (default: the repository's)")
    p.add_argument("--host", help="VMC receiver host ([vmc] host)")
    p.add_argument("--port", type=_port, help="VMC receiver port ([vmc] port, 39539)")
    p.add_argument("--track", type=int, help="send only this track id ([vmc] track; -1 = every track)")
    p.add_argument("--fast", action="store_true", help="recordings: send as fast as possible")
    p.add_argument("--server-key", metavar="FILE", help="a CURVE publisher's public key (server.key)")
    p.add_argument("--client-key", metavar="FILE", help="this client's CURVE key pair (e.g. consumer.key_secret)")


def _port(text: str) -> int:
    try:
        port = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected a port number, got {text!r}") from None
    if not 1 <= port <= 65535:
        raise argparse.ArgumentTypeError(f"{port} is outside 1-65535")
    return port


def run(args: argparse.Namespace) -> int:
    from realtime.config import ConfigError, check_endpoint, load_config
    from realtime.record import RecordingError, read_recording
    from realtime.transport.security import SecurityError, optional_client_keys
    try:
        cfg = load_config(args.config).vmc
        curve = None
        if args.connect:
            check_endpoint("--connect", args.connect)
            curve = optional_client_keys(args.server_key, args.client_key)
        bridge = VmcBridge(host=args.host or cfg.host, port=args.port or cfg.port,
                           track=cfg.track if args.track is None else args.track, max_senders=cfg.max_senders)
        if args.recording:
            bridge.replay(read_recording(args.recording), realtime=not args.fast)
        else:
            bridge.follow(args.connect, curve=curve)
    except (ConfigError, RecordingError, SecurityError) as e:
        print(f"vmc: {e}", file=sys.stderr)
        return 2
    print(f"vmc: {bridge.sent} bundles sent to {len(bridge.senders)} receiver(s), {bridge.skipped} skipped")
    return 0


if __name__ == "__main__":
    parser = argparse.ArgumentParser(prog="python -m realtime.outputs.vmc", description=__doc__.splitlines()[0])
    add_arguments(parser)
    sys.exit(run(parser.parse_args()))
