"""Real-time multi-person 3D human pose estimation as a streaming system.

Data flow: capture -> pose2d -> lifting -> tracking -> publish/record, with ``transport``
(sockets, wire schema) and ``config`` beside it.
"""
__version__ = "0.1.0"


def __getattr__(name: str):
    """``realtime.estimate`` and ``realtime.PoseEstimator3D`` (still images, ``realtime.photo``),
    ``realtime.estimate_video`` and ``realtime.VideoEstimator3D`` (video, ``realtime.video``),
    imported on first use so that ``import realtime`` stays light for the processes that need none."""
    if name in ("estimate", "PoseEstimator3D"):
        from realtime import photo

        return getattr(photo, name)
    if name in ("estimate_video", "VideoEstimator3D"):
        from realtime import video

        return getattr(video, name)
    raise AttributeError(f"module 'realtime' has no attribute {name!r}")
