"""Landmark models (BlazePose's 33 points, COCO-17) mapped onto LSP-14.

LSP's ``neck`` (the upper neck) and ``head_top`` are not landmarks of these models. Both are placed
on the line from the mid-shoulders S through the mid-ears E: ``neck = S + NECK_ALONG (E - S)`` and
``head_top = S + HEAD_TOP_ALONG (E - S)``. Ears are used rather than the nose because they stay on
the head's axis when the face turns. The two factors were fitted on the annotated LSP and MPII images
(upper neck and head top ground truth) with BlazePose-full keypoints (tools/bench_2d.py).
"""
from __future__ import annotations

import numpy as np

from realtime.skeleton import LSP14

NECK_ALONG = 0.3
HEAD_TOP_ALONG = 1.6

#: BlazePose landmark index for each LSP-14 joint measured directly (None = derived).
BLAZEPOSE_TO_LSP: dict[str, int] = {
    "r_shoulder": 12, "r_elbow": 14, "r_wrist": 16, "l_shoulder": 11, "l_elbow": 13, "l_wrist": 15,
    "r_hip": 24, "r_knee": 26, "r_ankle": 28, "l_hip": 23, "l_knee": 25, "l_ankle": 27,
}
BLAZEPOSE_EARS = (7, 8)
BLAZEPOSE_LANDMARKS = 39
BLAZEPOSE_VALUES = 5   # x, y, z, visibility logit, presence logit

#: COCO-17 index for each LSP-14 joint measured directly (MoveNet and other COCO models).
COCO_TO_LSP: dict[str, int] = {
    "r_shoulder": 6, "r_elbow": 8, "r_wrist": 10, "l_shoulder": 5, "l_elbow": 7, "l_wrist": 9,
    "r_hip": 12, "r_knee": 14, "r_ankle": 16, "l_hip": 11, "l_knee": 13, "l_ankle": 15,
}
COCO_EARS = (3, 4)


def to_lsp14(points: np.ndarray, confidence: np.ndarray, direct: dict[str, int],
             ears: tuple[int, int]) -> tuple[np.ndarray, np.ndarray]:
    """``(N, K, 2)`` landmarks and ``(N, K)`` confidences -> ``(N, 14, 2)``, ``(N, 14)`` in LSP-14 order."""
    n = points.shape[0]
    out = np.zeros((n, len(LSP14), 2), np.float64)
    conf = np.zeros((n, len(LSP14)), np.float32)
    for name, k in direct.items():
        j = LSP14.index(name)
        out[:, j] = points[:, k]
        conf[:, j] = confidence[:, k]
    shoulders = (direct["r_shoulder"], direct["l_shoulder"])
    s = points[:, shoulders].mean(axis=1)
    e = points[:, ears].mean(axis=1)
    head_conf = np.minimum(confidence[:, shoulders].min(axis=1), confidence[:, ears].max(axis=1))
    for name, along in (("neck", NECK_ALONG), ("head_top", HEAD_TOP_ALONG)):
        j = LSP14.index(name)
        out[:, j] = s + along * (e - s)
        conf[:, j] = head_conf
    return out, conf


def blazepose_to_lsp14(landmarks: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """BlazePose's flat ``(N, 195)`` landmark output (crop pixels) -> LSP-14 keypoints in crop pixels
    and confidences (the sigmoid of each landmark's visibility logit)."""
    lm = np.asarray(landmarks, np.float64).reshape(-1, BLAZEPOSE_LANDMARKS, BLAZEPOSE_VALUES)
    visibility = 1.0 / (1.0 + np.exp(-np.clip(lm[:, :, 3], -50.0, 50.0)))
    return to_lsp14(lm[:, :, :2], visibility.astype(np.float32), BLAZEPOSE_TO_LSP, BLAZEPOSE_EARS)


def coco_to_lsp14(keypoints: np.ndarray, scores: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """COCO-17 keypoints ``(N, 17, 2)`` (x, y) with scores ``(N, 17)`` -> LSP-14."""
    return to_lsp14(np.asarray(keypoints, np.float64), np.asarray(scores, np.float32), COCO_TO_LSP, COCO_EARS)
