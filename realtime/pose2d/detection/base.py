"""What every person detector shares: the whole frame and overlapping tiles through one batched
network call, the regions' detections merged per image.

Every detector gives the same :class:`Detection`: a score, a body centre and a box rescaled to the
size of the person's keypoint box (each detector draws its boxes its own way: BlazePose a circle
around the body, COCO detectors the object's extent; ``ModelSpec.box_scale`` is the median ratio
measured on the annotated images), so the keypoint crops are placed alike whichever found the
person. The model-specific part is only the decoding of one region's outputs (``decode``); the
regions, tiling, merging and suppression are here.

Tiles: in a wide shot (a shop camera at 1080p) people shrink to a few dozen pixels in the
network's input and are missed. With ``tiles = R`` the detector also sees R rows of square tiles
overlapping by a quarter, all in the same batch as the whole frame. A tile's detection counts only
when the person is whole in it (a person cut by a tile's edge gives a partial, misplaced box) and it
is not a part of a large person found in the whole frame.
"""
from __future__ import annotations

from dataclasses import dataclass, field, replace
from typing import TYPE_CHECKING

import numpy as np

from realtime.boxes import iou_matrix
from realtime.pose2d.crops import Crop, letterbox, warp
from realtime.networks import ModelSpec

if TYPE_CHECKING:
    from realtime.pose2d.backends import Backend


@dataclass(frozen=True)
class Detection:
    """One person found by a detector, in image pixels."""

    score: float
    #: (4,) x0, y0, x1, y1: the person's box at the size of their keypoint box.
    box: np.ndarray
    #: (2,) x, y: the body's centre (BlazePose: mid-hips; box detectors: the box centre).
    centre: np.ndarray
    #: (4,) the box as the detector drew it (its own extent; used to tell whole from cut people).
    extent: np.ndarray
    #: (K, 3) x, y, confidence: keypoints the detector also gives (MultiPose: COCO-17), else None.
    keypoints: np.ndarray | None = field(default=None, compare=False)
    #: Found only in a turned view of the frame (:data:`QUARTER_TURNS`): a person lying across the
    #: image, to be confirmed by their keypoints (turned views also yield parts of upright people).
    lying: bool = False

    def to_image(self, crop: Crop) -> "Detection":
        """From a region's input pixels to image pixels (a turned region's boxes stay upright: the
        image box around the turned one, exact for quarter turns)."""
        def points(p: np.ndarray) -> np.ndarray:
            return crop.to_image(p.reshape(-1, 2))

        def box(b: np.ndarray) -> np.ndarray:
            corners = points(b[[0, 1, 2, 1, 2, 3, 0, 3]])
            return np.concatenate([corners.min(axis=0), corners.max(axis=0)])
        kp = None
        if self.keypoints is not None:
            kp = np.concatenate([points(self.keypoints[:, :2]), self.keypoints[:, 2:]], axis=1)
        return Detection(self.score, box(self.box), points(self.centre).reshape(2), box(self.extent), kp)


@dataclass(frozen=True)
class Prepared:
    """A detector batch ready for the network: the resampled regions of several images."""

    batch: np.ndarray | None
    regions: list[list[Crop]]
    shapes: list[tuple[int, int]]


def nms(detections: list[Detection], threshold: float = 0.5) -> list[Detection]:
    """Greedy non-maximum suppression on the detectors' own boxes, best score first."""
    remaining = sorted(detections, key=lambda d: -d.score)
    kept: list[Detection] = []
    while remaining:
        best = remaining.pop(0)
        kept.append(best)
        if remaining:
            overlap = iou_matrix(best.extent, np.stack([d.extent for d in remaining]))[0]
            remaining = [d for d, o in zip(remaining, overlap) if o <= threshold]
    return kept


def box_detection(score: float, extent: np.ndarray, box_scale: float, keypoints: np.ndarray | None = None
                  ) -> Detection:
    """A detection from a detector's box: centred on it, rescaled to keypoint-box size."""
    extent = np.asarray(extent, np.float64)
    centre = (extent[:2] + extent[2:]) / 2.0
    half = (extent[2:] - extent[:2]) / (2.0 * box_scale)
    return Detection(float(score), np.concatenate([centre - half, centre + half]), centre, extent, keypoints)


