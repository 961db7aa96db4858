"""Aspect-keeping square crops (with zero padding outside the image) and their inverse.

A crop is a similarity transform from image pixels to network-input pixels; keeping it lets every
keypoint found in a crop go back to the original image exactly. Pixel centres are at integer
coordinates (OpenCV's convention) on both sides.
"""
from __future__ import annotations

from dataclasses import dataclass

import cv2
import numpy as np

from realtime.skeleton import turn_matrix


@dataclass(frozen=True)
class Crop:
    """A square region of the image (``centre``, ``side`` in image pixels) resampled to ``size`` x ``size``,
    turned by ``angle`` (radians, clockwise on screen): the crop's up is the image's up turned by it,
    so a person leaning by ``angle`` stands upright in the crop (the keypoint networks learnt upright
    people; a person lying on the floor is cropped along their body)."""

    centre: tuple[float, float]
    side: float
    size: int
    angle: float = 0.0

    def _rotation(self) -> np.ndarray:
        """The crop's turn (``realtime.skeleton.turn_matrix``): row vectors times it turn by ``angle``,
        times its transpose (as a column-vector map: image -> crop) by ``-angle``."""
        return turn_matrix(self.angle)

    @property
    def matrix(self) -> np.ndarray:
        """2x3 affine map image -> crop: ``u = k R (x - c) + size/2 - 1/2`` with ``k = size / side`` and R
        the turn by ``-angle``."""
        k = self.size / self.side
        off = self.size / 2.0 - 0.5
        a = k * self._rotation()
        return np.concatenate([a, (off - a @ np.asarray(self.centre, np.float64))[:, None]], axis=1)

    def to_crop(self, points: np.ndarray) -> np.ndarray:
        k = self.size / self.side
        return (np.asarray(points, np.float64) - self.centre) @ self._rotation().T * k + (self.size / 2.0 - 0.5)

    def to_image(self, points: np.ndarray) -> np.ndarray:
        k = self.side / self.size
        return (np.asarray(points, np.float64) - (self.size / 2.0 - 0.5)) * k @ self._rotation() + self.centre

    @property
    def extent(self) -> float:
        """Half the side of the upright square that holds the (turned) crop, image pixels."""
        return self.side / 2.0 * (abs(np.cos(self.angle)) + abs(np.sin(self.angle)))


def box_crop(bbox: tuple[float, float, float, float] | np.ndarray, size: int, scale: float = 1.0,
             angle: float = 0.0) -> Crop:
    """The square around a box's centre whose side is ``scale`` times the box's longer side (turned by
    ``angle``)."""
    x0, y0, x1, y1 = (float(v) for v in bbox)
    side = max(x1 - x0, y1 - y0, 1.0) * scale
    return Crop(((x0 + x1) / 2.0, (y0 + y1) / 2.0), side, size, float(angle))


def letterbox(width: int, height: int, size: int) -> Crop:
    """The whole image, centred and padded to a square (how detectors expect their input)."""
    return Crop(((width - 1) / 2.0, (height - 1) / 2.0), float(max(width, height)), size)


def warp(image: np.ndarray, crops: list[Crop], out: np.ndarray | None = None) -> np.ndarray:
    """Resample every crop of a BGR ``uint8`` image into one ``(N, size, size, 3)`` float32 RGB batch (0..255).

    Strong downscaling reads from an image pyramid (each level half the last) so that bilinear
    sampling never skips pixels: a 1080p frame shrunk to a 224 detector input would otherwise alias.
    Only the part of the frame under each crop is halved, not the whole frame.
    """
    if not crops:
        return np.zeros((0, 1, 1, 3), np.float32)
    size = crops[0].size
    if out is None:
        out = np.empty((len(crops), size, size, 3), np.float32)
    bgr = np.empty((len(crops), size, size, 3), np.uint8)
    for i, crop in enumerate(crops):
        source, crop_l = _source(image, crop)
        cv2.warpAffine(source, crop_l.matrix, (size, size), dst=bgr[i], flags=cv2.INTER_LINEAR,
                       borderMode=cv2.BORDER_CONSTANT, borderValue=(0, 0, 0))
    rgb = cv2.cvtColor(bgr.reshape(-1, size, 3), cv2.COLOR_BGR2RGB)
    out[...] = rgb.reshape(bgr.shape)
    return out


#: Pyramid levels stop before an image side falls below this.
MIN_LEVEL_SIDE = 16
#: Image pixels kept around a crop before halving, per pyramid level (the 5-tap kernel reaches 2 pixels
#: of each level; with this margin the crop sees the same pixels as in a pyramid of the whole frame).
MARGIN = 4


def _source(image: np.ndarray, crop: Crop) -> tuple[np.ndarray, Crop]:
    """The image region under ``crop``, halved until the crop samples it at less than 2:1, and the
    crop in that region's pixels. Regions start on multiples of the pyramid step, so halving them
    gives the same pixels as halving the whole frame."""
    h, w = image.shape[:2]
    level = 0
    while crop.side / crop.size >= 2.0 ** (level + 1) and min(h, w) >> (level + 1) >= MIN_LEVEL_SIDE:
        level += 1
    if level == 0:
        return image, crop
    step = 2 ** level
    half = crop.extent + MARGIN * step
    x0 = max(0, int(np.floor((crop.centre[0] - half) / step)) * step)
    y0 = max(0, int(np.floor((crop.centre[1] - half) / step)) * step)
    x1 = min(w, int(np.ceil((crop.centre[0] + half) / step)) * step)
    y1 = min(h, int(np.ceil((crop.centre[1] + half) / step)) * step)
    if x1 - x0 < step or y1 - y0 < step:
        return image, crop
    region = image[y0:y1, x0:x1]
    for _ in range(level):
        region = cv2.pyrDown(region)
    # pixel centres: x_level = (x + 0.5) / step - 0.5
    shifted = Crop(((crop.centre[0] - x0 + 0.5) / step - 0.5, (crop.centre[1] - y0 + 0.5) / step - 0.5),
                   crop.side / step, crop.size, crop.angle)
    return region, shifted
