"""BlazePose's person detector: SSD anchors, box/keypoint regression, weighted NMS.

The network (MediaPipe ``pose_detection``) outputs raw regressions for 2254 fixed anchors; turning
them into people is the caller's job (MediaPipe does it in graph calculators, not in the model), so
the anchor layout and decoding below follow MediaPipe's published pose-detection graph options.
Each detection is a face box plus four alignment keypoints: the mid-hip centre, a point whose
distance from it is the radius of a circle around the full body, the mid-shoulder centre and a
point sizing the upper body. The person box comes from the full-body circle.
"""
from __future__ import annotations

from dataclasses import dataclass
from functools import lru_cache

import numpy as np

from realtime.boxes import iou_matrix
from realtime.pose2d.detection.base import Detection, PersonDetector

INPUT_SIZE = 224
#: SsdAnchorsCalculatorOptions of MediaPipe's pose detection graph.
STRIDES = (8, 16, 32, 32, 32)
MIN_SCALE, MAX_SCALE = 0.1484375, 0.75
NUM_KEYPOINTS = 4
#: Weighted NMS merges detections overlapping more than this (intersection over union).
NMS_IOU = 0.3
#: MediaPipe's raw-score clipping before the sigmoid.
SCORE_CLIP = 100.0


@dataclass(frozen=True)
class SsdDetection:
    """One raw detection of the network: a face box and four alignment keypoints."""

    score: float
    face: np.ndarray        # (4,) x0, y0, x1, y1
    keypoints: np.ndarray   # (4, 2) hip centre, full-body radius point, shoulder centre, upper-body point

    @property
    def person_box(self) -> np.ndarray:
        """The square around the full-body circle (centre: mid-hips, radius: distance to keypoint 1)."""
        centre = self.keypoints[0]
        radius = float(np.linalg.norm(self.keypoints[1] - centre))
        return np.concatenate([centre - radius, centre + radius])


@lru_cache(maxsize=1)
def anchors() -> np.ndarray:
    """``(2254, 2)`` anchor centres (x, y) in [0, 1] of the 224x224 input; all anchors have size 1.

    Two anchors per location per layer (aspect ratio 1 and the interpolated scale), layers with the
    same stride sharing one feature map, ordered layer group -> row -> column -> anchor.
    """
    centres = []
    layer = 0
    while layer < len(STRIDES):
        stride = STRIDES[layer]
        same = sum(1 for s in STRIDES[layer:] if s == stride)
        per_location = 2 * same
        side = int(np.ceil(INPUT_SIZE / stride))
        ys, xs = np.meshgrid((np.arange(side) + 0.5) / side, (np.arange(side) + 0.5) / side, indexing="ij")
        grid = np.stack([xs.ravel(), ys.ravel()], axis=1)
        centres.append(np.repeat(grid, per_location, axis=0))
        layer += same
    return np.concatenate(centres).astype(np.float32)


def decode(raw_boxes: np.ndarray, raw_scores: np.ndarray, min_score: float) -> list[SsdDetection]:
    """Raw outputs of one image (``(2254, 12)``, ``(2254, 1)``) -> detections in input pixels, before NMS."""
    logits = np.clip(raw_scores.reshape(-1).astype(np.float64), -SCORE_CLIP, SCORE_CLIP)
    scores = 1.0 / (1.0 + np.exp(-logits))
    keep = np.nonzero(scores >= min_score)[0]
    a = anchors()[keep] * INPUT_SIZE
    raw = raw_boxes.reshape(-1, 4 + 2 * NUM_KEYPOINTS)[keep].astype(np.float64)
    centre = raw[:, 0:2] + a
    half = raw[:, 2:4] / 2.0
    faces = np.concatenate([centre - half, centre + half], axis=1)
    points = raw[:, 4:].reshape(-1, NUM_KEYPOINTS, 2) + a[:, None, :]
    return [SsdDetection(float(scores[k]), faces[i], points[i]) for i, k in enumerate(keep)]


