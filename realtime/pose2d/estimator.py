"""PoseEstimator2D: every person's LSP-14 keypoints in still images (stateless, like MediaPipe's IMAGE mode).

person detector (whole image + tiles, one batch) -> one aspect-keeping crop per person -> ONE
batched keypoint-network call for everyone -> keypoints (and, with belief maps, the paper's 3D
feedback) -> LSP-14 keypoints in image pixels with a confidence per joint.

Each call stands alone: the detector looks everywhere, nothing is remembered, so a list of
unrelated photos gives the same people in any order. Video, where the people of one frame place the
crops of the next and the detector is spread over frames, is :class:`realtime.pose2d.video.VideoFollower`
(``estimator.video()``), which shares this estimator's networks.
"""
from __future__ import annotations

import logging
import math
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Sequence

import numpy as np

from realtime.config import Pose2DConfig
from realtime.pose2d.crops import Crop, box_crop, warp
from realtime.pose2d.detection import Detection, PersonDetector
from realtime.pose2d.images import ImageError, check_frame, load_image
from realtime.pose2d.keypoints import read_keypoints
from realtime.pose2d.refine import BeliefRefiner
from realtime.pose2d.registry import REGISTRY, ModelSpec, names
from realtime.skeleton import LSP14

if TYPE_CHECKING:
    from realtime.pose2d.backends import Backend
    from realtime.pose2d.video import VideoFollower

log = logging.getLogger(__name__)

#: Keypoints of two people closer than this fraction of the box diagonal count as the same joint.
SAME_JOINT = 0.1
#: Two people sharing more than this fraction of their joints are one person found twice.
SAME_PERSON = 0.5


@dataclass
class Person2D:
    """One person in one image: box and LSP-14 keypoints in image pixels, and how sure we are."""

    bbox: np.ndarray          # (4,) x0, y0, x1, y1
    score: float              # mean of the keypoint network's own confidences (before any 3D refinement)
    keypoints: np.ndarray     # (14, 2) x, y in LSP14 order
    confidence: np.ndarray    # (14,) in [0, 1]; 0 = not found

    def to_dict(self) -> dict:
        return {
            "bbox": [round(float(v), 2) for v in self.bbox],
            "score": round(float(self.score), 4),
            "keypoints": {name: [round(float(x), 2), round(float(y), 2), round(float(c), 4)]
                          for name, (x, y), c in zip(LSP14, self.keypoints, self.confidence)},
        }


