"""Recordings of real mocap people for the downstream tests (rig, VMC, export, Blender)."""
from __future__ import annotations

import functools
import math
import subprocess
import time
from pathlib import Path

import numpy as np

from realtime import skeleton as sk
from realtime.mocap import Clip, load_clip
from realtime.record import Recorder
from realtime.transport.schema import Frame, Person, Skeleton, frame_topic, pack

REPO_ROOT = Path(__file__).resolve().parent.parent

#: Two CMU clips (one BVH, one AMC), so the two people have different skeletons and motions.
CLIPS = ("bvh_cgspeed/02/02_01.bvh", "asf_amc/01/01_02.amc")


@functools.cache
def clip(path: Path) -> Clip:
    """A mocap clip, read once per test session (several test modules use the same two)."""
    return load_clip(path)


def mocap_people(mocap_dir: Path, fps: float = 30.0, frames: int = 45) -> list[np.ndarray]:
    """(frames, 16, 3) world joints of two people at ``fps``: the first as captured (the BVH clip),
    the second as the lifter sees it (the AMC clip projected into a camera and lifted back)."""
    captured = [clip(mocap_dir / c).subsample(fps).joints[:frames].astype(np.float64) for c in CLIPS]
    return [captured[0], lifted(captured[1])]


def lifted(joints: np.ndarray, pixels_per_metre: float = 250.0) -> np.ndarray:
    """Joints (T, 16, 3) seen by a level camera, lifted with the committed pose prior, and put back
    at the true pelvis: real lifter output (its bone lengths vary from frame to frame)."""
    from realtime.lifting import Lifter, PosePrior
    keypoints = np.stack([joints[:, :14, 0], -joints[:, :14, 1]], axis=-1) * pixels_per_metre + (640.0, 360.0)
    result = Lifter(PosePrior.load(), rotations=40, camera_pitch_deg=0.0).lift(keypoints, np.ones(keypoints.shape[:2]))
    assert result.valid.all(), "the lifter gave no pose for some frames"
    pelvis = sk.JOINTS3D.index("pelvis")
    return result.joints3d - result.joints3d[:, pelvis:pelvis + 1] + joints[:, pelvis:pelvis + 1]


def write_recording(path: Path, people: list[np.ndarray], fps: float = 30.0, source: str = "cam0",
                    track_ids: tuple[int, ...] = (3, 7), t0: float = 1.7e9) -> Path:
    """A recording as the runtime writes it: skeleton message, then one frame per time step."""
    pelvis = sk.JOINTS3D.index("pelvis")
    with Recorder(path) as rec:
        rec.write("skeleton", int(t0 * 1e9), pack(Skeleton()))
        for i in range(len(people[0])):
            t = t0 + i / fps
            persons = [Person(track_id=tid, score=0.9, keypoints2d=np.zeros((14, 2)), confidence=np.ones(14),
                              joints3d=joints[i] - joints[i, pelvis], uncertainty=None,
                              root=joints[i, pelvis] + (1.5 * k, 0.0, -3.0), bbox=(0.0, 0.0, 1.0, 1.0))
                       for k, (tid, joints) in enumerate(zip(track_ids, people))]
            frame = Frame(source=source, seq=i, t_capture=t, t_publish=t + 0.05, people=persons)
            rec.write(frame_topic(source).decode(), int(math.floor(t * 1e9)), pack(frame))
    return path


def world_joints(frame: Frame, track: int) -> np.ndarray:
    p = next(p for p in frame.people if p.track_id == track)
    return p.joints3d + p.root


def fixed_lengths(joints: np.ndarray) -> np.ndarray:
    """Joints (T, 16, 3) with every bone rescaled to its frame-0 length, directions kept.

    Mocap bone lengths drift a little (mid-shoulder thorax, clavicles); a rig has fixed ones.
    """
    out = np.array(joints, dtype=np.float64)
    lengths = {i: np.linalg.norm(joints[0, i] - joints[0, p]) for i, p in sk.BONES3D}
    for i in _parent_first():
        p = sk.PARENT_INDEX3D[i]
        d = joints[:, i] - joints[:, p]
        out[:, i] = out[:, p] + lengths[i] * d / np.linalg.norm(d, axis=-1, keepdims=True)
    return out


def _parent_first() -> list[int]:
    order, todo = [], [i for i, p in enumerate(sk.PARENT_INDEX3D) if p >= 0]
    done = {sk.PARENT_INDEX3D.index(-1)}
    while todo:
        for i in list(todo):
            if sk.PARENT_INDEX3D[i] in done:
                order.append(i)
                done.add(i)
                todo.remove(i)
    return order


def wait_for(path: Path, proc: subprocess.Popen, timeout_s: float, action=None) -> None:
    """Until ``path`` exists (a Blender script's signal file), ``proc`` ends or ``timeout_s`` passes,
    calling ``action`` meanwhile (e.g. publishing until the script has subscribed)."""
    deadline = time.monotonic() + timeout_s
    while not path.exists():
        if proc.poll() is not None or time.monotonic() > deadline:
            return
        if action:
            action()
        time.sleep(0.05)


def cut_and_bad_recordings(recording: Path, folder: Path) -> tuple[Path, Path]:
    """A copy of ``recording`` cut as a killed recorder leaves it (complete chunks, then a partial
    one), and a file that is not a recording: what the Blender importer must cope with."""
    from realtime.record import read_recording

    cut = folder / "cut.mcap"
    with Recorder(cut) as rec:
        for topic, log_time, message in read_recording(recording):
            rec.write(topic, log_time, pack(message))
            rec.flush()
    cut.write_bytes(cut.read_bytes()[: int(cut.stat().st_size * 0.6)])
    not_mcap = folder / "notes.mcap"
    not_mcap.write_text("not a recording\n")
    return cut, not_mcap

