"""BVH reader: hierarchy, motion and forward kinematics for every frame at once.

Libraries evaluated on bvh_cgspeed/35/35_01.bvh (358 frames, 31 joints; tools/bench_mocap.py
measures ours): PyPI ``bvhio`` 1.5.4 takes 0.96 s to parse and 0.21 s for per-frame world
positions through its Python object hierarchy (about 3 ms a frame); PyPI ``bvh`` 0.3 parses
in 0.07 s but has no forward kinematics and reading every channel of every frame through it
took 7.7 s. Neither reads ASF/AMC. Thousands of frames per clip and ~150 clips need a
vectorised reader, so this one parses the motion block with one numpy conversion and runs
forward kinematics over all frames per joint (see ``kinematics``).

Each joint's channels are applied in the order the file declares them: the rotation channels
give the intrinsic Euler order (``Zrotation Xrotation Yrotation`` = Rz @ Rx @ Ry), position
channels add to the joint's OFFSET.
"""
from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np

from .errors import MocapError, parse_numbers, read_lines
from .kinematics import Motion, euler_matrices, forward_kinematics

_ROTATIONS = {"xrotation": "X", "yrotation": "Y", "zrotation": "Z"}
_POSITIONS = {"xposition": 0, "yposition": 1, "zposition": 2}


@dataclass(frozen=True)
class BvhFile:
    """A parsed BVH file: the joint tree (file order, parents first) and every frame's channels."""

    path: Path
    names: tuple[str, ...]
    parents: tuple[int, ...]
    offsets: np.ndarray                       # (J, 3) file units
    channels: tuple[tuple[str, ...], ...]     # per joint, lower case, in file order
    ends: tuple[tuple[int, np.ndarray], ...]  # End Sites: (joint, offset)
    values: np.ndarray                        # (T, sum of channels)
    fps: float

    def motion(self) -> Motion:
        """World positions of every joint and end site (``"<joint>/end"``), file units."""
        frames = len(self.values)
        rotations: list[np.ndarray | None] = []
        translations: dict[int, np.ndarray] = {}
        column = 0
        for j, declared in enumerate(self.channels):
            cols = range(column, column + len(declared))
            column += len(declared)
            rot = [(c, _ROTATIONS[d]) for c, d in zip(cols, declared) if d in _ROTATIONS]
            pos = [(c, _POSITIONS[d]) for c, d in zip(cols, declared) if d in _POSITIONS]
            rotations.append(euler_matrices(self.values[:, [c for c, _ in rot]],
                                            "".join(a for _, a in rot)) if rot else None)
            if pos:
                shift = np.zeros((frames, 3))
                for c, axis in pos:
                    shift[:, axis] = self.values[:, c]
                translations[j] = shift
        positions = forward_kinematics(frames, list(self.parents), self.offsets, rotations,
                                       translations, list(self.ends))
        end_names = tuple(f"{self.names[j]}/end" for j, _ in self.ends)
        return Motion(names=self.names + end_names, positions=positions, fps=self.fps)


def _fps(frame_time: float) -> float:
    """Frame rate from a rounded frame time (0.0083333 s -> 120.0, not 120.00048)."""
    fps = 1.0 / frame_time
    return float(round(fps)) if abs(fps - round(fps)) < 0.01 else fps


def read_bvh(path: str | Path) -> Motion:
    """Read a BVH file into world positions of every joint and end site (file units)."""
    return parse_bvh(path).motion()


