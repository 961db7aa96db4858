"""CMU ASF (skeleton) + AMC (motion) reader with forward kinematics over all frames at once.

No maintained PyPI package reads Acclaim files (``amc-parser`` is an unpackaged script that
builds per-frame Python objects), so this is our own. Acclaim semantics, per bone b:

* ``axis ax ay az XYZ`` gives C_b, the bone's local frame in the world rest pose, rotating
  about x first, then y, then z (fixed axes): C = Rz @ Ry @ Rx;
* the AMC values of ``dof rx ry rz`` give the motion rotation M_b(t), composed the same way;
* ``G_b = G_parent @ C_b @ M_b @ C_b^-1`` and the bone ends at ``start + G_b @ (direction * length)``;
  its children start where it ends.

The root's motion uses the root ``order`` line (translation + rotation channels) and ``axis``.
Lengths are in the ASF ``:units length`` unit: CMU's FAQ gives metres = value * 0.0254 / length
(length 0.45 -> 0.056444 m, inches scaled by 1/0.45).
"""
from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from .errors import MocapError, parse_numbers, read_lines
from .kinematics import Motion, euler_matrices, forward_kinematics


@dataclass
class _Bone:
    name: str
    line: int
    direction: np.ndarray = field(default_factory=lambda: np.zeros(3))
    length: float = 0.0
    axis: np.ndarray = field(default_factory=lambda: np.zeros(3))
    axis_order: str = "XYZ"
    dof: tuple[str, ...] = ()


@dataclass(frozen=True)
class AsfSkeleton:
    """An ASF skeleton: bones in topological order (root first) and the file's units."""

    names: tuple[str, ...]
    parents: tuple[int, ...]
    vectors: np.ndarray         # (B, 3) direction * length, world rest frame, file units
    frames: tuple[np.ndarray, ...]  # C_b per bone (3, 3)
    axis_orders: tuple[str, ...]
    dofs: tuple[tuple[str, ...], ...]  # root: e.g. ("tx","ty","tz","rx","ry","rz")
    root_position: np.ndarray
    metres_per_unit: float
    degrees: bool


def _acclaim_matrix(angles: np.ndarray, order: str) -> np.ndarray:
    """Acclaim rotation(s): rotate about order[0] first (fixed axes) = intrinsic reversed order."""
    angles = np.atleast_2d(angles)
    return euler_matrices(angles[:, ::-1], order[::-1].upper())


def _axis_order(path: Path, line: int, token: str) -> str:
    if sorted(token.upper()) != ["X", "Y", "Z"]:
        raise MocapError(path, f"axis order {token!r} is not a permutation of XYZ", line)
    return token.upper()


def _dof(path: Path, line: int, tokens: list[str]) -> tuple[str, ...]:
    """Degrees of freedom (rx ry rz tx ty tz, and l for bone stretch, which is read and ignored)."""
    dof = tuple(t.lower() for t in tokens)
    bad = [d for d in dof if d not in ("rx", "ry", "rz", "tx", "ty", "tz", "l")]
    if bad:
        raise MocapError(path, f"unknown degree of freedom {bad[0]!r}", line)
    return dof


def _numbers(path: Path, line: int, tokens: list[str], count: int, what: str) -> np.ndarray:
    if len(tokens) < count:
        raise MocapError(path, f"{what} needs {count} values, got {len(tokens)}", line)
    return parse_numbers(path, line, tokens[:count], what)


