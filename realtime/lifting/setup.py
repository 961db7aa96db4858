"""One lifting setup per process: the pose prior loaded once, and the lifters built on it, per camera.

Built from ``[lifting]`` by whoever needs 3D (the lifting workers, the 2D stage's 3D feedback, the
publisher's skeleton message) and handed to them, so a prior named in the config is the one every
part uses, and a prior that cannot be loaded is one error naming ``[lifting] prior`` at start-up,
never a silent fallback to the default. A lifter's views depend only on the camera's pitch, so the
feedback and the workers of one source use the same lifter: a person lifted for the feedback is not
lifted again (the lift travels with the person to the worker).
"""
from __future__ import annotations

from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, Sequence

import numpy as np

from realtime.config import LiftingConfig
from realtime.lifting.lifter import Lifter, LiftResult
from realtime.lifting.pitch import PitchEstimator
from realtime.lifting.prior import DEFAULT_PRIOR, PosePrior, PriorError
from realtime.skeleton import LSP14

if TYPE_CHECKING:
    from realtime.lifting.camera import Camera


@dataclass
class LiftingSetup:
    """The prior and a lifter per camera pitch (None = unknown: the lifter searches the elevations)."""

    prior: PosePrior
    config: LiftingConfig = field(default_factory=LiftingConfig)
    #: Where the prior came from (its file), for the processes' start-up events.
    source: str = "(given)"
    _lifters: dict[float | None, Lifter] = field(default_factory=dict, repr=False)
    _pitches: dict[str, PitchEstimator] = field(default_factory=dict, repr=False)

    @classmethod
    def from_config(cls, config: LiftingConfig) -> "LiftingSetup":
        """Load ``[lifting] prior`` (unset: the committed default); an unusable file is an error naming the key."""
        try:
            prior = PosePrior.load(config.prior)
        except PriorError as e:
            raise PriorError(f"[lifting] prior: {e}") from None
        return cls(prior, config, str(config.prior or DEFAULT_PRIOR))

    def lifter(self, pitch_deg: float | None = None) -> Lifter:
        """The lifter for a camera of this pitch (degrees down; None = unknown), built on first use."""
        key = None if pitch_deg is None else round(float(pitch_deg), 3)
        lifter = self._lifters.get(key)
        if lifter is None:
            c = self.config
            lifter = self._lifters[key] = Lifter(self.prior, rotations=c.rotations, camera_pitch_deg=key,
                                                 elevations_deg=tuple(c.elevations_deg),
                                                 min_visible_joints=c.min_visible_joints,
                                                 min_confidence=c.min_confidence,
                                                 roll_above_deg=c.roll_above_deg)
            lifter.lift(np.zeros((1, len(LSP14), 2)), np.ones((1, len(LSP14))))  # the first call is the slow one
        return lifter

    def lift_people(self, people: Sequence[Any], camera: "Camera", width: int, height: int,
                    source: str | None = None) -> None:
        """Each of one frame's ``people`` (``realtime.transport.schema.Person``) lifted, in place: 3D
        pose, per-joint uncertainty and root placed with ``camera`` in a ``width`` x ``height`` image.
        ``source``: the video they come from, whose pitch (when ``camera``'s is unknown) is estimated
        once from its people (:meth:`lift`); None = a still image, its pitch searched per person and
        nothing remembered."""
        if not people:
            return
        keypoints = np.stack([p.keypoints2d for p in people])
        confidence = np.stack([p.confidence for p in people])
        lens = self.lens(camera, width, height)
        out = (self.lifter(camera.pitch_deg).lift(keypoints, confidence, **lens) if source is None
               else self.lift(source, camera.pitch_deg, keypoints, confidence, **lens))
        out.assign(people, camera, width, height)

    def lens(self, camera: "Camera", width: int, height: int) -> dict[str, Any]:
        """``Lifter.lift``'s perspective arguments for ``camera`` in a ``width`` x ``height`` image
        (principal point: the centre), or none when ``[lifting] perspective`` is off."""
        if not self.config.perspective:
            return {}
        return {"focal_px": camera.focal_for(width), "centre_px": (width / 2.0, height / 2.0)}

    def lift(self, source: str, pitch_deg: float | None, keypoints2d: np.ndarray, confidence: np.ndarray,
             **lens: Any) -> LiftResult:
        """Lift one frame's people of a source. An unknown pitch is searched per person until
        ``[lifting] pitch_estimate_people`` people of the source have been seen, then estimated once
        (``realtime.lifting.pitch``) and used for the rest of the run (0 = always searched).
        ``lens``: the perspective arguments of ``Lifter.lift`` (:meth:`lens`)."""
        if pitch_deg is not None or self.config.pitch_estimate_people <= 0:
            return self.lifter(pitch_deg).lift(keypoints2d, confidence, **lens)
        estimator = self._pitches.get(source)
        if estimator is None:
            estimator = self._pitches[source] = PitchEstimator(tuple(sorted(self.config.elevations_deg)),
                                                               self.config.pitch_estimate_people)
        if estimator.pitch_deg is not None:
            return self.lifter(round(estimator.pitch_deg, 1)).lift(keypoints2d, confidence, **lens)
        out = self.lifter(None).lift(keypoints2d, confidence, **lens)
        estimator.add(out.elevation_energy)
        return out

    def estimated_pitch(self, source: str) -> float | None:
        """The pitch estimated for a source so far (None: not yet, or not estimated)."""
        estimator = self._pitches.get(source)
        return None if estimator is None else estimator.pitch_deg
