"""Box geometry shared by the detector's suppression and the tracker's association."""
from __future__ import annotations

import numpy as np


def iou_matrix(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """(len(a), len(b)) intersection over union of [x0, y0, x1, y1] boxes."""
    a = np.asarray(a, dtype=np.float64).reshape(-1, 4)
    b = np.asarray(b, dtype=np.float64).reshape(-1, 4)
    lo = np.maximum(a[:, None, :2], b[None, :, :2])
    hi = np.minimum(a[:, None, 2:], b[None, :, 2:])
    inter = np.prod(np.clip(hi - lo, 0.0, None), axis=-1)
    area_a = np.prod(a[:, 2:] - a[:, :2], axis=-1)
    area_b = np.prod(b[:, 2:] - b[:, :2], axis=-1)
    return inter / np.maximum(area_a[:, None] + area_b[None] - inter, 1e-9)


def covered(box: np.ndarray, others: np.ndarray, samples: int = 16) -> float:
    """The fraction of ``box`` that lies inside the union of ``others`` (all [x0, y0, x1, y1]), measured
    on a ``samples`` x ``samples`` grid of the box (the union of overlapping boxes has no closed form
    worth its code here)."""
    others = np.asarray(others, dtype=np.float64).reshape(-1, 4)
    if not len(others):
        return 0.0
    x0, y0, x1, y1 = (float(v) for v in box)
    t = (np.arange(samples) + 0.5) / samples
    xs, ys = np.meshgrid(x0 + t * (x1 - x0), y0 + t * (y1 - y0))
    inside = ((xs[..., None] >= others[:, 0]) & (xs[..., None] <= others[:, 2])
              & (ys[..., None] >= others[:, 1]) & (ys[..., None] <= others[:, 3])).any(-1)
    return float(inside.mean())