def read_asf(path: str | Path) -> AsfSkeleton:
    path = Path(path)
    lines = read_lines(path)
    section = ""
    length_unit = 1.0
    degrees = True
    root_order: tuple[str, ...] = ()
    root_axis = "XYZ"
    root_position = np.zeros(3)
    root_orientation = np.zeros(3)
    bones: dict[str, _Bone] = {}
    bone: _Bone | None = None
    children: dict[str, list[str]] = {}
    hierarchy_line = 0
    for number, raw in enumerate(lines, start=1):
        tokens = raw.split()
        if not tokens or tokens[0].startswith("#"):
            continue
        key = tokens[0].lower()
        if key.startswith(":"):
            section = key
            if key == ":hierarchy":
                hierarchy_line = number
            continue
        if section == ":units":
            if key == "length":
                length_unit = float(_numbers(path, number, tokens[1:], 1, "length")[0])
            elif key == "angle":
                degrees = len(tokens) < 2 or tokens[1].lower().startswith("deg")
        elif section == ":root":
            if key == "order":
                root_order = _dof(path, number, tokens[1:])
            elif key == "axis" and len(tokens) > 1:
                root_axis = _axis_order(path, number, tokens[1])
            elif key == "position":
                root_position = _numbers(path, number, tokens[1:], 3, "position")
            elif key == "orientation":
                root_orientation = _numbers(path, number, tokens[1:], 3, "orientation")
        elif section == ":bonedata":
            if key == "begin":
                bone = _Bone(name="", line=number)
            elif bone is None:
                raise MocapError(path, f"{tokens[0]!r} outside begin/end", number)
            elif key == "end":
                if not bone.name:
                    raise MocapError(path, "bone without a name", bone.line)
                bones[bone.name] = bone
                bone = None
            elif key == "name" and len(tokens) > 1:
                bone.name = tokens[1]
            elif key == "direction":
                bone.direction = _numbers(path, number, tokens[1:], 3, "direction")
            elif key == "length":
                bone.length = float(_numbers(path, number, tokens[1:], 1, "length")[0])
            elif key == "axis":
                bone.axis = _numbers(path, number, tokens[1:], 3, "axis")
                bone.axis_order = _axis_order(path, number, tokens[4] if len(tokens) > 4 else "XYZ")
            elif key == "dof":
                bone.dof = _dof(path, number, tokens[1:])
        elif section == ":hierarchy" and key not in ("begin", "end"):
            for child in tokens[1:]:
                children.setdefault(tokens[0], []).append(child)
    if not bones:
        raise MocapError(path, "no :bonedata bones")
    if "root" not in children:
        raise MocapError(path, "no :hierarchy entry for root", hierarchy_line or None)

    names = ["root"]
    parents = [-1]
    queue = [0]
    while queue:
        parent = queue.pop(0)
        for child in children.get(names[parent], []):
            if child not in bones:
                raise MocapError(path, f"hierarchy names unknown bone {child!r}", hierarchy_line)
            if child in names:
                raise MocapError(path, f"bone {child!r} has two parents in the hierarchy", hierarchy_line)
            names.append(child)
            parents.append(parent)
            queue.append(len(names) - 1)
    rest = [bones[n] for n in names[1:]]
    to_degrees = 1.0 if degrees else 180.0 / np.pi
    return AsfSkeleton(
        names=tuple(names),
        parents=tuple(parents),
        vectors=np.array([np.zeros(3)] + [b.direction * b.length for b in rest]),
        frames=tuple([_acclaim_matrix(root_orientation * to_degrees, root_axis)[0]]
                     + [_acclaim_matrix(b.axis * to_degrees, b.axis_order)[0] for b in rest]),
        axis_orders=(root_axis,) + tuple(b.axis_order for b in rest),
        dofs=(root_order or ("tx", "ty", "tz", "rx", "ry", "rz"),) + tuple(b.dof for b in rest),
        root_position=root_position,
        metres_per_unit=0.0254 / length_unit,
        degrees=degrees,
    )


def read_amc(path: str | Path, skeleton: AsfSkeleton, fps: float = 120.0) -> Motion:
    """World positions of every bone start (its name) and end (``"<bone>/end"``), file units."""
    path = Path(path)
    lines = read_lines(path)
    degrees = skeleton.degrees
    first = 0
    for first, raw in enumerate(lines):
        head = raw.strip().upper()
        if head == ":RADIANS":
            degrees = False
        elif head == ":DEGREES":
            degrees = True
        elif head and not head.startswith((":", "#")):
            break
    else:
        raise MocapError(path, "no frames")
    values = _regular_frames(lines, first, skeleton)
    if values is None:
        values = _frames_line_by_line(path, lines, first, skeleton)
    finite = np.isfinite(values).all(axis=1)
    if not finite.all():
        raise MocapError(path, f"frame {int(np.argmin(finite)) + 1} has a non-finite value")
    return _kinematics(skeleton, values, degrees, fps)


def _columns(skeleton: AsfSkeleton) -> dict[str, tuple[int, int]]:
    """Bone name -> (first column, number of dof) in a frame's row of values."""
    columns: dict[str, tuple[int, int]] = {}
    start = 0
    for name, dof in zip(skeleton.names, skeleton.dofs):
        columns[name] = (start, len(dof))
        start += len(dof)
    return columns


