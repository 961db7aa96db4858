"""Drawing people on an image: boxes, LSP-14 skeletons, scores (``realtime estimate --draw``)."""
from __future__ import annotations

from typing import Sequence

import cv2
import numpy as np

from realtime.skeleton import LIMBS2D, LSP14

#: BGR colours, one per person in turn.
PALETTE = ((0, 200, 255), (255, 120, 0), (80, 220, 80), (200, 80, 255), (0, 80, 255), (255, 220, 0),
           (160, 160, 255), (0, 160, 160))
_RIGHT = {i for i, n in enumerate(LSP14) if n.startswith("r_")}


def draw_people(image: np.ndarray, people: Sequence, labels: Sequence[str] | None = None,
                keys: Sequence[int] | None = None) -> np.ndarray:
    """A copy of the BGR ``image`` with each person's box, skeleton (the person's right side drawn
    thicker) and score or label; joints reported missing are not drawn. ``keys``: each person's
    colour in the palette (default: their position; a video passes track ids, so that a person keeps
    their colour from frame to frame)."""
    out = image.copy()
    scale = max(image.shape[:2]) / 1000.0
    thick = max(1, int(round(3 * scale)))
    for i, p in enumerate(people):
        colour = PALETTE[(i if keys is None else keys[i]) % len(PALETTE)]
        x0, y0, x1, y1 = (int(round(v)) for v in p.bbox)
        cv2.rectangle(out, (x0, y0), (x1, y1), colour, max(1, thick // 2))
        k = np.round(p.keypoints).astype(int)
        for a, b in LIMBS2D:
            if p.confidence[a] > 0 and p.confidence[b] > 0:
                width = thick + (1 if a in _RIGHT and b in _RIGHT else 0)
                cv2.line(out, tuple(k[a]), tuple(k[b]), colour, width, cv2.LINE_AA)
        for (x, y), c in zip(k, p.confidence):
            if c > 0:
                cv2.circle(out, (int(x), int(y)), thick + 1, (255, 255, 255), -1, cv2.LINE_AA)
        text = labels[i] if labels is not None else f"{p.score:.2f}"
        cv2.putText(out, text, (x0, max(y0 - 4, 12)), cv2.FONT_HERSHEY_SIMPLEX, 0.5 * max(scale, 0.6) * 1.5,
                    colour, max(1, thick // 2), cv2.LINE_AA)
    return out