#: Neighbouring tiles overlap by a quarter of their side.
TILE_STEP = 0.75
#: A tile detection this much inside a whole-frame person and at least this fraction of their size
#: is taken for a part of them.
PART_INSIDE = 0.6
PART_SCALE = 0.3
#: A detection whose box comes this close (a fraction of the tile's side) to a tile edge that is not
#: the image's edge may be a person cut by the tile.
EDGE_MARGIN = 0.01
#: Boxes overlapping more than this are one person (the detectors' own suppression threshold).
NMS_IOU = 0.5
#: The turns of the whole frame a still image's detector also sees (radians, clockwise on screen):
#: detectors learnt from photos of mostly upright people and miss most people lying across the image
#: (on the floor, in bed, after a fall); turned a quarter, they stand upright (tools/bench_2d.py's
#: "turned" photos).
QUARTER_TURNS = (np.pi / 2, -np.pi / 2)
#: A turned view's person is taken for someone lying across the image when their box there is at least
#: this wide for its height; the keypoints then decide (``confirm_lying``: the torso must lean). A
#: person standing upright in the image is 0.3-0.5 as wide as tall, one sitting or crouching about as
#: wide as tall: at 1.0 a person sitting on a chair or on the floor, the photo turned, was dropped.
#: tools/bench_2d.py's turned photos: MoveNet Thunder's recall 0.88 -> 1.00 with 0.7 (0.4 found a
#: person more on the annotated photos turned than upright).
LYING_ASPECT = 0.7


class PersonDetector:
    """A detector network on the whole frame and, for large frames, on overlapping tiles.

    The regions asked for go through the network as one batch (several images' regions too:
    :meth:`detect_many`); on video the caller may ask for a few regions per frame so that no frame
    pays for all of them. Subclasses decode one region's outputs (:meth:`decode`).
    """

    def __init__(self, backend: "Backend", spec: ModelSpec, min_score: float | None = None, tiles: int = 1):
        self.backend = backend
        self.spec = spec
        self.min_score = spec.min_score if min_score is None else min_score
        self.tiles = tiles

    @property
    def name(self) -> str:
        return self.spec.name

    @property
    def input_size(self) -> int:
        return self.spec.input_size[0]

    def regions(self, width: int, height: int, turns: bool = False) -> list[Crop]:
        """The whole frame (with ``turns``, also turned a quarter each way: still images), then the
        tiles (none when a tile would be smaller than the network input)."""
        whole = letterbox(width, height, self.input_size)
        regions = [whole]
        if turns:
            regions += [replace(whole, angle=a) for a in QUARTER_TURNS]
        if self.tiles <= 1:
            return regions
        side = min(width, height) / (TILE_STEP * self.tiles + (1.0 - TILE_STEP))
        if side < self.input_size:
            return regions
        for cy in _tile_centres(height, side):
            for cx in _tile_centres(width, side):
                regions.append(Crop((cx, cy), side, self.input_size))
        return regions

    def detect(self, image_bgr: np.ndarray, regions: list[Crop] | None = None) -> list[Detection]:
        """People in ``regions`` of the image (default: all of ``self.regions``). A region as large as
        the frame is a whole-frame view; any other is a tile, whose people count only when whole in it."""
        if regions is None:
            regions = self.regions(image_bgr.shape[1], image_bgr.shape[0])
        return self.detect_many([image_bgr], [regions])[0]

    def detect_many(self, images_bgr: list[np.ndarray], regions: list[list[Crop]]) -> list[list[Detection]]:
        """:meth:`detect` on several images (one per source) with ONE network call for all their regions."""
        return self.run(self.prepare(images_bgr, regions))

    def prepare(self, images_bgr: list[np.ndarray], regions: list[list[Crop]]) -> "Prepared":
        """The first half of :meth:`detect_many`: the regions resampled into one network batch (after
        this the images are no longer needed, so :meth:`run` may happen later, on another thread)."""
        batches = [warp(image, r) for image, r in zip(images_bgr, regions) if r]
        batch = None if not batches else np.concatenate(batches) if len(batches) > 1 else batches[0]
        return Prepared(batch, [list(r) for r in regions], [image.shape[:2] for image in images_bgr])

    def run(self, prepared: "Prepared") -> list[list[Detection]]:
        """The second half of :meth:`detect_many`: the network, decoding, merging per image."""
        if prepared.batch is None:
            return [[] for _ in prepared.regions]
        found_per_region = self.decode(self.backend.infer(self.spec.normalise(prepared.batch)), len(prepared.batch))
        found, start = [], 0
        for shape, r in zip(prepared.shapes, prepared.regions):
            end = start + len(r)
            per_region = [[d.to_image(crop) for d in dets] for crop, dets in zip(r, found_per_region[start:end])]
            found.append(self._merge(per_region, r, shape))
            start = end
        return found

    def decode(self, outputs: dict[str, np.ndarray], n: int) -> list[list[Detection]]:
        """The network's outputs for ``n`` regions -> each region's detections in its input pixels,
        with scores of at least ``min_score``."""
        raise NotImplementedError

    def suppress(self, detections: list[Detection]) -> list[Detection]:
        """One detection per person among overlapping ones."""
        return nms(detections, NMS_IOU)

    def _merge(self, per_region: list[list[Detection]], regions: list[Crop], shape: tuple[int, int]) -> list[Detection]:
        h, w = shape
        whole: list[Detection] = []
        turned: list[Detection] = []
        tiled: list[Detection] = []
        for crop, found in zip(regions, per_region):
            if crop.side < max(w, h):
                tiled += [d for d in found if _whole_in_tile(d, crop, w, h)]
            elif crop.angle:
                turned += [replace(d, lying=True) for d in found if _lying(d)]
            else:
                whole += found
        whole = self.suppress(whole)
        tiled = [d for d in tiled if not any(_part_of(d, big) for big in whole)]
        # a turned view's people lying across the image are kept beside the upright view's, even inside
        # them (the upright view's box around someone lying is often poor and large): their keypoints
        # decide (PoseEstimator2D drops those that stand upright, then the doubles)
        return self.suppress(whole + tiled) + self.suppress(turned)


