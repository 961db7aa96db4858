"""Mocap readers (BVH, CMU ASF/AMC) and the mocap dataset, as ``realtime.skeleton.JOINTS3D``."""
from __future__ import annotations

from .dataset import Clip, Dataset, clip_id, find_clips, load_clip, load_dataset, subject_split
from .errors import MocapError

__all__ = ["Clip", "Dataset", "MocapError", "clip_id", "find_clips", "load_clip", "load_dataset",
           "subject_split"]
