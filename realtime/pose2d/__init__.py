"""Multi-person 2D pose: person detector, crops, batched keypoint model, belief-map decoding."""
from realtime.pose2d.estimator import Person2D, PoseEstimator2D
from realtime.pose2d.images import ImageError, load_image

__all__ = ["ImageError", "Person2D", "PoseEstimator2D", "load_image"]