def _lying(d: Detection) -> bool:
    """A person found in a turned view may lie across the image: their box is at least ``LYING_ASPECT``
    as wide as tall there."""
    x0, y0, x1, y1 = d.extent
    return bool(x1 - x0 > LYING_ASPECT * (y1 - y0))


def _whole_in_tile(d: Detection, tile: Crop, width: int, height: int) -> bool:
    """A tile sees a person whole when their box keeps off every tile edge that is not the image's."""
    half = tile.side / 2.0
    lo = np.array(tile.centre) - half
    hi = np.array(tile.centre) + half
    margin = EDGE_MARGIN * tile.side
    x0, y0, x1, y1 = d.extent
    if (x1 - x0) > tile.side or (y1 - y0) > tile.side:
        return False
    cut = ((x0 <= lo[0] + margin and lo[0] > 0.5) or (y0 <= lo[1] + margin and lo[1] > 0.5)
           or (x1 >= hi[0] - margin and hi[0] < width - 1.5) or (y1 >= hi[1] - margin and hi[1] < height - 1.5))
    return not cut


def _part_of(d: Detection, big: Detection) -> bool:
    """A tile showing part of a large person (seen in the whole frame) yields a smaller "person"
    inside theirs; a genuinely different person that far inside would be much smaller still."""
    box, outer = d.extent, big.extent
    w = min(box[2], outer[2]) - max(box[0], outer[0])
    h = min(box[3], outer[3]) - max(box[1], outer[1])
    area = max(box[2] - box[0], 1e-6) * max(box[3] - box[1], 1e-6)
    inside = max(w, 0.0) * max(h, 0.0) / area
    side, outer_side = max(box[2:] - box[:2]), max(outer[2:] - outer[:2])
    return bool(inside > PART_INSIDE and side > PART_SCALE * outer_side)


def _tile_centres(length: int, side: float) -> np.ndarray:
    """Centres (pixel-centre coordinates) of tiles of ``side`` covering ``length`` with overlap."""
    count = max(1, int(np.ceil((length - side) / (side * TILE_STEP) - 1e-6)) + 1)
    return np.linspace(side / 2.0, length - side / 2.0, count) - 0.5
