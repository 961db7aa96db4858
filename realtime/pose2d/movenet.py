"""MoveNet's decoding (SinglePose Lightning/Thunder and MultiPose), from its dense heads, in NumPy.

The networks end in CenterNet-style heads on a grid of stride 4: keypoint heatmaps (17, sigmoid),
a person-centre heatmap, per-cell regressions from a centre to each keypoint, and per-cell
sub-cell offsets of each keypoint (MultiPose also regresses a box per centre). The upstream graphs
decode them for batch 1 with arg-max and gathers; we cut the graphs at the heads (so the networks
run batched on every backend) and decode here, batched, with the same arithmetic. Where the graphs
hold float16-quantised constants (1.8, 1/48, 0.3) we use the same rounded values, so that our
output matches TensorFlow's to float32 precision (``tests/test_models.py`` checks it against the
upstream reference outputs).

SinglePose: the centre is the arg-max of the centre heatmap weighted towards the crop's middle;
each keypoint is the arg-max of its heatmap divided by (distance to where the centre regresses it
+ 1.8), refined by its offset. MultiPose: up to ``max_people`` centres (local maxima of the centre
heatmap), each with a box; each person's keypoints are the arg-max of the heatmap times a Gaussian
around the regressed position, inside the person's box; a person's score is the mean of centre
score x keypoint score over keypoints scoring above 0.127.
"""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np

#: The MultiPose graph's threshold for a keypoint to count towards its person's score.
KEYPOINT_SCORE = np.float32(np.float16(0.127))
#: Centre peaks: a cell is a peak when it equals the 5x5 maximum around it to within this.
PEAK_TOLERANCE = np.float32(1.013279e-06)
#: Grid cell size in input pixels.
STRIDE = 4


def _f16(value: float | np.ndarray) -> np.ndarray:
    """A constant as the upstream graph stores it (float16-quantised weights)."""
    return np.asarray(value, np.float16).astype(np.float32)


def _grid(h: int, w: int) -> tuple[np.ndarray, np.ndarray]:
    ys, xs = np.meshgrid(np.arange(h, dtype=np.float32), np.arange(w, dtype=np.float32), indexing="ij")
    return ys, xs


def centre_weight(h: int, w: int) -> np.ndarray:
    """SinglePose's preference for the person in the middle of the crop: 1 / (distance to the grid's
    centre + 1.8), as the constant folded into the graph."""
    ys, xs = _grid(h, w)
    return _f16(1.0 / (np.sqrt((ys - h / 2) ** 2 + (xs - w / 2) ** 2) + np.float32(1.8)))


def decode_singlepose(heatmaps: np.ndarray, centres: np.ndarray, regress: np.ndarray,
                      offsets: np.ndarray) -> np.ndarray:
    """``(N, H, W, 17)`` heatmaps, ``(N, H, W, 1)`` centres, ``(N, H, W, 34)`` regressions and
    offsets -> ``(N, 17, 3)``: y, x (fractions of the input) and score per COCO-17 keypoint."""
    n, h, w, k = heatmaps.shape
    rows = np.arange(n)
    centre = (centres[..., 0] * centre_weight(h, w)).reshape(n, -1).argmax(axis=1)
    cy, cx = np.divmod(centre, w)
    reg = regress[rows, cy, cx].reshape(n, k, 2)
    ry = cy[:, None].astype(np.float32) + reg[..., 0]                                  # (N, K)
    rx = cx[:, None].astype(np.float32) + reg[..., 1]
    ys, xs = _grid(h, w)
    dist = np.sqrt((ys[None, :, :, None] - ry[:, None, None, :]) ** 2
                   + (xs[None, :, :, None] - rx[:, None, None, :]) ** 2)              # (N, H, W, K)
    best = (heatmaps / (dist + _f16(1.8))).reshape(n, h * w, k).argmax(axis=1)          # (N, K)
    ky, kx = np.divmod(best, w)
    joints = np.arange(k)
    off = offsets[rows[:, None], ky, kx].reshape(n, k, k, 2)[:, joints, joints]         # (N, K, 2)
    out = np.empty((n, k, 3), np.float32)
    out[..., 0] = (ky + off[..., 0]) * _f16(1.0 / h)
    out[..., 1] = (kx + off[..., 1]) * _f16(1.0 / w)
    out[..., 2] = heatmaps[rows[:, None], ky, kx, joints]
    return out


@dataclass(frozen=True)
class MultiPose:
    """People found by MultiPose in one image, in input pixels."""

    boxes: np.ndarray       # (P, 4) x0, y0, x1, y1
    scores: np.ndarray      # (P,)
    keypoints: np.ndarray   # (P, 17, 2) x, y (COCO-17)
    confidence: np.ndarray  # (P, 17)


def _max_pool(x: np.ndarray, size: int) -> np.ndarray:
    """``size`` x ``size`` max filter with SAME padding (outside cells ignored) over (N, H, W)."""
    r = size // 2
    padded = np.pad(x, ((0, 0), (r, r), (r, r)), constant_values=-np.inf)
    out = np.full_like(x, -np.inf)
    h, w = x.shape[1:]
    for dy in range(size):
        for dx in range(size):
            np.maximum(out, padded[:, dy:dy + h, dx:dx + w], out=out)
    return out