def weighted_nms(detections: list[SsdDetection], threshold: float = NMS_IOU) -> list[SsdDetection]:
    """MediaPipe's WEIGHTED non-maximum suppression: each kept detection is the score-weighted mean
    of the detections it suppresses (steadier boxes than plain NMS), with the best one's score."""
    remaining = sorted(detections, key=lambda d: -d.score)
    kept = []
    while remaining:
        best = remaining[0]
        overlap = np.nan_to_num(iou_matrix(best.face, np.stack([d.face for d in remaining]))[0])
        overlap[0] = 1.0        # the best leads its group, even with a degenerate (zero-area) face box
        group = [d for d, o in zip(remaining, overlap) if o > threshold]
        remaining = [d for d, o in zip(remaining, overlap) if o <= threshold]
        w = np.array([d.score for d in group])[:, None]
        face = (np.stack([d.face for d in group]) * w).sum(0) / w.sum()
        points = (np.stack([d.keypoints for d in group]) * w[:, :, None]).sum(0) / w.sum()
        kept.append(SsdDetection(best.score, face, points))
    return kept


class BlazePoseDetector(PersonDetector):
    """MediaPipe's pose detector: made for one person near the camera (it finds faces first), so it
    misses people in multi-person photos and wide shots; kept as an option (``detector =
    "blazepose-detector"``). Its person box is the square around the full-body circle over
    ``spec.box_scale`` (the median ratio of its diameter to the keypoint box's longer side, 1.3)."""

    def decode(self, outputs: dict[str, np.ndarray], n: int) -> list[list[Detection]]:
        raw_boxes, raw_scores = _outputs(outputs)
        found = []
        for boxes, scores in zip(raw_boxes, raw_scores):
            found.append([_detection(d, self.spec.box_scale) for d in weighted_nms(decode(boxes, scores, self.min_score))])
        return found

    def suppress(self, detections: list[Detection]) -> list[Detection]:
        """Weighted NMS on the face boxes (kept in ``keypoints``' first two rows), as MediaPipe does."""
        return _weighted(detections, self.spec.box_scale)


def _detection(d: SsdDetection, box_scale: float) -> Detection:
    """The person box (of the size keypoint boxes have) centred on the full-body circle; the face box
    and the alignment points travel in ``keypoints`` (rows: face corners, then the four points)."""
    extent = d.person_box
    centre = d.keypoints[0]
    half = (extent[2:] - extent[:2]) / (2.0 * box_scale)
    points = np.concatenate([d.face.reshape(2, 2), d.keypoints])
    return Detection(d.score, np.concatenate([centre - half, centre + half]), centre.astype(np.float64), extent,
                     np.concatenate([points, np.ones((len(points), 1))], axis=1))


def _weighted(detections: list[Detection], box_scale: float) -> list[Detection]:
    """Weighted NMS (IoU of the face boxes) across regions, in image pixels."""
    if len(detections) < 2:
        return list(detections)
    ssd = [SsdDetection(d.score, d.keypoints[:2, :2].reshape(4), d.keypoints[2:, :2]) for d in detections]
    return [_detection(d, box_scale) for d in weighted_nms(ssd)]


def _outputs(out: dict[str, np.ndarray]) -> tuple[np.ndarray, np.ndarray]:
    """The regressions (last axis 12) and the scores (last axis 1), whatever the converter named them."""
    boxes = [v for v in out.values() if v.shape[-1] == 4 + 2 * NUM_KEYPOINTS]
    scores = [v for v in out.values() if v.shape[-1] == 1 and v.ndim == 3]
    if len(boxes) != 1 or len(scores) != 1:
        shapes = {k: v.shape for k, v in out.items()}
        raise ValueError(f"detector outputs are not (N, 2254, 12) and (N, 2254, 1): {shapes}")
    return boxes[0], scores[0]
