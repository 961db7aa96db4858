"""Mocap clips as JOINTS3D positions, and the CMU dataset split by subject.

A clip is named ``<subject>_<trial>`` (CMU's own naming, e.g. ``02_01.amc``, ``113_25.bvh``); clips of
other sources are split by the performer their name or folder gives (:func:`clip_id`).
The same (subject, trial) may exist as AMC and as BVH: the AMC (CMU's native recording) is kept.
"""
from __future__ import annotations

import csv
import dataclasses
import functools
import hashlib
import logging
import os
import re
import tempfile
import zlib
from dataclasses import dataclass
from pathlib import Path
from typing import Iterable

import numpy as np

from realtime.config import engines_root
from realtime.skeleton import JOINTS3D

from .asf_amc import AsfSkeleton, read_amc, read_asf
from .bvh import BvhFile, parse_bvh
from .errors import MocapError
from .joints import CMU, Convention, convention_of, generic_convention, to_joints3d

log = logging.getLogger(__name__)

#: CMU records at 120 fps; AMC files do not state their rate.
AMC_FPS = 120.0

_NAME = re.compile(r"^(\d+)_(\d+)$")
#: A performer named inside another file name: LAFAN1's ``walk1_subject5``, Human3.6M's ``S9``.
_PERFORMER = re.compile(r"(?<![a-z0-9])(?:subject|subj|actor|performer|s)_?\d+(?![0-9])", re.IGNORECASE)

#: A clip whose root (pelvis) moves faster than this (m/s) from one frame to the next is broken, not
#: fast: sprinters peak near 12 m/s. Two cgspeed conversions of the shared CMU set (07_12 "brisk
#: walk", 09_10 "run") jump 2.4-2.6 m in one frame after their first frames (290-320 m/s), and from
#: there swing the legs sideways, 1.1-1.7 m apart across the hips while walking or running, with
#: the pelvis near the floor: poses no body makes, which would teach the prior (and score the
#: lifter against) nonsense. A tracking gap that holds the last pose and then catches up (01_07:
#: 0.2 m in a frame, 24 m/s) stays.
MAX_ROOT_SPEED = 50.0


@dataclass(frozen=True)
class Clip:
    """One mocap clip as 3D joints (see ``realtime.skeleton.JOINTS3D``)."""

    path: Path
    subject: str
    trial: str
    fps: float
    joints: np.ndarray  # (T, 16, 3) float32, metres, y up, JOINTS3D order, world frame as recorded
    convention: str     # the source skeleton convention (realtime.mocap.joints)
    #: CMU's description of the clip ("walk", "run/jog", ...) when load_dataset found clip_index.csv.
    description: str = ""

    @property
    def frames(self) -> int:
        return len(self.joints)

    def subsample(self, fps: float) -> Clip:
        """Every n-th frame, n = round(self.fps / fps) (at least 1), so the rate is about ``fps``."""
        if not fps > 0:
            raise ValueError(f"fps must be > 0, not {fps!r}")
        step = max(1, round(self.fps / fps))
        return dataclasses.replace(self, joints=self.joints[::step], fps=self.fps / step)


def clip_id(path: str | Path) -> tuple[str, str]:
    """(subject, trial) from a CMU file name such as ``02_01.bvh``. Other names (``walk1_subject5.bvh``,
    ``S3/dance.bvh``) take the subject from a ``subject<N>`` / ``S<N>`` / ``actor<N>`` part of the name,
    else from the clip's folder, and the whole name as the trial: clips are split by subject, and one
    performer's clips are usually named or filed together."""
    path = Path(path)
    match = _NAME.match(path.stem)
    if match is not None:
        return match.group(1), match.group(2)
    named = _PERFORMER.search(path.stem)
    if named is not None:
        return named.group(0), path.stem
    folder = path.parent.name
    if not folder:
        raise MocapError(path, "no subject: name the file <subject>_<trial> (e.g. 02_01.bvh) or put it in a folder")
    return folder, path.stem


def load_clip(path: str | Path) -> Clip:
    """Read a .bvh, or a .amc with its subject's .asf from the same folder, as JOINTS3D."""
    path = Path(path)
    subject, trial = clip_id(path)
    suffix = path.suffix.lower()
    if suffix == ".bvh":
        bvh = parse_bvh(path)
        convention = _convention(path, bvh)
        motion = convention.repair(bvh).motion()
    elif suffix == ".amc":
        convention = CMU
        motion = read_amc(path, _asf_for(path), fps=AMC_FPS)
    else:
        raise MocapError(path, f"not a mocap file ({suffix or 'no suffix'}; expected .bvh or .amc)")
    missing = convention.missing(motion.names)
    if missing:
        raise MocapError(path, f"{convention.name} skeleton lacks {', '.join(missing)}")
    joints = to_joints3d(motion, convention)[convention.rest_frames:]
    if len(joints) == 0:
        raise MocapError(path, "no motion frames")
    if not np.isfinite(joints).all():
        bad = int(np.flatnonzero(~np.isfinite(joints).all(axis=(1, 2)))[0])
        raise MocapError(path, f"frame {bad + 1 + convention.rest_frames} has non-finite values")
    _check_root_speed(path, joints, motion.fps, convention.rest_frames)
    return Clip(path=path, subject=subject, trial=trial, fps=motion.fps, joints=joints,
                convention=convention.name)


