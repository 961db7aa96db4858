"""Person detectors: one :class:`Detection` type whatever the network (``base.py``: regions, tiles,
batching, merging); MoveNet MultiPose (``multipose.py``), NanoDet and CenterNet (``boxes.py``) and
BlazePose's detector (``blazepose.py``) decode their own outputs."""
from __future__ import annotations

from typing import TYPE_CHECKING

from realtime.networks import REGISTRY
from realtime.pose2d.detection.base import Detection, PersonDetector, Prepared, box_detection, nms
from realtime.pose2d.detection.blazepose import BlazePoseDetector
from realtime.pose2d.detection.boxes import CenterNetDetector, NanoDetDetector
from realtime.pose2d.detection.multipose import MultiPoseDetector

if TYPE_CHECKING:
    from realtime.pose2d.backends import Backend

#: The detector class for each ``ModelSpec.decoder`` of a registry detector.
DETECTORS: dict[str, type[PersonDetector]] = {
    "blazepose_detector": BlazePoseDetector, "multipose": MultiPoseDetector, "nanodet": NanoDetDetector,
    "centernet": CenterNetDetector,
}


def create_detector(name: str, backend: "Backend", min_score: float | None = None, tiles: int = 1) -> PersonDetector:
    """The detector ``name`` (a registry detector) on a loaded backend."""
    spec = REGISTRY.get(name)
    if spec is None or spec.role != "detector":
        raise ValueError(f"unknown person detector {name!r} (known: "
                         f"{', '.join(n for n, s in REGISTRY.items() if s.role == 'detector')})")
    return DETECTORS[spec.decoder](backend, spec, min_score, tiles)


__all__ = ["DETECTORS", "Detection", "PersonDetector", "Prepared", "box_detection", "create_detector", "nms"]
