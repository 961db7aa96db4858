"""Image loading and validation: every odd input becomes a clear ``ImageError`` or an 8-bit BGR frame.

Decoders and networks downstream assume ``uint8`` BGR ``(H, W, 3)``; converting grayscale, alpha and
16-bit images here keeps that assumption true and keeps OpenCV's own errors out of the user's sight.
"""
from __future__ import annotations

import math
from pathlib import Path

import cv2
import numpy as np

from realtime.capture.source import VIDEO_SUFFIXES

#: Smaller images than this (either side) hold no usable person.
MIN_SIDE = 8


class ImageError(ValueError):
    """An image file or array cannot be used; the message is one line naming the file or the problem."""


def load_image(path: str | Path) -> np.ndarray:
    """Read an image file as 8-bit BGR ``(H, W, 3)``, upright as its EXIF orientation says (an alpha
    channel is dropped)."""
    path = Path(path)
    if not path.exists():
        raise ImageError(f"{path}: no such file")
    if not path.is_file():
        raise ImageError(f"{path}: not a file")
    data = np.fromfile(path, dtype=np.uint8)
    if data.size == 0:
        raise ImageError(f"{path}: empty file")
    # any depth and any colour, so 16-bit and grey files reach to_bgr8 as they are, but not
    # IMREAD_UNCHANGED: that also ignores the EXIF orientation, and a phone's portrait photo (stored
    # sideways, turned by its Orientation tag) would come out with everyone lying down
    image = cv2.imdecode(data, cv2.IMREAD_ANYDEPTH | cv2.IMREAD_ANYCOLOR)
    if image is None:
        if path.suffix.lower() in VIDEO_SUFFIXES:
            raise ImageError(f"{path}: a video, not an image: realtime.estimate_video({str(path)!r}) (or "
                             f"`realtime estimate {path}`) gives its people frame by frame, `realtime run "
                             f"--source {path}` streams them")
        raise ImageError(f"{path}: not an image OpenCV can decode")
    try:
        return to_bgr8(image)
    except ImageError as e:
        raise ImageError(f"{path}: {e}") from None


#: The diagonal of a 35 mm film frame (36 x 24 mm): "35 mm equivalent" focal lengths are to it.
FILM_DIAGONAL_MM = math.hypot(36.0, 24.0)
#: 35 mm equivalent focal lengths believed (mm): a fisheye's to a long telephoto's.
FOCAL_35MM_RANGE = (8.0, 800.0)
_EXIF_IFD, _FOCAL_35MM = 0x8769, 0xA405


def exif_focal_px(path: str | Path) -> float | None:
    """The focal length in pixels of a photo file's camera, from its EXIF (None when it does not say).

    Why: a photo's people are lifted and placed in metres with its camera's focal length; without one
    it is taken to be 0.8 x the width (a webcam's), while a phone's ultra-wide lens has about 0.4 and a
    telephoto 2 or more, which puts the person at half or twice the true distance. Only the 35 mm
    equivalent focal length (FocalLengthIn35mmFilm, which phones write) is read: over the film frame's
    diagonal it holds for any sensor size, resize and orientation (not for a photo cropped after it
    was taken, whose tag still describes the whole frame). The focal length in mm would need
    the sensor's pixels per mm, which resizing leaves stale (a shared photo resized to 800 px still
    claims its camera's 5184). Missing, malformed or outside :data:`FOCAL_35MM_RANGE`: None; EXIF
    never fails a photo.
    """
    try:
        from PIL import Image

        with Image.open(path) as im:
            width, height = im.size
            f35 = float(im.getexif().get_ifd(_EXIF_IFD).get(_FOCAL_35MM) or 0)
    except Exception:  # noqa: BLE001 - a file Pillow cannot read, or EXIF of any shape
        return None
    if not FOCAL_35MM_RANGE[0] <= f35 <= FOCAL_35MM_RANGE[1]:
        return None
    return f35 * math.hypot(width, height) / FILM_DIAGONAL_MM


def to_bgr8(image: np.ndarray) -> np.ndarray:
    """Convert gray, gray+alpha, BGRA, 16-bit or float arrays to 8-bit BGR; reject what is not an image."""
    if not isinstance(image, np.ndarray):
        raise ImageError(f"expected a numpy array, got {type(image).__name__}")
    if image.ndim == 3 and image.shape[2] == 1:
        image = image[:, :, 0]
    if image.ndim not in (2, 3) or (image.ndim == 3 and image.shape[2] not in (2, 3, 4)):
        raise ImageError(f"expected an (H, W) or (H, W, 1|2|3|4) image, got shape {image.shape}")
    if image.shape[0] < MIN_SIDE or image.shape[1] < MIN_SIDE:
        raise ImageError(f"image is {image.shape[1]}x{image.shape[0]} pixels, smaller than {MIN_SIDE}x{MIN_SIDE}")
    image = _to_uint8(image)
    if image.ndim == 2:
        return cv2.cvtColor(image, cv2.COLOR_GRAY2BGR)
    if image.shape[2] == 2:
        return cv2.cvtColor(np.ascontiguousarray(image[:, :, 0]), cv2.COLOR_GRAY2BGR)
    if image.shape[2] == 4:
        return cv2.cvtColor(image, cv2.COLOR_BGRA2BGR)
    return np.ascontiguousarray(image)


def _to_uint8(image: np.ndarray) -> np.ndarray:
    if image.dtype == np.uint8:
        return image
    if image.dtype == np.uint16:
        return (image >> 8).astype(np.uint8)
    if image.dtype == np.bool_:
        return image.astype(np.uint8) * 255
    if np.issubdtype(image.dtype, np.floating):
        if not np.all(np.isfinite(image)):
            raise ImageError("image has NaN or infinite values")
        scale = 255.0 if image.max(initial=0.0) <= 1.0 else 1.0
        return np.clip(image * scale, 0, 255).astype(np.uint8)
    if np.issubdtype(image.dtype, np.integer):
        return np.clip(image, 0, 255).astype(np.uint8)
    raise ImageError(f"unsupported pixel type {image.dtype}")


def check_frame(image: np.ndarray, what: str = "image") -> np.ndarray:
    """:func:`to_bgr8` with ``what`` (e.g. "image 3") at the start of its error message."""
    try:
        return to_bgr8(image)
    except ImageError as e:
        raise ImageError(f"{what}: {e}") from None
