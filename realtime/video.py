"""Video in 3D in one process (VIDEO mode, like MediaPipe's): people followed, tracked and smoothed.

``realtime run`` does this as separate processes streaming to consumers; this is the same chain in
the caller's process, for a Python user with frames in hand (a file, their own camera loop, a
notebook):

* the 2D stage follows people between frames (``realtime.pose2d.VideoFollower``, ``[pose2d] model``:
  the video network, the detector's regions spread over frames);
* each person is lifted (``realtime.lifting.LiftingSetup``, the lifting workers' setup: an unknown
  camera pitch is searched and then estimated once for the video);
* the tracker gives confirmed people a stable ``track_id`` and the 3D joints of each track are
  smoothed (``realtime.tracking``, ``[tracking]`` and ``[filter]``), as the publisher does.

State belongs to one video: use one :class:`VideoEstimator3D` per video (or call :meth:`reset`),
and give each frame its time, which must not go backwards. Still images are ``realtime.estimate``.
"""
from __future__ import annotations

from pathlib import Path
from typing import Iterator

import numpy as np

from realtime.capture.source import timed_frames
from realtime.config import Config, load_config
from realtime.lifting import Camera, LiftingSetup
from realtime.pose2d import PoseEstimator2D, VideoFollower
from realtime.tracking import TrackFilter, Tracker, track_people
from realtime.transport.schema import Person


class VideoEstimator3D:
    """The people of one video's frames in 3D, with stable track ids; build once per video."""

    def __init__(self, config: Config | None = None, lifting: LiftingSetup | None = None,
                 offline: bool = False) -> None:
        """``config``: the whole configuration (None = the defaults); ``lifting``: one already loaded
        from its ``[lifting]`` (None = load it); ``offline``: the frames come from a file and each is
        read in turn, however long it takes (``[pose2d] file_detector_regions_per_frame``: people are
        found sooner); else they come live, from a camera the caller keeps up with (the detector's
        regions spread as ``realtime run`` spreads them)."""
        self.config = config if config is not None else load_config()
        self.lifting = lifting if lifting is not None else LiftingSetup.from_config(self.config.lifting)
        pose2d = self.config.pose2d.for_files() if offline else self.config.pose2d
        # with [pose2d] refine_3d the 2D stage's 3D feedback lifts each person already
        self.pose2d = PoseEstimator2D.create(config=pose2d,
                                             lifting=self.lifting if self.config.pose2d.refine_3d else None)
        self.camera = Camera(*self.config.camera_for(""))
        self.follower = VideoFollower(self.pose2d, cameras=[self.camera])
        self.tracker = Tracker(self.config.tracking)
        self.filter = TrackFilter(self.config.filter)
        self._video = 0

    def estimate(self, frame: np.ndarray, t_seconds: float) -> list[Person]:
        """The people of the video's next frame (a BGR array like OpenCV's) at time ``t_seconds``,
        best score first: ``keypoints2d``, ``confidence``, ``bbox``, ``score``; ``joints3d``,
        ``uncertainty`` and ``root`` when lifted (else None); ``track_id`` once the tracker has
        confirmed the person (``[tracking] confirm_frames``; -1 before), the same id from frame to
        frame, and then smoothed ``joints3d`` and ``root``. A frame too small to hold a person gives
        [] and leaves the state alone; a malformed one raises ``realtime.pose2d.ImageError``."""
        people = self.follower.estimate(frame)
        if self.pose2d.lifting is None:    # else the 2D stage's 3D feedback lifted them already
            h, w = np.asarray(frame).shape[:2]
            self.lifting.lift_people(people, self.camera, int(w), int(h), f"video{self._video}")
        track_people(self.tracker, self.filter, t_seconds, people)
        return people

    def reset(self) -> None:
        """Start a new video: nobody followed or tracked, the camera pitch estimated afresh."""
        self.follower.reset()
        self.tracker = Tracker(self.config.tracking)
        self.filter = TrackFilter(self.config.filter)
        self._video += 1

    def close(self) -> None:
        self.follower.close()
        self.pose2d.close()

    def __enter__(self) -> "VideoEstimator3D":
        return self

    def __exit__(self, *exc) -> None:
        self.close()


def estimate_video(path: str | Path, config: Config | None = None, limit: int = 0
                   ) -> Iterator[tuple[float, list[Person]]]:
    """Every frame of a video file, in order, as (time in seconds, people): :meth:`VideoEstimator3D.estimate`
    (``offline``) with the file's own timestamps, no frame dropped (as fast as this machine goes, where
    ``realtime run`` keeps up with a camera by dropping frames). ``limit``: at most this many frames
    (0 = all). A file OpenCV cannot open raises ``realtime.capture.SourceError``."""
    frames = timed_frames(path, limit)
    with VideoEstimator3D(config, offline=True) as video:
        for t, frame in frames:
            yield t, video.estimate(frame, t)
