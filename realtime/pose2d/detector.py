"""Person detection with BlazePose's detector: SSD anchors, box/keypoint regression, weighted NMS.

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
from typing import TYPE_CHECKING

import numpy as np

from realtime.boxes import iou_matrix
from realtime.pose2d.crops import Crop, letterbox, warp
from realtime.pose2d.models import model_spec

if TYPE_CHECKING:
    from realtime.pose2d.backends import Backend

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
class Detection:
    """One person found by the detector, in image pixels."""

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


def decode(raw_boxes: np.ndarray, raw_scores: np.ndarray, min_score: float) -> list[Detection]:
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
    return [Detection(float(scores[k]), faces[i], points[i]) for i, k in enumerate(keep)]


def weighted_nms(detections: list[Detection], threshold: float = NMS_IOU) -> list[Detection]:
    """MediaPipe's WEIGHTED non-maximum suppression: each kept detection is the score-weighted mean
    of the detections it suppresses (steadier boxes than plain NMS), with the best one's score."""
    remaining = sorted(detections, key=lambda d: -d.score)
    kept = []
    while remaining:
        best = remaining[0]
        overlap = iou_matrix(best.face, np.stack([d.face for d in remaining]))[0]
        group = [d for d, o in zip(remaining, overlap) if o > threshold]
        remaining = [d for d, o in zip(remaining, overlap) if o <= threshold]
        w = np.array([d.score for d in group])[:, None]
        face = (np.stack([d.face for d in group]) * w).sum(0) / w.sum()
        points = (np.stack([d.keypoints for d in group]) * w[:, :, None]).sum(0) / w.sum()
        kept.append(Detection(best.score, face, points))
    return kept


def _to_image(d: Detection, crop: Crop) -> Detection:
    corners = crop.to_image(d.face.reshape(2, 2))
    return Detection(d.score, corners.reshape(4), crop.to_image(d.keypoints))


class PersonDetector:
    """Runs the detector network on a whole frame and, for large frames, on overlapping tiles.

    The network sees a 224x224 letterbox: in a wide shot (a shop camera, 1080p) people shrink to a
    few dozen pixels and are missed. Square tiles (``tiles`` rows of them, overlapping by a quarter)
    keep them large enough; the regions asked for go through the network as one batch and their
    detections are merged by weighted NMS in image coordinates. On video the caller may ask for a
    few regions per frame (``detect(image, regions)``) so that no frame pays for all of them.
    """

    def __init__(self, backend: "Backend", min_score: float = 0.5, tiles: int = 1):
        self.backend = backend
        self.min_score = min_score
        self.tiles = tiles

    def regions(self, width: int, height: int) -> list[Crop]:
        """The whole frame, then the tiles (none when a tile would be smaller than the network input)."""
        regions = [letterbox(width, height, INPUT_SIZE)]
        if self.tiles <= 1:
            return regions
        side = min(width, height) / (TILE_STEP * self.tiles + (1.0 - TILE_STEP))
        if side < INPUT_SIZE:
            return regions
        for cy in _tile_centres(height, side):
            for cx in _tile_centres(width, side):
                regions.append(Crop((cx, cy), side, INPUT_SIZE))
        return regions

    def detect(self, image_bgr: np.ndarray, regions: list[Crop] | None = None) -> list[Detection]:
        """People in ``regions`` of the image (default: all of ``self.regions``). A region as large as
        the frame is a whole-frame view; any other is a tile, whose people count only when whole in it."""
        if regions is None:
            regions = self.regions(image_bgr.shape[1], image_bgr.shape[0])
        return self.detect_many([image_bgr], [regions])[0]

    def detect_many(self, images_bgr: list[np.ndarray], regions: list[list[Crop]]) -> list[list[Detection]]:
        """:meth:`detect` on several images (one per source) with ONE network call for all their regions."""
        batches = [warp(image, r) for image, r in zip(images_bgr, regions) if r]
        if not batches:
            return [[] for _ in images_bgr]
        batch = np.concatenate(batches) if len(batches) > 1 else batches[0]
        lo, hi = model_spec("detector").input_range
        batch *= (hi - lo) / 255.0
        batch += lo
        raw_boxes, raw_scores = _outputs(self.backend.infer(batch))
        found, start = [], 0
        for image, r in zip(images_bgr, regions):
            end = start + len(r)
            found.append(self._people(raw_boxes[start:end], raw_scores[start:end], r, image.shape[:2]))
            start = end
        return found

    def _people(self, raw_boxes: np.ndarray, raw_scores: np.ndarray, regions: list[Crop],
                shape: tuple[int, int]) -> list[Detection]:
        h, w = shape
        whole: list[Detection] = []
        tiled: list[tuple[Detection, Crop]] = []
        for crop, boxes, scores in zip(regions, raw_boxes, raw_scores):
            found = [_to_image(d, crop) for d in decode(boxes, scores, self.min_score)]
            if crop.side >= max(w, h):
                whole += found
            else:
                tiled += [(d, crop) for d in found]
        whole = weighted_nms(whole)
        tiled_kept = [d for d, crop in tiled if _whole_in_tile(d, crop) and not any(_part_of(d, b) for b in whole)]
        return weighted_nms(whole + tiled_kept)


def _whole_in_tile(d: Detection, tile: Crop) -> bool:
    """A tile sees a person whole when their full-body square fits in it; a person cut by the tile's
    edge gives a partial, misplaced detection, and is left to a neighbouring tile or the whole frame."""
    box = d.person_box
    half = tile.side / 2.0
    return bool(box[2] - box[0] <= tile.side
                and abs(d.keypoints[0, 0] - tile.centre[0]) <= half and abs(d.keypoints[0, 1] - tile.centre[1]) <= half)


def _part_of(d: Detection, big: Detection) -> bool:
    """A tile showing part of a large person (seen in the whole frame) yields a smaller "person"
    inside theirs; a genuinely different person that far inside would be much smaller still."""
    box, outer = d.person_box, big.person_box
    w = min(box[2], outer[2]) - max(box[0], outer[0])
    h = min(box[3], outer[3]) - max(box[1], outer[1])
    side, outer_side = box[2] - box[0], outer[2] - outer[0]
    inside = max(w, 0.0) * max(h, 0.0) / (side * side)
    return bool(inside > PART_INSIDE and side > PART_SCALE * outer_side)


#: A tile detection this much inside a whole-frame person and at least this fraction of their size
#: is taken for a part of them.
PART_INSIDE = 0.6
PART_SCALE = 0.3

#: Neighbouring tiles overlap by a quarter of their side.
TILE_STEP = 0.75


def _tile_centres(length: int, side: float) -> np.ndarray:
    """Centres (pixel-centre coordinates) of tiles of ``side`` covering ``length`` with overlap."""
    count = max(1, int(np.ceil((length - side) / (side * TILE_STEP) - 1e-6)) + 1)
    return np.linspace(side / 2.0, length - side / 2.0, count) - 0.5


def _outputs(out: dict[str, np.ndarray]) -> tuple[np.ndarray, np.ndarray]:
    """The regressions (last axis 12) and the scores (last axis 1), whatever the converter named them."""
    boxes = [v for v in out.values() if v.shape[-1] == 4 + 2 * NUM_KEYPOINTS]
    scores = [v for v in out.values() if v.shape[-1] == 1 and v.ndim == 3]
    if len(boxes) != 1 or len(scores) != 1:
        shapes = {k: v.shape for k, v in out.items()}
        raise ValueError(f"detector outputs are not (N, 2254, 12) and (N, 2254, 1): {shapes}")
    return boxes[0], scores[0]