@dataclass
class PoseEstimator2D:
    """The 2D networks (a person detector and a keypoint network on one backend) and how to use them."""

    keypoint_backend: "Backend"
    detector: PersonDetector
    spec: ModelSpec
    config: Pose2DConfig = field(default_factory=Pose2DConfig)
    #: The paper's 3D -> 2D feedback on belief maps (None = off, or a network without belief maps).
    refiner: BeliefRefiner | None = None
    #: Milliseconds of each phase in the last call: detect, crop, infer, decode.
    last_timings: dict[str, float] = field(default_factory=dict)

    @classmethod
    def create(cls, backend: str | None = None, model: str | None = None, config: Pose2DConfig | None = None,
               detector: str | None = None) -> "PoseEstimator2D":
        """Load the keypoint network and the person detector on one backend (``auto`` = fastest here)."""
        from realtime.pose2d.backends import create_backend
        from realtime.pose2d.detection import create_detector

        config = config or Pose2DConfig()
        model = model or config.model
        detector = detector or config.detector
        backend = backend or config.backend
        if model not in names("keypoints"):
            raise ValueError(f"unknown 2D keypoint model {model!r} (known: {', '.join(names('keypoints'))})")
        if detector not in names("detector"):
            raise ValueError(f"unknown person detector {detector!r} (known: {', '.join(names('detector'))})")
        keypoints = create_backend(model, backend=backend, config=config)
        try:
            detector_backend = create_backend(detector, backend=backend, config=config)
        except Exception:
            keypoints.close()
            raise
        score = None if math.isnan(config.detector_score) else config.detector_score
        person_detector = create_detector(detector, detector_backend, score, config.detector_tiles)
        spec = REGISTRY[model]
        refiner = _refiner(config) if _has_belief_maps(spec) else None
        return cls(keypoints, person_detector, spec, config, refiner)

    @property
    def model(self) -> str:
        return self.spec.name

    @property
    def backend(self) -> str:
        return self.keypoint_backend.name

    @property
    def person_score(self) -> float:
        """The mean keypoint confidence below which a crop holds no person (config, else the model's)."""
        return self.spec.min_score if math.isnan(self.config.person_score) else self.config.person_score

    def video(self, sources: int = 1) -> "VideoFollower":
        """A follower of ``sources`` videos (one state each) sharing these networks (VIDEO mode)."""
        from realtime.pose2d.video import VideoFollower

        return VideoFollower(self, sources)

    def close(self) -> None:
        self.keypoint_backend.close()
        self.detector.backend.close()

    def __enter__(self) -> "PoseEstimator2D":
        return self

    def __exit__(self, *exc) -> None:
        self.close()

    def estimate(self, image: "np.ndarray | str | Path | Sequence[np.ndarray | str | Path]"
                 ) -> "list[Person2D] | list[list[Person2D]]":
        """Every person in an image (an array in BGR like OpenCV's, or a file path), best score first.
        Given a list of images, a list of results: their people go through the networks together.
        Each image stands alone (no state between calls). An image too small or malformed raises
        :class:`ImageError` naming the problem."""
        if isinstance(image, (list, tuple)):
            return self.estimate_many(image)
        return self.estimate_many([image])[0]

    def estimate_many(self, images: Sequence["np.ndarray | str | Path"]) -> list[list[Person2D]]:
        """:meth:`estimate` on several images with one detector and one keypoint call for all."""
        frames = [_image(im, i) for i, im in enumerate(images)]
        if not frames:
            return []
        t0 = time.perf_counter()
        regions = [self.detector.regions(f.shape[1], f.shape[0]) for f in frames]
        detections = self.detector.detect_many(frames, regions)
        t1 = time.perf_counter()
        people = self.people_in_detections(frames, detections)
        self.last_timings["detect"] = (t1 - t0) * 1e3
        return people

    def people_in_detections(self, frames: Sequence[np.ndarray], detections: Sequence[Sequence[Detection]]
                             ) -> list[list[Person2D]]:
        """The rest of :meth:`estimate` after the detector: the best ``max_people`` detections of each
        frame through the keypoint network, people below ``person_score`` dropped, doubles removed."""
        boxes = [[d.box for d in sorted(found, key=lambda d: -d.score)][: self.config.max_people]
                 for found in detections]
        people = self.keypoints_in_boxes(frames, boxes)
        return [deduplicate(sorted([p for p in found if p.score >= self.person_score], key=lambda p: -p.score))
                for found in people]

    def estimate_in_boxes(self, image_bgr: np.ndarray, boxes: np.ndarray) -> list[Person2D]:
        """Keypoints of the people in given boxes (keypoint-box sized, e.g. ground truth or another
        detector's), one per box, in box order, whatever their score."""
        return self.keypoints_in_boxes([_image(image_bgr, 0)], [np.asarray(boxes, np.float64).reshape(-1, 4)])[0]

    def keypoints_in_boxes(self, frames: Sequence[np.ndarray], boxes: Sequence[Sequence[np.ndarray]]
                           ) -> list[list[Person2D]]:
        """One keypoint-network batch for the people in ``boxes`` of each frame (8-bit BGR frames)."""
        t0 = time.perf_counter()
        size, scale = self.spec.input_size[0], self.spec.crop_scale
        crops = [[box_crop(b, size, scale) for b in frame_boxes] for frame_boxes in boxes]
        batches = [warp(f, c) for f, c in zip(frames, crops) if c]
        t1 = time.perf_counter()
        every = [c for frame_crops in crops for c in frame_crops]
        people: list[list[Person2D]] = [[] for _ in frames]
        if every:
            batch = batches[0] if len(batches) == 1 else np.concatenate(batches)
            out = self.keypoint_backend.infer(self.spec.normalise(batch))
            t2 = time.perf_counter()
            flat = self._read(out, every)
            start = 0
            for i, frame_crops in enumerate(crops):
                people[i] = flat[start:start + len(frame_crops)]
                start += len(frame_crops)
        else:
            t2 = t1
        t3 = time.perf_counter()
        self.last_timings = {"detect": 0.0, "crop": (t1 - t0) * 1e3, "infer": (t2 - t1) * 1e3,
                             "decode": (t3 - t2) * 1e3}
        return people

    def _read(self, out: dict[str, np.ndarray], crops: list[Crop]) -> list[Person2D]:
        """People from the network's outputs: keypoints refined by the 3D feedback when it is on; the
        person's score stays the network's own confidences (the image evidence, which the feedback
        must not inflate)."""
        read = read_keypoints(self.spec, out, self.config.keypoint_threshold)
        points, confidence, evidence = read.keypoints, read.confidence, read.confidence
        if self.refiner is not None and read.maps is not None:
            size = self.spec.input_size[0]
            own = None if self.spec.decoder == "lsp_maps" else read.to_maps(size)
            r = self.refiner.refine(read.maps, crops, self.config.keypoint_threshold, keypoints=own,
                                    confidence=None if own is None else read.confidence, has_map=read.has_map)
            stride = size / read.maps.shape[1]
            points, confidence = (r.keypoints + 0.5) * stride - 0.5, r.confidence
        return [person_in_crop(c, p, k, e) for c, p, k, e in zip(crops, points, confidence, evidence)]