def _check_root_speed(path: Path, joints: np.ndarray, fps: float, first: int) -> None:
    """Raise MocapError when the root jumps faster than ``MAX_ROOT_SPEED`` between two frames."""
    root = joints[:, JOINTS3D.index("pelvis")].astype(np.float64)
    speed = np.linalg.norm(np.diff(root, axis=0), axis=-1) * fps
    if len(speed) and speed.max() > MAX_ROOT_SPEED:
        k = int(np.argmax(speed))
        raise MocapError(path, f"the root jumps {speed[k] / fps:.2f} m between frames {k + 1 + first} and "
                               f"{k + 2 + first} ({speed[k]:.0f} m/s, over {MAX_ROOT_SPEED:.0f}): a broken "
                               "recording or conversion")


def _convention(path: Path, bvh: BvhFile) -> Convention:
    """CMU's conventions by their joint names, else the generic one (the usual rig names)."""
    convention = convention_of(bvh.names)
    if convention is not None:
        return convention
    try:
        return generic_convention(bvh.names, bvh.parents, bvh.offsets, bvh.ends)
    except ValueError as e:
        raise MocapError(path, f"unknown skeleton convention (joints {', '.join(bvh.names[:8])}...): {e}") from None


def _asf_for(amc: Path) -> AsfSkeleton:
    subject, _ = clip_id(amc)
    own = amc.with_name(f"{subject}.asf")
    if own.exists():
        return _read_asf_cached(own)
    found = sorted(amc.parent.glob("*.asf"))
    if len(found) != 1:
        raise MocapError(amc, f"needs its skeleton {own.name} in the same folder")
    return _read_asf_cached(found[0])


@functools.lru_cache(maxsize=64)
def _read_asf_cached(path: Path) -> AsfSkeleton:
    return read_asf(path)


# -- the cache --------------------------------------------------------------------------------

#: Loading all of ../shared/data/mocap/cmu parses ~140k frames (about 15 s of CPU), so
#: load_dataset keeps each clip's full-rate joints here (gitignored).
DEFAULT_CACHE_DIR = engines_root() / "cache" / "mocap"


@functools.lru_cache(maxsize=1)
def _code_version() -> str:
    """Hash of the readers and joint tables: a change to either invalidates cached clips."""
    digest = hashlib.sha1()
    for name in ("asf_amc.py", "bvh.py", "dataset.py", "joints.py", "kinematics.py"):
        digest.update((Path(__file__).parent / name).read_bytes())
    return digest.hexdigest()[:12]


def _cache_file(cache_dir: Path, path: Path) -> Path:
    """``<name>-<file id>-<version>.npz``: the file id follows symlinks, the version covers the
    file's size and mtime and the reader code."""
    real = path.resolve()
    stat = real.stat()
    file_id = hashlib.sha1(str(real).encode()).hexdigest()[:10]
    version = f"{stat.st_size}|{stat.st_mtime_ns}|{_code_version()}"
    version = hashlib.sha1(version.encode()).hexdigest()[:10]
    return cache_dir / f"{path.name}-{file_id}-{version}.npz"


def _load_cached(path: Path, cache_dir: Path | None) -> Clip:
    if cache_dir is None:
        return load_clip(path)
    file = _cache_file(cache_dir, path)
    if file.exists():
        try:
            with np.load(file) as data:
                subject, trial = clip_id(path)
                return Clip(path=path, subject=subject, trial=trial, fps=float(data["fps"]),
                            joints=data["joints"], convention=str(data["convention"]))
        except (OSError, ValueError, KeyError) as e:
            log.warning("ignoring unreadable cache file %s: %s", file, e)
    clip = load_clip(path)
    try:
        cache_dir.mkdir(parents=True, exist_ok=True)
        with tempfile.NamedTemporaryFile(dir=cache_dir, suffix=".npz", delete=False) as tmp:
            np.savez(tmp, joints=clip.joints, fps=clip.fps, convention=clip.convention)
        os.replace(tmp.name, file)
        for stale in cache_dir.glob(file.name.rsplit("-", 1)[0] + "-*.npz"):
            if stale != file:
                stale.unlink(missing_ok=True)
    except OSError as e:
        log.warning("cannot cache %s in %s: %s", path.name, cache_dir, e)
    return clip


# -- the dataset ------------------------------------------------------------------------------