def _regular_frames(lines: list[str], first: int, skeleton: AsfSkeleton) -> np.ndarray | None:
    """Fast path: every frame lists the same bones in the same order, all values parse.

    Returns None for anything else; the line-by-line parser then finds and names the problem.
    """
    body = [line for line in lines[first:] if line.strip()]
    try:
        per_frame = next(i for i, line in enumerate(body[1:], start=1) if line.strip().isdigit())
    except StopIteration:
        per_frame = len(body)
    if per_frame < 2 or len(body) % per_frame:
        return None
    frames = len(body) // per_frame
    parts = [line.split(None, 1) for line in body]
    names = [p[0] for p in parts[1:per_frame]]
    columns = _columns(skeleton)
    if any(n not in columns for n in names) or len(set(names)) != len(names):
        return None
    if [p[0] for p in parts] != [h for k in range(frames) for h in (str(k + 1), *names)]:
        return None
    rest = [p[1] if len(p) > 1 else "" for p in parts]
    widths = [columns[n][1] for n in names]
    if [len(r.split()) for r in rest] != [0, *widths] * frames:
        return None
    try:
        packed = np.array(" ".join(rest).split(), dtype=np.float64).reshape(frames, sum(widths))
    except ValueError:
        return None
    values = np.zeros((frames, sum(len(d) for d in skeleton.dofs)))
    at = 0
    for name, width in zip(names, widths):
        col = columns[name][0]
        values[:, col:col + width] = packed[:, at:at + width]
        at += width
    return values


def _frames_line_by_line(path: Path, lines: list[str], first: int, skeleton: AsfSkeleton
                         ) -> np.ndarray:
    """Slow path for irregular files; raises MocapError naming the first bad line."""
    columns = _columns(skeleton)
    width = sum(len(d) for d in skeleton.dofs)
    needed = {n for n, d in zip(skeleton.names, skeleton.dofs) if d}
    rows: list[np.ndarray] = []
    row: np.ndarray | None = None
    seen: set[str] = set()
    for number, raw in enumerate(lines[first:], start=first + 1):
        tokens = raw.split()
        if not tokens or tokens[0].startswith("#"):
            continue
        if len(tokens) == 1 and tokens[0].isdigit():
            if row is not None:
                rows.append(row)
            if int(tokens[0]) != len(rows) + 1:
                raise MocapError(path, f"expected frame {len(rows) + 1}, got {tokens[0]}", number)
            row = np.zeros(width)
            seen = set()
            continue
        if row is None:
            raise MocapError(path, f"expected a frame number, got {raw.strip()[:40]!r}", number)
        name = tokens[0]
        if name not in columns:
            raise MocapError(path, f"bone {name!r} is not in the ASF skeleton", number)
        col, count = columns[name]
        if len(tokens) - 1 != count:
            raise MocapError(path, f"{name}: expected {count} values, got {len(tokens) - 1}", number)
        if name in seen:
            raise MocapError(path, f"bone {name!r} twice in frame {len(rows) + 1}", number)
        seen.add(name)
        row[col:col + count] = _numbers(path, number, tokens[1:], count, name)
    if row is not None:
        if rows and seen < needed:
            raise MocapError(path, f"file ends inside frame {len(rows) + 1} "
                             f"(missing {', '.join(sorted(needed - seen))})", len(lines))
        rows.append(row)
    if not rows:
        raise MocapError(path, "no frames")
    return np.array(rows)


def _kinematics(skeleton: AsfSkeleton, values: np.ndarray, degrees: bool, fps: float) -> Motion:
    frames = len(values)
    rotations: list[np.ndarray | None] = []
    translations: dict[int, np.ndarray] = {}
    scale = 1.0 if degrees else 180.0 / np.pi
    columns = _columns(skeleton)
    for b, dof in enumerate(skeleton.dofs):
        col = columns[skeleton.names[b]][0]
        angles = np.zeros((frames, 3))
        moved = False
        for k, d in enumerate(dof):
            if d[0] == "r":
                angles[:, "xyz".index(d[1])] = values[:, col + k] * scale
                moved = True
            elif d[0] == "t":
                translations.setdefault(b, np.zeros((frames, 3)))[:, "xyz".index(d[1])] = values[:, col + k]
        c = skeleton.frames[b]
        if moved:
            order = skeleton.axis_orders[b]
            ordered = angles[:, ["XYZ".index(a) for a in order]]
            rotations.append(c @ _acclaim_matrix(ordered, order) @ c.T)
        else:
            rotations.append(None)
    # A bone's children start at its end: their offset is the parent's vector, in the parent's frame.
    offsets = np.array([skeleton.root_position if p < 0 else skeleton.vectors[p]
                        for p in skeleton.parents])
    ends = [(b, skeleton.vectors[b]) for b in range(1, len(skeleton.names))]
    positions = forward_kinematics(frames, list(skeleton.parents), offsets, rotations, translations, ends)
    names = skeleton.names + tuple(f"{n}/end" for n in skeleton.names[1:])
    return Motion(names=names, positions=positions, fps=fps, metres_per_unit=skeleton.metres_per_unit)