def person_in_crop(crop: Crop, points: np.ndarray, confidence: np.ndarray, evidence: np.ndarray) -> Person2D:
    """A person from crop-pixel keypoints: image keypoints, their box, the score from ``evidence``."""
    keypoints = crop.to_image(points)
    return Person2D(keypoint_box(keypoints, confidence, crop), float(evidence.mean()), keypoints, confidence)


def keypoint_box(keypoints: np.ndarray, confidence: np.ndarray, crop: Crop) -> np.ndarray:
    found = keypoints[confidence > 0]
    if len(found) < 2:
        half = crop.side / 2.0
        return np.array([crop.centre[0] - half, crop.centre[1] - half, crop.centre[0] + half, crop.centre[1] + half])
    return np.concatenate([found.min(axis=0), found.max(axis=0)])


def _image(image: "np.ndarray | str | Path", index: int) -> np.ndarray:
    if isinstance(image, (str, Path)):
        return load_image(image)
    return check_frame(image, f"image {index}")


def _has_belief_maps(spec: ModelSpec) -> bool:
    return spec.decoder in ("lsp_maps", "mpii_maps", "movenet")


def _refiner(config: Pose2DConfig) -> BeliefRefiner | None:
    """The 3D feedback when configured. A missing *default* prior (not yet trained in this checkout)
    turns it off with a warning; a prior file the user named must load."""
    if not config.refine_3d:
        return None
    from realtime.lifting import PosePrior, PriorError

    try:
        prior = PosePrior.load(config.refine_prior or None)
    except PriorError as e:
        if config.refine_prior:
            raise PriorError(f"[pose2d] refine_prior: {e}") from None
        log.warning("3D refinement off: %s", e)
        return None
    return BeliefRefiner.create(prior, config.refine_weight, config.refine_sigma, config.refine_iterations,
                                config.refine_leave_one_out)


def deduplicate(people: list[Person2D]) -> list[Person2D]:
    """Drop a person whose joints mostly coincide with a better-scored one (two crops on one body);
    ``people`` best first."""
    kept: list[Person2D] = []
    for p in people:
        if not any(same_person(p, q) for q in kept):
            kept.append(p)
    return kept


def same_person(a: Person2D, b: Person2D) -> bool:
    both = (a.confidence > 0) & (b.confidence > 0)
    if not both.any():
        return False
    diag = max(float(np.hypot(*(a.bbox[2:] - a.bbox[:2]))), float(np.hypot(*(b.bbox[2:] - b.bbox[:2]))), 1.0)
    close = np.linalg.norm(a.keypoints[both] - b.keypoints[both], axis=1) < SAME_JOINT * diag
    return close.sum() > SAME_PERSON * len(LSP14)


__all__ = ["Detection", "ImageError", "Person2D", "PoseEstimator2D", "deduplicate", "person_in_crop"]
