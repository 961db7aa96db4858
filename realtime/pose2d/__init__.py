"""Multi-person 2D pose: person detector, crops, batched keypoint network, belief-map decoding.

Still images: ``PoseEstimator2D.create(config=Pose2DConfig().for_photos()).estimate(image_or_path_or_list)``
(stateless; ``for_photos`` runs ``[pose2d] photo_model``, as ``realtime.estimate`` does). Video:
``VideoFollower(estimator, sources=N)`` follows people between frames, with ``[pose2d] model``.

Names are imported on first use, so ``realtime --help`` (which loads the ``estimate`` and ``models``
subcommands from this package) does not pay for OpenCV and the pipeline.
"""
from __future__ import annotations

import importlib
from typing import Any

_EXPORTS = {
    "PoseEstimator2D": "realtime.pose2d.estimator",
    "Person": "realtime.transport.schema",
    "Person2D": "realtime.pose2d.estimator",
    "VideoFollower": "realtime.pose2d.video",
    "ImageError": "realtime.pose2d.images",
    "load_image": "realtime.pose2d.images",
}

__all__ = sorted(_EXPORTS)


def __getattr__(name: str) -> Any:
    if name in _EXPORTS:
        return getattr(importlib.import_module(_EXPORTS[name]), name)
    raise AttributeError(f"module 'realtime.pose2d' has no attribute {name!r}")