def decode_multipose(heatmaps: np.ndarray, centres: np.ndarray, regress: np.ndarray, offsets: np.ndarray,
                     box_scale: np.ndarray, box_offset: np.ndarray, max_people: int = 6) -> np.ndarray:
    """MultiPose's heads for a batch -> ``(N, max_people, 56)`` as the upstream graph's output: per
    person 17 x (y, x, score), then (ymin, xmin, ymax, xmax) and the person score, coordinates as
    fractions of the input. People come best centre first; unused rows (fewer centres than
    ``max_people``) have score 0."""
    n, h, w, k = heatmaps.shape
    size_y, size_x = h * STRIDE, w * STRIDE
    c = centres[..., 0]
    peaks = c * (np.abs(c - _max_pool(c, 5)) < PEAK_TOLERANCE)
    flat = peaks.reshape(n, -1)
    top = np.argsort(-flat, axis=1, kind="stable")[:, :max_people]                    # (N, P)
    centre_score = np.take_along_axis(flat, top, axis=1)
    cy, cx = np.divmod(top, w)
    rows = np.arange(n)[:, None]
    scale = np.maximum(box_scale[rows, cy, cx], 0.0)                                    # (N, P, 2) h, w
    boff = box_offset[rows, cy, cx]
    yc, xc = cy + boff[..., 0], cx + boff[..., 1]
    half_h, half_w = scale[..., 0] * np.float32(0.5), scale[..., 1] * np.float32(0.5)
    box = np.stack([np.clip(yc - half_h, 0, h), np.clip(xc - half_w, 0, w),
                    np.clip(yc + half_h, 0, h), np.clip(xc + half_w, 0, w)], axis=-1).astype(np.float32)
    reg = regress[rows, cy, cx].reshape(n, -1, k, 2)
    ry = cy[..., None] + reg[..., 0]                                                    # (N, P, K)
    rx = cx[..., None] + reg[..., 1]
    ys, xs = _grid(h, w)
    d2 = ((ys[None, :, :, None, None] - ry[:, None, None]) ** 2
          + (xs[None, :, :, None, None] - rx[:, None, None]) ** 2)                      # (N, H, W, P, K)
    gauss = np.exp(-d2 / (np.float32(min(h, w)) * _f16(0.3)))
    inside = ((ys[None, :, :, None] >= box[:, None, None, :, 0]) & (ys[None, :, :, None] < box[:, None, None, :, 2])
              & (xs[None, :, :, None] >= box[:, None, None, :, 1]) & (xs[None, :, :, None] < box[:, None, None, :, 3]))
    weighted = heatmaps[:, :, :, None, :] * gauss * inside[..., None]                   # (N, H, W, P, K)
    best = weighted.reshape(n, h * w, -1).argmax(axis=1).reshape(n, -1, k)              # (N, P, K)
    ky, kx = np.divmod(best, w)
    joints = np.arange(k)[None, None, :]
    off = offsets.reshape(n, h, w, k, 2)[rows[..., None], ky, kx, joints]              # (N, P, K, 2)
    kscore = weighted.max(axis=3)[rows[..., None], ky, kx, joints]                      # (N, P, K)
    counted = kscore > KEYPOINT_SCORE
    person = (centre_score[..., None] * np.where(counted, kscore, 0.0)).sum(-1) / np.maximum(counted.sum(-1), 1)
    out = np.empty((n, top.shape[1], 3 * k + 5), np.float32)
    kp = out[..., :3 * k].reshape(n, -1, k, 3)
    kp[..., 0] = (ky + off[..., 0]) * np.float32(STRIDE / size_y)
    kp[..., 1] = (kx + off[..., 1]) * np.float32(STRIDE / size_x)
    kp[..., 2] = kscore
    out[..., 3 * k:3 * k + 4] = np.clip(box * STRIDE / np.array([size_y, size_x, size_y, size_x], np.float32), 0, 1)
    out[..., -1] = person
    return out


def multipose_people(decoded: np.ndarray, input_size: tuple[int, int], min_score: float) -> list[MultiPose]:
    """The upstream-format rows of :func:`decode_multipose` -> people in input pixels (pixel centres at
    integers), one :class:`MultiPose` per image, keeping people scoring at least ``min_score``."""
    h, w = input_size
    found = []
    for rows in decoded:
        keep = rows[:, -1] >= min_score
        rows = rows[keep]
        kp = rows[:, :51].reshape(-1, 17, 3)
        points = np.stack([kp[..., 1] * w - 0.5, kp[..., 0] * h - 0.5], axis=-1).astype(np.float64)
        b = rows[:, 51:55]
        boxes = np.stack([b[:, 1] * w - 0.5, b[:, 0] * h - 0.5, b[:, 3] * w - 0.5, b[:, 2] * h - 0.5], axis=-1)
        found.append(MultiPose(boxes.astype(np.float64), rows[:, -1].astype(np.float64), points, kp[..., 2]))
    return found
