"""Still images in 3D in one call (IMAGE mode, like MediaPipe's): ``realtime.estimate("photo.jpg")``.

Every call stands alone: the whole detector runs on each image and nothing is carried over between
calls or between the images of one call, so a list of unrelated photos is safe. (Video, where people
are followed from frame to frame, is ``realtime.video`` in one process and the streaming runtime.)
The 2D people come from :class:`realtime.pose2d.PoseEstimator2D` with ``[pose2d] photo_model`` (no frame
rate to keep, so the more accurate network by default); each is then lifted with the
configured pose prior (``realtime.lifting.LiftingSetup``, the same as the runtime's lifting workers),
corrected for perspective and its root placed with the configured camera (``[source] focal_px``,
``[lifting] camera_pitch_deg``; unknown: a file's EXIF 35 mm equivalent focal length, else 0.8 x the
image width, and a pitch searched per person).
"""
from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING, Sequence

import numpy as np

from realtime.config import Config, load_config
from realtime.lifting import Camera, LiftingSetup
from realtime.pose2d import PoseEstimator2D
from realtime.pose2d.estimator import photo_batches
from realtime.pose2d.images import exif_focal_px
from realtime.transport.schema import Person

if TYPE_CHECKING:
    Image = np.ndarray | str | Path


class PoseEstimator3D:
    """2D people lifted to 3D, for still images; build once, call :meth:`estimate` many times."""

    def __init__(self, config: Config | None = None, lifting: LiftingSetup | None = None) -> None:
        """``config``: the whole configuration (``realtime.config.load_config``; None = the defaults);
        ``lifting``: one already loaded from its ``[lifting]`` (None = load it)."""
        self.config = config if config is not None else load_config()
        self.lifting = lifting if lifting is not None else LiftingSetup.from_config(self.config.lifting)
        # with [pose2d] refine_3d the 2D stage's 3D feedback lifts each person already
        self.pose2d = PoseEstimator2D.create(config=self.config.pose2d.for_photos(),
                                             lifting=self.lifting if self.config.pose2d.refine_3d else None)
        self.camera = Camera(*self.config.camera_for(""))

    def estimate(self, image: "Image | Sequence[Image]", camera: Camera | None = None
                 ) -> list[Person] | list[list[Person]]:
        """Every person in an image (a BGR array like OpenCV's, or a file path), best score first, each
        with ``keypoints2d``, ``confidence``, ``bbox``, ``score`` and, when the lifter could place
        them, ``joints3d`` (16 x 3 metres, pelvis-relative; ``realtime.skeleton.JOINTS3D``),
        ``uncertainty`` and ``root`` (metres, camera's level frame); else those three are None.
        Given a list of images, a list of results. A bad image raises ``realtime.pose2d.ImageError``.
        ``camera``: the one to lift with (default :meth:`camera_of` the image)."""
        if isinstance(image, (list, tuple)):
            return self.estimate_many(image, None if camera is None else [camera] * len(image))
        return self.estimate_many([image], [camera])[0]

    def estimate_many(self, images: "Sequence[Image]", cameras: "Sequence[Camera | None] | None" = None
                      ) -> list[list[Person]]:
        """:meth:`estimate` on several images, ``photo_batches`` of them at a time (a batch's people go
        through the 2D networks together; files are read batch by batch, so a long list never sits in
        memory); ``cameras``: one per image (None: :meth:`camera_of` it)."""
        cameras = [None] * len(images) if cameras is None else list(cameras)
        if len(cameras) != len(images):
            raise ValueError(f"cameras: {len(cameras)} for {len(images)} images (one per image, None = its own)")
        found: list[list[Person]] = []
        for frames in photo_batches(images):
            done = slice(len(found), len(found) + len(frames))
            found += self._estimate_batch(frames, [c or self.camera_of(im) for im, c in zip(images[done], cameras[done])])
        return found

    def camera_of(self, image: "Image") -> Camera:
        """The camera a photo is lifted with: the configured one; for a file with no focal length
        configured, the one its EXIF gives (``realtime.pose2d.images.exif_focal_px``; else 0.8 x the
        width)."""
        if self.camera.focal_px is None and isinstance(image, (str, Path)):
            focal = exif_focal_px(image)
            if focal is not None:
                return Camera(focal, self.camera.pitch_deg)
        return self.camera

    def _estimate_batch(self, frames: list, cameras: list[Camera]) -> list[list[Person]]:
        found = self.pose2d.estimate_many(frames)      # checked frames, one batch
        if self.pose2d.lifting is not None:   # lifted by the 2D stage's feedback, with the same lifter
            return found
        for frame, camera, people in zip(frames, cameras, found):   # no pitch estimate carried between photos
            self.lifting.lift_people(people, camera, int(frame.shape[1]), int(frame.shape[0]))
        return found

    def close(self) -> None:
        self.pose2d.close()

    def __enter__(self) -> "PoseEstimator3D":
        return self

    def __exit__(self, *exc) -> None:
        self.close()


_default: PoseEstimator3D | None = None


def estimate(image: "Image | Sequence[Image]", config: Config | None = None) -> list[Person] | list[list[Person]]:
    """:meth:`PoseEstimator3D.estimate` with the default configuration (its networks loaded on the
    first call and kept), or with ``config`` (loaded for this call only)."""
    global _default
    if config is not None:
        with PoseEstimator3D(config) as estimator:
            return estimator.estimate(image)
    if _default is None:
        _default = PoseEstimator3D()
    return _default.estimate(image)
