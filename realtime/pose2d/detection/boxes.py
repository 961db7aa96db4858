"""COCO object detectors used for their person class: NanoDet (GFL heads) and CenterNet.

Both are general object detectors trained on COCO-80; class 0 is "person". Their boxes are the
object's extent (head to feet), rescaled to keypoint-box size by ``ModelSpec.box_scale``.
"""
from __future__ import annotations

import numpy as np

from realtime.pose2d.detection.base import Detection, PersonDetector, box_detection

PERSON = 0
#: NanoDet's strides and the bins of its box-side distributions (4 sides x 11 bins).
NANODET_STRIDES = (8, 16, 32)
NANODET_BINS = 11
#: CenterNet: output stride and the number of candidate centres its graph keeps.
CENTERNET_STRIDE = 4
CENTERNET_TOP_K = 100


def nanodet_boxes(classes: np.ndarray, boxes: np.ndarray, stride: int, min_score: float
                  ) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """One level of NanoDet's outputs for a batch (``C = (size / stride)^2`` cells a region): the
    cells whose person score is at least ``min_score``, as their region's index, their score and
    their box (x0, y0, x1, y1, input pixels). The box regression is Generalised Focal Loss's: for
    each side a distribution over 0..10 strides, whose expectation is the distance from the cell
    centre. Only the kept cells' distributions are computed: for all cells this was the largest part
    of a still frame's detector time on a GPU (22 of 51 ms)."""
    n, cells, _ = boxes.shape
    side = int(round(np.sqrt(cells)))
    region, cell = np.nonzero(classes[..., PERSON] >= min_score)
    logits = boxes[region, cell].reshape(-1, 4, NANODET_BINS)
    p = np.exp(logits - logits.max(axis=-1, keepdims=True))
    p /= p.sum(axis=-1, keepdims=True)
    dist = (p * np.arange(NANODET_BINS, dtype=np.float32)).sum(-1) * stride        # (K, 4) l, t, r, b
    ys, xs = np.divmod(cell, side)
    cx, cy = (xs + 0.5) * stride, (ys + 0.5) * stride
    out = np.stack([cx - dist[:, 0], cy - dist[:, 1], cx + dist[:, 2], cy + dist[:, 3]], axis=-1)
    return region, classes[region, cell, PERSON], out


class NanoDetDetector(PersonDetector):

    def decode(self, outputs: dict[str, np.ndarray], n: int) -> list[list[Detection]]:
        found: list[list[Detection]] = [[] for _ in range(n)]
        for stride in NANODET_STRIDES:
            regions, scores, boxes = nanodet_boxes(outputs[f"classes_{stride}"], outputs[f"boxes_{stride}"], stride,
                                                   self.min_score)
            for i, score, box in zip(regions, scores, boxes):
                found[i].append(box_detection(score, box - 0.5, self.spec.box_scale))
        return found


def centernet_detections(heatmaps: np.ndarray, sizes: np.ndarray, top_k: int = CENTERNET_TOP_K) -> np.ndarray:
    """CenterNet's own decoding (as its graph does it) for a batch: ``(N, top_k, 6)`` rows of x0, y0,
    x1, y1 (input pixels), score, class: the top-k cells that are the maximum of their 3x3
    neighbourhood, each with the box its four side distances give."""
    n, h, w, c = heatmaps.shape
    padded = np.pad(heatmaps, ((0, 0), (1, 1), (1, 1), (0, 0)), constant_values=-np.inf)
    pooled = np.max([padded[:, dy:dy + h, dx:dx + w] for dy in range(3) for dx in range(3)], axis=0)
    peaks = (heatmaps * (heatmaps == pooled)).reshape(n, -1)
    top = np.argsort(-peaks, axis=1, kind="stable")[:, :top_k]
    score = np.take_along_axis(peaks, top, axis=1)
    cls = top % c
    cell = top // c
    y, x = np.divmod(cell, w)
    side = sizes.reshape(n, h * w, 4)[np.arange(n)[:, None], cell]                      # (N, K, 4)
    xs, ys = (x * CENTERNET_STRIDE).astype(np.float32), (y * CENTERNET_STRIDE).astype(np.float32)
    return np.stack([xs - side[..., 0], ys - side[..., 1], xs + side[..., 2], ys + side[..., 3], score,
                     cls.astype(np.float32)], axis=-1)


class CenterNetDetector(PersonDetector):

    def decode(self, outputs: dict[str, np.ndarray], n: int) -> list[list[Detection]]:
        rows = centernet_detections(outputs["heatmaps"], outputs["sizes"])
        return [[box_detection(r[4], r[:4], self.spec.box_scale) for r in image
                 if r[5] == PERSON and r[4] >= self.min_score] for image in rows]
