"""A recording as per-track joint sequences: what every export format is written from."""
from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from realtime import skeleton as sk
from realtime.record import RecordingError, RecordingReader
from realtime.transport.schema import Frame, Skeleton


class ExportError(ValueError):
    """The recording cannot be exported as asked; the message names the file, track or source."""


@dataclass
class Track:
    """One person's poses through a recording: capture times, sequence numbers, joints."""
    track_id: int
    source: str
    times: list[float] = field(default_factory=list)      # seconds since the recording's first frame
    seqs: list[int] = field(default_factory=list)
    joints: list[np.ndarray] = field(default_factory=list)  # (J, 3) camera level frame: root + root-relative joints


@dataclass
class Recording:
    joint_names: tuple[str, ...]
    skeleton: Skeleton | None
    tracks: dict[int, Track]
    frame_times: list[float]   # every frame of the exported source, seconds since the first
    skipped: int = 0           # messages the reader could not decode
    truncated: bool = False    # the file was cut short (a killed recorder); everything before the cut is used

    @property
    def frame_time(self) -> float:
        """Typical seconds between frames (median), 1/30 when there are too few frames to tell."""
        dt = np.diff(self.frame_times)
        dt = dt[dt > 0]
        return float(np.median(dt)) if len(dt) else 1.0 / 30.0


def progress(reader: RecordingReader, path: Path):
    """The reader's messages with a progress bar on a terminal (tqdm; silent otherwise)."""
    from tqdm import tqdm

    from realtime.record.reader import message_count

    return tqdm(reader, total=message_count(path), desc=f"reading {path.name}", unit="msg", disable=None,
                leave=False)


def load_tracks(path: str | Path, track: int | None = None, source: str | None = None) -> Recording:
    """Group a recording's people by track id (confirmed tracks with a 3D pose only)."""
    path = Path(path)
    try:
        reader = RecordingReader(path)
        messages = list(progress(reader, path))
    except RecordingError as e:
        raise ExportError(str(e)) from None
    frames = [m for _t, _l, m in messages if isinstance(m, Frame)]
    skeletons = [m for _t, _l, m in messages if isinstance(m, Skeleton)]
    if not frames:
        raise ExportError(f"{path}: the recording has no frames")
    sources = sorted({f.source for f in frames})
    if source is None:
        if len(sources) > 1:
            raise ExportError(f"{path}: frames from several sources ({', '.join(sources)}); choose one with --source")
        source = sources[0]
    elif source not in sources:
        raise ExportError(f"{path}: no frames from source {source!r} (sources: {', '.join(sources)})")
    frames = [f for f in frames if f.source == source]
    skeleton = skeletons[-1] if skeletons else None
    names = tuple(skeleton.joint_names) if skeleton else sk.JOINTS3D
    t0 = frames[0].t_capture
    tracks: dict[int, Track] = {}
    for f in frames:
        for p in f.people:
            if p.track_id < 0 or p.joints3d is None or (track is not None and p.track_id != track):
                continue
            if p.joints3d.shape != (len(names), 3):
                raise ExportError(f"{path}: frame {f.seq} track {p.track_id} has {p.joints3d.shape[0]} joints, "
                                  f"the skeleton names {len(names)}")
            t = tracks.setdefault(p.track_id, Track(p.track_id, source))
            t.times.append(f.t_capture - t0)
            t.seqs.append(f.seq)
            t.joints.append(p.joints3d + (0.0 if p.root is None else p.root))
    if track is not None and track not in tracks:
        seen = sorted({p.track_id for f in frames for p in f.people if p.track_id >= 0 and p.joints3d is not None})
        raise ExportError(f"{path}: no track {track} with 3D poses (tracks: {', '.join(map(str, seen)) or 'none'})")
    if not tracks:
        raise ExportError(f"{path}: no confirmed track with a 3D pose in {len(frames)} frames")
    return Recording(names, skeleton, tracks, [f.t_capture - t0 for f in frames], reader.skipped, reader.truncated)
