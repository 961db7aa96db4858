"""The camera a source is seen by, as far as lifting needs it: focal length and downward pitch.

The lifter works in the camera's *level* frame (x right, y up against gravity, z horizontal towards
the viewer, origin at the camera) under weak perspective; placing a person's root in metres needs the
focal length, and interpreting the image needs the pitch. Both may be unknown: the focal length then
defaults to 0.8 x the image width (a ~64 degree horizontal field of view, typical of webcams) and the
lifter searches a few pitches instead of using one.
"""
from __future__ import annotations

import math
from dataclasses import dataclass

#: Default focal length as a fraction of the image width when the camera is not calibrated.
DEFAULT_FOCAL_PER_WIDTH = 0.8


@dataclass(frozen=True)
class Camera:
    """What is known about one source's camera (None = unknown)."""

    focal_px: float | None = None
    pitch_deg: float | None = None

    def __post_init__(self) -> None:
        if self.focal_px is not None and not (math.isfinite(self.focal_px) and self.focal_px > 0):
            raise ValueError(f"camera focal_px: must be a positive number of pixels or None, got {self.focal_px!r}")
        if self.pitch_deg is not None and not (math.isfinite(self.pitch_deg) and -90 <= self.pitch_deg <= 90):
            raise ValueError(f"camera pitch_deg: must be in [-90, 90] degrees or None, got {self.pitch_deg!r}")

    def focal_for(self, width: int) -> float:
        """The focal length in pixels for an image ``width`` pixels wide."""
        return self.focal_px if self.focal_px is not None else DEFAULT_FOCAL_PER_WIDTH * width

    def level_root(self, u: float, v: float, scale: float, width: int, height: int,
                   pitch_deg: float) -> list[float]:
        """The pelvis in the camera's level frame, the frame the lifter's joints are in.

        Weak perspective puts the pelvis at depth ``focal / scale`` on the ray through its image
        position ``(u, v)`` (``scale``: the lifter's pixels per metre); turning those camera axes up by
        the pitch the lifter used (``pitch_deg``: this camera's, or the one its search chose) gives
        gravity-up y and horizontal z, so root and joints share one frame. Principal point: the
        image centre.
        """
        focal = self.focal_for(width)
        cx, cy = width / 2.0, height / 2.0
        x, y, z = (u - cx) / scale, -(v - cy) / scale, -focal / scale
        c, s = math.cos(math.radians(pitch_deg)), math.sin(math.radians(pitch_deg))
        return [x, y * c + z * s, -y * s + z * c]
