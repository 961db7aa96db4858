"""Belief maps -> keypoints: the peak of each map, refined to sub-pixel precision, and its belief.

The maps are coarser than the crop (CPM: 96 for a 192 crop), so a whole-pixel argmax alone would
quantise keypoints to 2 crop pixels (several image pixels for a large person). Near its peak a belief
map is close to a Gaussian, whose logarithm is exactly a parabola: fitting a parabola through the
log-beliefs of the peak and its two neighbours on each axis recovers the true maximum.
"""
from __future__ import annotations

from typing import Callable

import numpy as np

_EPS = 1e-6


def decode_belief_maps(maps: np.ndarray, threshold: float = 0.0) -> tuple[np.ndarray, np.ndarray]:
    """Peaks of ``(N, H, W, J)`` belief maps.

    Returns ``keypoints (N, J, 2)`` as (x, y) in map pixels (pixel centres at integers) and
    ``confidence (N, J)``: the peak belief clipped to [0, 1], 0 where it is below ``threshold``.
    """
    maps = np.asarray(maps, dtype=np.float32)
    if maps.ndim != 4:
        raise ValueError(f"belief maps must be (N, H, W, J), got shape {maps.shape}")
    py, px = peak_pixels(maps)
    return subpixel_peaks(lambda y, x: pixel_values(maps, y, x), py, px, maps.shape[1:3], threshold)


def peak_pixels(maps: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Row and column ``(N, J)`` of each map's maximum (the first one on ties)."""
    n, h, w, j = maps.shape
    return np.divmod(maps.reshape(n, h * w, j).argmax(axis=1), w)


def pixel_values(maps: np.ndarray, y: np.ndarray, x: np.ndarray) -> np.ndarray:
    """``maps[n, y[n, j], x[n, j], j]`` for every person n and joint j, coordinates clipped to the map."""
    n, h, w, j = maps.shape
    return maps[np.arange(n)[:, None], np.clip(y, 0, h - 1), np.clip(x, 0, w - 1), np.arange(j)]


def subpixel_peaks(value: Callable[[np.ndarray, np.ndarray], np.ndarray], py: np.ndarray, px: np.ndarray,
                   shape: tuple[int, int], threshold: float = 0.0) -> tuple[np.ndarray, np.ndarray]:
    """Sub-pixel peaks and their beliefs around whole-pixel maxima ``(py, px)`` of maps of ``shape``
    (H, W), read through ``value(y, x)``: the maps need not exist as arrays (the 3D feedback fuses
    its maps only where it looks)."""
    h, w = shape
    peak = value(py, px)
    logc = np.log(np.maximum(peak, _EPS))
    left, right = (np.log(np.maximum(value(py, px + d), _EPS)) for d in (-1, 1))
    up, down = (np.log(np.maximum(value(py + d, px), _EPS)) for d in (-1, 1))
    dx = np.where((px > 0) & (px < w - 1), _parabola_offset(left, logc, right), 0.0)
    dy = np.where((py > 0) & (py < h - 1), _parabola_offset(up, logc, down), 0.0)
    keypoints = np.stack([px + dx, py + dy], axis=-1).astype(np.float64)
    # The belief at the refined peak: the parabolas' value at their vertex (c + (r - l) t / 4).
    refined = np.exp(logc + 0.25 * ((right - left) * dx + (down - up) * dy))
    confidence = np.clip(np.where(peak > _EPS, refined, peak), 0.0, 1.0).astype(np.float32)
    confidence[confidence < threshold] = 0.0
    return keypoints, confidence


def _parabola_offset(left: np.ndarray, centre: np.ndarray, right: np.ndarray) -> np.ndarray:
    """Offset in (-0.5, 0.5) of the vertex of the parabola through (-1, l), (0, c), (1, r)."""
    curvature = left - 2.0 * centre + right
    with np.errstate(divide="ignore", invalid="ignore"):
        offset = 0.5 * (left - right) / curvature
    offset = np.where(curvature < -_EPS, offset, 0.0)
    return np.clip(offset, -0.5, 0.5)


def map_to_crop(points: np.ndarray, map_size: int, crop_size: int) -> np.ndarray:
    """Belief-map pixel coordinates -> crop pixel coordinates (each map pixel covers ``crop/map`` crop pixels)."""
    stride = crop_size / map_size
    return (np.asarray(points) + 0.5) * stride - 0.5