def parse_bvh(path: str | Path) -> BvhFile:
    """Hierarchy and channel values of a BVH file, checked line by line."""
    path = Path(path)
    lines = read_lines(path)

    names: list[str] = []
    parents: list[int] = []
    offsets: list[np.ndarray] = []
    channels: list[list[str]] = []
    ends: list[tuple[int, np.ndarray]] = []
    stack: list[int] = []
    pending: str | None = None  # "joint" or "end" after ROOT/JOINT/End Site, before "{"
    in_end = False
    motion_line = None
    for number, raw in enumerate(lines, start=1):
        tokens = raw.split()
        if not tokens:
            continue
        word = tokens[0].upper()
        opens = word in ("ROOT", "JOINT", "END") and len(tokens) > 1 and tokens[-1] == "{"
        if opens:                      # "JOINT Spine {" : some exporters open the block on the same line
            tokens = tokens[:-1]
        if not names and word not in ("HIERARCHY", "ROOT"):
            raise MocapError(path, f"expected HIERARCHY or ROOT, got {raw.strip()[:40]!r}", number)
        if word == "HIERARCHY":
            continue
        if word in ("ROOT", "JOINT"):
            if len(tokens) < 2:
                raise MocapError(path, f"{word} without a name", number)
            if word == "JOINT" and not stack:
                raise MocapError(path, "JOINT outside ROOT", number)
            names.append(" ".join(tokens[1:]))   # 3ds Max Biped names have spaces: "Bip01 L Thigh"
            parents.append(stack[-1] if stack else -1)
            offsets.append(np.zeros(3))
            channels.append([])
            pending = "joint"
        elif word == "END":
            if not stack:
                raise MocapError(path, "End Site outside a joint", number)
            ends.append((stack[-1], np.zeros(3)))
            pending = "end"
        if word in ("ROOT", "JOINT", "END") and not opens:
            pass
        elif opens or word == "{":
            if pending is None:
                raise MocapError(path, "unexpected '{'", number)
            if pending == "joint":
                stack.append(len(names) - 1)
            else:
                in_end = True
            pending = None
        elif word == "}":
            if in_end:
                in_end = False
            elif stack:
                stack.pop()
            else:
                raise MocapError(path, "unbalanced '}'", number)
        elif word == "OFFSET":
            value = parse_numbers(path, number, tokens[1:4], "OFFSET")
            if len(value) != 3:
                raise MocapError(path, f"OFFSET needs 3 values, got {len(value)}", number)
            if in_end:
                ends[-1] = (ends[-1][0], value)
            elif stack:
                offsets[stack[-1]] = value
            else:
                raise MocapError(path, "OFFSET outside a joint", number)
        elif word == "CHANNELS":
            if not stack or in_end:
                raise MocapError(path, "CHANNELS outside a joint", number)
            try:
                count = int(tokens[1])
            except (IndexError, ValueError):
                raise MocapError(path, "CHANNELS needs a count", number) from None
            declared = [t.lower() for t in tokens[2:]]
            if len(declared) != count or any(c not in _ROTATIONS and c not in _POSITIONS
                                             for c in declared):
                raise MocapError(path, f"bad CHANNELS {' '.join(tokens[1:])!r}", number)
            channels[stack[-1]] = declared
        elif word == "MOTION":
            if stack or pending or in_end:
                raise MocapError(path, "MOTION before the hierarchy is closed", number)
            motion_line = number
            break
        else:
            raise MocapError(path, f"unexpected {tokens[0]!r} in HIERARCHY", number)
    if not names:
        raise MocapError(path, "no ROOT joint")
    if motion_line is None:
        raise MocapError(path, "file ends before MOTION", len(lines))

    frames, frame_time, first = _motion_header(path, lines, motion_line)
    width = sum(len(c) for c in channels)
    values = _motion_values(path, lines, first, frames, width)

    return BvhFile(path=path, names=tuple(names), parents=tuple(parents), offsets=np.array(offsets),
                   channels=tuple(tuple(c) for c in channels), ends=tuple(ends), values=values,
                   fps=_fps(frame_time))


def _motion_header(path: Path, lines: list[str], motion_line: int) -> tuple[int, float, int]:
    """(frames, frame time, index of the first frame line) from the two lines after MOTION."""
    header: dict[str, tuple[int, str]] = {}
    index = motion_line
    while len(header) < 2:
        if index >= len(lines):
            raise MocapError(path, "file ends inside the MOTION header", len(lines))
        text = lines[index].strip()
        index += 1
        if not text:
            continue
        key, _, value = text.partition(":")
        if key.strip().lower() == "frames":
            header["frames"] = (index, value.strip())
        elif key.strip().lower() == "frame time":
            header["time"] = (index, value.strip())
        else:
            raise MocapError(path, f"expected 'Frames:' and 'Frame Time:', got {text[:40]!r}", index)
    try:
        frames = int(header["frames"][1])
    except ValueError:
        raise MocapError(path, f"bad frame count {header['frames'][1]!r}", header["frames"][0]) from None
    try:
        frame_time = float(header["time"][1])
    except ValueError:
        raise MocapError(path, f"bad frame time {header['time'][1]!r}", header["time"][0]) from None
    if frames < 1 or not frame_time > 0:
        raise MocapError(path, f"need frames >= 1 and frame time > 0, got {frames} and {frame_time}",
                         header["frames"][0])
    return frames, frame_time, index


def _motion_values(path: Path, lines: list[str], first: int, frames: int, width: int) -> np.ndarray:
    """The (frames, width) channel values; a short, long or garbled line is named."""
    rows = [row.split() for row in lines[first:first + frames]]
    while rows and not rows[-1]:
        rows.pop()
    for offset, tokens in enumerate(rows):
        if len(tokens) != width:
            raise MocapError(path, f"expected {width} values, got {len(tokens)}", first + offset + 1)
    if len(rows) < frames:
        raise MocapError(path, f"file ends after {len(rows)} of {frames} frames", len(lines))
    try:
        values = np.array(rows, dtype=np.float64)
    except ValueError:
        for offset, tokens in enumerate(rows):
            parse_numbers(path, first + offset + 1, tokens, "frame")
        raise
    finite = np.isfinite(values).all(axis=1)
    if not finite.all():
        raise MocapError(path, "non-finite value", first + int(np.argmin(finite)) + 1)
    return values
