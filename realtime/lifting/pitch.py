"""A static camera's pitch, estimated once from many people when it is not configured.

A fixed camera does not change its pitch from frame to frame, yet a lifter that searches elevations
picks one per person, and a single person often fits several (a lean reads as a tilt). Summed over
many people the evidence is clear: each person's best negative log posterior at every searched
elevation (``LiftResult.elevation_energy``), relative to their own best, is added up; once
``people`` people have been seen, the pitch is the minimum of a parabola through the lowest sum and
its two neighbours (clamped to the searched range). From then on the camera is lifted at that one
pitch: faster (one elevation instead of five) and as accurate as a known pitch.
"""
from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

#: People seen before the pitch is fixed.
DEFAULT_PEOPLE = 200
#: A person whose energies differ by more than this between elevations is capped, so one odd pose
#: cannot outvote many ordinary ones.
_CAP = 50.0


@dataclass
class PitchEstimator:
    """Accumulates per-elevation evidence of one camera; ``pitch_deg`` is None until enough people."""

    elevations_deg: tuple[float, ...]
    people: int = DEFAULT_PEOPLE
    seen: int = 0
    pitch_deg: float | None = None
    _sum: np.ndarray = field(init=False, repr=False)

    def __post_init__(self) -> None:
        if len(self.elevations_deg) < 3 or list(self.elevations_deg) != sorted(self.elevations_deg):
            raise ValueError(f"pitch estimation needs 3 or more increasing elevations, got {self.elevations_deg}")
        if self.people < 1:
            raise ValueError(f"pitch estimation: people must be >= 1, got {self.people}")
        self._sum = np.zeros(len(self.elevations_deg))

    def add(self, elevation_energy: np.ndarray) -> float | None:
        """Add people's (N,E) per-elevation energies (rows with a non-finite value are skipped);
        returns the pitch once it is fixed (it then stays)."""
        if self.pitch_deg is not None:
            return self.pitch_deg
        e = np.asarray(elevation_energy, np.float64).reshape(-1, len(self.elevations_deg))
        e = e[np.isfinite(e).all(1)]
        if len(e):
            self._sum += np.minimum(e - e.min(1, keepdims=True), _CAP).sum(0)
            self.seen += len(e)
        if self.seen >= self.people:
            self.pitch_deg = self.estimate()
        return self.pitch_deg

    def estimate(self) -> float:
        """The pitch from the evidence so far (a parabola through the best elevation and its neighbours)."""
        grid = np.asarray(self.elevations_deg)
        i = int(np.clip(np.argmin(self._sum), 1, len(grid) - 2))
        x, y = grid[i - 1 : i + 2], self._sum[i - 1 : i + 2]
        a, b, _ = np.polyfit(x, y, 2)
        best = grid[int(np.argmin(self._sum))]
        pitch = -b / (2 * a) if a > 0 else best
        return float(np.clip(pitch, grid[0], grid[-1]))