#: The fixed split of the CMU subjects in ../shared: 70/15/15 % of the frames at 10 fps
#: (``tools/bench_mocap.py`` prints it). Validation has walking on uneven terrain, walks and
#: jump-and-grab; test has runs, jumps, walks and five subjects of the walking set (the tracking
#: benchmark animates walking people); training keeps the most varied subjects (01, 02). Subjects not listed fall back to a hash of their number.
SPLIT: dict[str, str] = {
    **dict.fromkeys(("03", "05", "08", "10", "12", "14", "105"), "val"),
    **dict.fromkeys(("09", "13", "16", "43", "55", "113", "133", "136"), "test"),
    **dict.fromkeys(("01", "02", "06", "07", "26", "27", "29", "32", "35", "38", "39", "45", "46",
                     "47", "49", "93", "114"), "train"),
}


def subject_key(subject: str) -> str:
    """A CMU subject number as the split writes it ("7", "07" and "007" are "07")."""
    return subject.lstrip("0").zfill(2)


def subject_split(subject: str) -> str:
    """The subject's set, "train", "val" or "test": fixed, by subject, never by frame."""
    subject = subject_key(subject)
    if subject in SPLIT:
        return SPLIT[subject]
    bucket = zlib.crc32(subject.encode()) % 100
    return "train" if bucket < 70 else "val" if bucket < 85 else "test"


@dataclass
class Dataset:
    """Clips loaded from a folder tree; bad files are in ``skipped`` with the reason."""

    clips: list[Clip]
    skipped: list[tuple[Path, str]]

    @property
    def frames(self) -> int:
        return sum(c.frames for c in self.clips)

    def joints(self) -> np.ndarray:
        """All frames of all clips, (N, 16, 3) float32."""
        if not self.clips:
            return np.zeros((0, len(JOINTS3D), 3), np.float32)
        return np.concatenate([c.joints for c in self.clips])

    @property
    def subjects(self) -> list[str]:
        return sorted({c.subject for c in self.clips}, key=lambda s: (len(s), s))


def clip_descriptions(root: str | Path) -> dict[str, str]:
    """``{"02_01": "walk", ...}`` from CMU's ``clip_index.csv`` in ``root`` (empty when absent)."""
    index = Path(root) / "clip_index.csv"
    if not index.exists():
        return {}
    with open(index, newline="", encoding="utf-8", errors="replace") as f:
        return {row[0].strip(): row[1].strip() for row in csv.reader(f)
                if len(row) > 1 and _NAME.match(row[0].strip())}


def find_clips(root: str | Path) -> list[Path]:
    """Every .amc and .bvh under ``root``, one per (subject, trial), AMC preferred over BVH."""
    root = Path(root)
    chosen: dict[tuple[str, str], Path] = {}
    for path in sorted(root.rglob("*.amc")) + sorted(root.rglob("*.bvh")):
        try:
            key = clip_id(path)
        except MocapError:
            key = (path.stem, str(path))
        chosen.setdefault(key, path)
    return sorted(chosen.values(), key=lambda p: (p.stem, p.suffix))


def load_dataset(root: str | Path, fps: float | None = 10.0, subjects: Iterable[str] | None = None,
                 split: str | None = None, progress: bool = True,
                 cache_dir: str | Path | None = DEFAULT_CACHE_DIR) -> Dataset:
    """Load every clip under ``root`` subsampled to about ``fps`` (None = every frame).

    ``subjects`` and ``split`` ("train" | "val" | "test") filter by subject. A clip that cannot
    be read is logged, listed in ``Dataset.skipped`` and does not stop the load. Clips are
    cached in ``cache_dir`` (None = no cache), keyed by file, size, mtime and reader code.
    """
    from tqdm import tqdm

    root = Path(root)
    if not root.is_dir():
        raise MocapError(root, "mocap folder not found")
    if fps is not None and not fps > 0:
        raise ValueError(f"fps must be > 0 or None, not {fps!r}")
    if split not in (None, "train", "val", "test"):
        raise ValueError(f"split must be 'train', 'val', 'test' or None, not {split!r}")
    wanted = None if subjects is None else {subject_key(s) for s in subjects}
    paths = []
    for path in find_clips(root):
        try:
            subject, _ = clip_id(path)
        except MocapError:
            paths.append(path)  # reported as skipped below
            continue
        subject = subject_key(subject)
        if (wanted is None or subject in wanted) and (split is None or subject_split(subject) == split):
            paths.append(path)
    descriptions = clip_descriptions(root)
    clips: list[Clip] = []
    skipped: list[tuple[Path, str]] = []
    for path in tqdm(paths, desc="mocap", unit="clip", disable=not progress):
        try:
            clip = _load_cached(path, None if cache_dir is None else Path(cache_dir))
        except (MocapError, ValueError, IndexError, KeyError) as e:
            reason = str(e) if isinstance(e, MocapError) else f"{path.name}: {type(e).__name__}: {e}"
            log.warning("skipped %s", reason)
            skipped.append((path, reason))
            continue
        clip = dataclasses.replace(clip, description=descriptions.get(path.stem, ""))
        clips.append(clip if fps is None else clip.subsample(fps))
    return Dataset(clips=clips, skipped=skipped)
