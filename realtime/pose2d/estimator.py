"""PoseEstimator2D: the multi-person, top-down 2D pipeline.

detector -> one aspect-keeping crop per person -> ONE batched keypoint-model call for everyone ->
belief-map (or landmark) decoding -> LSP-14 keypoints in image pixels with per-joint confidence.

On video the detector is the expensive, jittery part, so (as real-time systems do) each person's
keypoints in one frame place their crop in the next. The detector's regions (the whole frame and its
tiles) are spread round-robin over ``detect_every`` frames, so no frame pays for all of them; only the
first frame of a video looks everywhere at once. Hysteresis keeps people: a new person needs
``person_score``, a followed one only ``keep_fraction`` of it, and a followed person below that is
dropped only after ``lost_frames`` poor frames in a row (a turn or a passer-by in front must not lose
them); the detector then looks around where they were on the next frame.
"""
from __future__ import annotations

import logging
import math
import time
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Callable, Sequence

import numpy as np

from realtime.config import Pose2DConfig
from realtime.pose2d.crops import Crop, box_crop, letterbox, warp
from realtime.pose2d.decode import decode_belief_maps, map_to_crop
from realtime.pose2d.detector import INPUT_SIZE as DETECTOR_INPUT, Detection, PersonDetector
from realtime.pose2d.images import MIN_SIDE, to_bgr8
from realtime.pose2d.landmarks import blazepose_to_lsp14
from realtime.pose2d.models import model_spec
from realtime.pose2d.refine import BeliefRefiner
from realtime.skeleton import LSP14

if TYPE_CHECKING:
    from realtime.pose2d.backends import Backend

log = logging.getLogger(__name__)

#: Keypoints of two people closer than this fraction of the box diagonal count as the same joint.
SAME_JOINT = 0.1
#: Two people sharing more than this fraction of their joints are one person found twice.
SAME_PERSON = 0.5
#: A tracked person's box shrinks to no less than this fraction of the last one per frame.
SHRINK = 0.85
#: A detection is a tracked person when its body centre is in their box and its size within this factor
#: above theirs, or down to PART_SIZE of theirs (a tile that cuts a person finds a smaller "person" inside).
SAME_SIZE = 2.0
PART_SIZE = 0.25


@dataclass
class Person2D:
    """One person in one image: box and LSP-14 keypoints in image pixels, and how sure we are."""

    bbox: np.ndarray          # (4,) x0, y0, x1, y1
    score: float              # mean of the keypoint model's own confidences (before any 3D refinement)
    keypoints: np.ndarray     # (14, 2) x, y in LSP14 order
    confidence: np.ndarray    # (14,) in [0, 1]; 0 = not found

    def to_dict(self) -> dict:
        return {
            "bbox": [round(float(v), 2) for v in self.bbox],
            "score": round(float(self.score), 4),
            "keypoints": {name: [round(float(x), 2), round(float(y), 2), round(float(c), 4)]
                          for name, (x, y), c in zip(LSP14, self.keypoints, self.confidence)},
        }


@dataclass(frozen=True)
class KeypointModel:
    """How one keypoint network's crops are placed and its outputs read (its input size and pixel
    range come from the model registry, ``realtime.pose2d.models.model_spec``)."""

    name: str
    #: Crop side over the person box's longer side.
    crop_scale: float
    #: outputs, keypoint_threshold -> keypoints (N, 14, 2) in crop pixels, confidence (N, 14).
    read: Callable[[dict[str, np.ndarray], float], tuple[np.ndarray, np.ndarray]]
    #: Its output is one (N, H, W, 14) set of belief maps, which the 3D feedback can refine.
    belief_maps: bool = False
    #: It takes BGR, not RGB, pixels (the channel order of the images it was trained on).
    bgr: bool = False
    #: Default ``[pose2d] person_score``: a person's mean keypoint confidence below this means no person.
    person_score: float = 0.2

    @property
    def input_size(self) -> int:
        return model_spec(self.name).input_size[0]

    def normalise(self, batch: np.ndarray) -> np.ndarray:
        """RGB 0..255 -> the network's channel order and input range."""
        if self.bgr:
            batch = np.ascontiguousarray(batch[..., ::-1])
        lo, hi = model_spec(self.name).input_range
        if (lo, hi) != (0.0, 255.0):
            batch *= (hi - lo) / 255.0
            batch += lo
        return batch


def _read_cpm(out: dict[str, np.ndarray], threshold: float) -> tuple[np.ndarray, np.ndarray]:
    (maps,) = out.values()
    points, confidence = decode_belief_maps(maps, threshold)
    return map_to_crop(points, maps.shape[1], model_spec("cpm").input_size[0]), confidence


def _read_blazepose(out: dict[str, np.ndarray], threshold: float) -> tuple[np.ndarray, np.ndarray]:
    """Landmark visibility times the pose-presence flag: visibility alone stays high on a crop that
    holds no person (the model assumes one is there), the flag is what MediaPipe tracks with."""
    landmarks = [v for v in out.values() if v.ndim == 2 and v.shape[1] == 195]
    flags = [v for v in out.values() if v.ndim == 2 and v.shape[1] == 1]
    if len(landmarks) != 1 or len(flags) != 1:
        raise ValueError(f"BlazePose outputs hold no single (N, 195) landmark and (N, 1) presence tensor: "
                         f"{ {k: v.shape for k, v in out.items()} }")
    points, confidence = blazepose_to_lsp14(landmarks[0])
    confidence *= np.clip(flags[0], 0.0, 1.0).astype(np.float32)
    confidence[confidence < threshold] = 0.0
    return points, confidence


#: Crop scales were chosen on the annotated images (tools/bench_2d.py): BlazePose, like MediaPipe's
#: own region of interest, wants more context around the person than the CPM. The CPM's peak beliefs
#: are higher with BGR input on 15 of 16 annotated people, 16 of 23 detected people in the photos and
#: 30 of 34 detections on the shop video, and its PCK is 85.5 vs 81.8 (docs/pose2d.md): it was
#: trained on BGR images.
MODELS: dict[str, KeypointModel] = {
    "cpm": KeypointModel("cpm", 1.25, _read_cpm, belief_maps=True, bgr=True, person_score=0.12),
    **{f"blazepose-{v}": KeypointModel(f"blazepose-{v}", 1.5, _read_blazepose) for v in ("lite", "full", "heavy")},
}
#: The detector's full-body circle is wider than a person's keypoint box: the median ratio of its
#: diameter to the box's longer side on the annotated images.
DETECTION_CIRCLE = 1.3


#: The detector's region around a lost person: this many times their box's longer side (its
#: full-body square, ``DETECTION_CIRCLE`` times the box, must fit in it with room to move).
LOST_REGION = 2.0


@dataclass
class _Track:
    """Where to look for a person in the next frame."""

    box: np.ndarray
    score: float
    #: Poor frames in a row so far.
    misses: int = 0
    #: The person was reported at least once; a fresh detection the keypoint model rejects is dropped
    #: at once and silently (a detector false positive is not a lost person).
    confirmed: bool = True


@dataclass
class PoseEstimator2D:
    """Finds every person's LSP-14 keypoints in BGR frames; keeps a little state between video frames."""

    keypoint_backend: "Backend"
    detector: PersonDetector
    model: KeypointModel
    config: Pose2DConfig = field(default_factory=Pose2DConfig)
    #: The paper's 3D -> 2D feedback on belief maps (None = off, or a model without belief maps).
    refiner: BeliefRefiner | None = None
    last_timings: dict[str, float] = field(default_factory=dict)
    detector_runs: int = 0
    _tracks: list[_Track] = field(default_factory=list)
    #: Frames since the last ``reset`` (0 = the next frame is the first).
    _frame: int = 0
    #: Boxes of the people dropped in the last frame: the detector looks there next.
    _lost_boxes: list[np.ndarray] = field(default_factory=list)
    #: False for an estimator made by :meth:`another`: its networks are closed by the first one.
    owns_networks: bool = True

    @classmethod
    def create(cls, backend: str | None = None, model: str | None = None,
               config: Pose2DConfig | None = None) -> "PoseEstimator2D":
        """Load the keypoint model and the person detector on one backend (``auto`` = fastest here)."""
        from realtime.pose2d.backends import create_backend

        config = config or Pose2DConfig()
        model = model or config.model
        backend = backend or config.backend
        if model not in MODELS:
            raise ValueError(f"unknown 2D model {model!r} (known: {', '.join(MODELS)})")
        keypoints = create_backend(model, backend=backend, config=config)
        detector = create_backend("detector", backend=backend, config=config)
        person_detector = PersonDetector(detector, config.detector_score, config.detector_tiles)
        refiner = _refiner(config) if MODELS[model].belief_maps else None
        return cls(keypoints, person_detector, MODELS[model], config, refiner)

    def another(self) -> "PoseEstimator2D":
        """An estimator for another video sharing this one's networks, so that :func:`estimate_sources`
        puts the crops of both videos into one batch. Closing it leaves the networks open."""
        return PoseEstimator2D(self.keypoint_backend, self.detector, self.model, self.config, self.refiner,
                               owns_networks=False)

    @property
    def backend(self) -> str:
        return self.keypoint_backend.name

    @property
    def person_score(self) -> float:
        """The mean keypoint confidence below which a crop holds no person (config, else the model's)."""
        return self.model.person_score if math.isnan(self.config.person_score) else self.config.person_score

    @property
    def lost(self) -> bool:
        """Someone was dropped in the last frame (``lost_frames`` poor frames): the detector looks
        around where they were on the next."""
        return bool(self._lost_boxes)

    def reset(self) -> None:
        """Forget the previous frame (a new video or source): the next call runs the whole detector."""
        self._tracks = []
        self._frame = 0
        self._lost_boxes = []

    def seed(self, boxes: np.ndarray, score: float = 1.0) -> None:
        """Start following people in given boxes (e.g. from an external detector) from the next frame."""
        self._tracks = [_Track(np.asarray(b, np.float64), score) for b in np.asarray(boxes, np.float64).reshape(-1, 4)]
        self._frame = max(self._frame, 1)
        self._lost_boxes = []

    def detector_regions(self, width: int, height: int) -> list[Crop]:
        """Where the detector looks in this frame: everywhere on the first frame; then the regions of
        this frame's round-robin slot (region i of R in slot ``i * N // R`` of ``N = detect_every``),
        plus a region around each person lost in the last frame."""
        regions = self.detector.regions(width, height)
        if self._frame == 0:
            return regions
        every = self.config.detect_every
        slot = self._frame % every
        due = [r for i, r in enumerate(regions) if i * every // len(regions) == slot]
        return due + [_around(box, width, height) for box in self._lost_boxes]

    def close(self) -> None:
        if self.owns_networks:
            self.keypoint_backend.close()
            self.detector.backend.close()

    def estimate(self, image_bgr: np.ndarray) -> list[Person2D]:
        """Every person in one frame, best score first. Frames too small to hold a person give []."""
        return estimate_sources([self], [image_bgr])[0]

    def estimate_in_boxes(self, image_bgr: np.ndarray, boxes: np.ndarray) -> list[Person2D]:
        """Keypoints of the people in given boxes (e.g. ground truth), one per box, in box order,
        without the detector and without touching the video state."""
        image = to_bgr8(image_bgr)
        m = self.model
        crops = [box_crop(box, m.input_size, m.crop_scale) for box in np.asarray(boxes, np.float64).reshape(-1, 4)]
        if not crops:
            return []
        out = self.keypoint_backend.infer(self._batch(image, crops))
        points, confidence, evidence = self._read(out, crops)
        return [_person(crop, p, c, e) for crop, p, c, e in zip(crops, points, confidence, evidence)]

    def _batch(self, image: np.ndarray, crops: list[Crop]) -> np.ndarray:
        return self.model.normalise(warp(image, crops))

    def _read(self, out: dict[str, np.ndarray], crops: list[Crop]) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """Keypoints (crop pixels) and confidences, refined when a refiner is set, and the model's own
        confidences (the image evidence that a person is there, which the feedback must not inflate)."""
        if self.refiner is None or not self.model.belief_maps:
            points, confidence = self.model.read(out, self.config.keypoint_threshold)
            return points, confidence, confidence
        (maps,) = out.values()
        r = self.refiner.refine(maps, crops, self.config.keypoint_threshold)
        return map_to_crop(r.keypoints, maps.shape[1], self.model.input_size), r.confidence, r.cpm_confidence

    def _candidates(self, detections: list[Detection] | None) -> list[_Track]:
        """Who to look at in this frame: the people followed from the last one and new detections."""
        candidates = list(self._tracks)
        if detections is not None:
            candidates = _merge(candidates, detections)
            self.detector_runs += 1
        self._frame += 1
        return sorted(candidates, key=lambda c: -c.score)[: self.config.max_people]

    def _people(self, crops: list[Crop], candidates: list[_Track], points: np.ndarray, confidence: np.ndarray,
                evidence: np.ndarray) -> list[Person2D]:
        """The people found; the tracks for the next frame (found people, and followed people on a
        poor frame keeping their box); the people lost for good."""
        found, poor = [], []
        for crop, p, c, e, track in zip(crops, points, confidence, evidence, candidates):
            person = _person(crop, p, c, e)
            if person.score >= self.person_score * (self.config.keep_fraction if track.confirmed else 1.0):
                found.append((person, track.box))
            elif track.confirmed:
                poor.append(_Track(track.box, track.score, track.misses + 1))
        found = _deduplicate(sorted(found, key=lambda pb: -pb[0].score))
        poor = [t for t in poor if not any(_inside(t.box, p.bbox) for p, _ in found)]
        self._lost_boxes = [t.box for t in poor if t.misses >= self.config.lost_frames]
        self._tracks = ([_Track(_next_box(p.bbox, box), p.score) for p, box in found]
                        + [t for t in poor if t.misses < self.config.lost_frames])
        return [p for p, _ in found]


def estimate_sources(estimators: Sequence[PoseEstimator2D], images: Sequence[np.ndarray]) -> list[list[Person2D]]:
    """One frame of each of several videos, each followed by its own estimator, with ONE detector call
    and ONE keypoint-network call for all of them: a GPU is only busy with large batches, and on a CPU
    one call saves the per-call overhead. The estimators must share their networks
    (:meth:`PoseEstimator2D.another`). Frames too small to hold a person give [] and leave their
    estimator's state alone."""
    if len(estimators) != len(images):
        raise ValueError(f"estimate_sources: {len(estimators)} estimators for {len(images)} images")
    if not estimators:
        return []
    lead = estimators[0]
    if any(e.keypoint_backend is not lead.keypoint_backend or e.detector is not lead.detector for e in estimators):
        raise ValueError("estimate_sources: the estimators must share their networks (PoseEstimator2D.another)")
    t0 = time.perf_counter()
    frames = {i: to_bgr8(image) for i, image in enumerate(images)
              if not (isinstance(image, np.ndarray) and (image.ndim < 2 or min(image.shape[:2]) < MIN_SIDE))}
    regions = {i: estimators[i].detector_regions(f.shape[1], f.shape[0]) for i, f in frames.items()}
    looking = [i for i in frames if regions[i]]
    detections = dict(zip(looking, lead.detector.detect_many([frames[i] for i in looking],
                                                             [regions[i] for i in looking])))
    candidates = {i: estimators[i]._candidates(detections.get(i)) for i in frames}
    t1 = time.perf_counter()

    m = lead.model
    crops = {i: [box_crop(c.box, m.input_size, m.crop_scale) for c in candidates[i]] for i in frames}
    batches = [lead._batch(frames[i], crops[i]) for i in frames if crops[i]]
    t2 = time.perf_counter()
    out = lead.keypoint_backend.infer(batches[0] if len(batches) == 1 else np.concatenate(batches)) if batches else {}
    t3 = time.perf_counter()
    every_crop = [c for i in frames for c in crops[i]]
    points, confidence, evidence = lead._read(out, every_crop) if every_crop else (np.empty((0, len(LSP14))),) * 3
    people: list[list[Person2D]] = [[] for _ in images]
    start = 0
    for i in frames:
        end = start + len(crops[i])
        people[i] = estimators[i]._people(crops[i], candidates[i], points[start:end], confidence[start:end],
                                          evidence[start:end])
        start = end
    t4 = time.perf_counter()
    timings = {"detect": (t1 - t0) * 1e3, "crop": (t2 - t1) * 1e3, "infer": (t3 - t2) * 1e3, "decode": (t4 - t3) * 1e3}
    for i, est in enumerate(estimators):
        est.last_timings = dict(timings) if i in frames else dict.fromkeys(timings, 0.0)
    return people


def _person(crop: Crop, points: np.ndarray, confidence: np.ndarray, evidence: np.ndarray) -> Person2D:
    keypoints = crop.to_image(points)
    return Person2D(_keypoint_box(keypoints, confidence, crop), float(evidence.mean()), keypoints, confidence)


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


def _merge(tracked: list[_Track], detections: list[Detection]) -> list[_Track]:
    """Tracked people keep their keypoint boxes (tighter than a detection's), except those on a poor
    streak, whose box the detection replaces (their last keypoint box is what went wrong); other
    detections are new people."""
    merged = list(tracked)
    for d in detections:
        box = _detection_box(d)
        same = [i for i, t in enumerate(merged[:len(tracked)]) if _same_place(box, d.keypoints[0], t.box)]
        if not same:
            merged.append(_Track(box, d.score, confirmed=False))
        elif merged[same[0]].misses:
            t = merged[same[0]]
            merged[same[0]] = _Track(box, t.score, t.misses, t.confirmed)
    return merged


def _inside(box: np.ndarray, other: np.ndarray) -> bool:
    """The centre of ``box`` lies in ``other`` (a poor track where someone else was found is theirs)."""
    cx, cy = (box[:2] + box[2:]) / 2.0
    return bool(other[0] <= cx <= other[2] and other[1] <= cy <= other[3])


def _around(box: np.ndarray, width: int, height: int) -> Crop:
    """The detector's region around a lost person's last box (the whole frame if it would be larger)."""
    side = max(LOST_REGION * float(max(box[2:] - box[:2])), float(DETECTOR_INPUT))
    if side >= max(width, height):
        return letterbox(width, height, DETECTOR_INPUT)
    centre = (box[:2] + box[2:]) / 2.0
    return Crop((float(centre[0]), float(centre[1])), side, DETECTOR_INPUT)


def _same_place(box: np.ndarray, centre: np.ndarray, tracked: np.ndarray) -> bool:
    inside = tracked[0] <= centre[0] <= tracked[2] and tracked[1] <= centre[1] <= tracked[3]
    size, tracked_size = max(box[2:] - box[:2]), max(max(tracked[2:] - tracked[:2]), 1.0)
    return bool(inside and PART_SIZE <= size / tracked_size <= SAME_SIZE)


def _detection_box(d: Detection) -> np.ndarray:
    """A person box (of the size keypoint boxes have) centred on the detector's full-body circle."""
    box = d.person_box
    centre = (box[:2] + box[2:]) / 2.0
    half = (box[2:] - box[:2]) / (2.0 * DETECTION_CIRCLE)
    return np.concatenate([centre - half, centre + half])


def _keypoint_box(keypoints: np.ndarray, confidence: np.ndarray, crop: Crop) -> np.ndarray:
    found = keypoints[confidence > 0]
    if len(found) < 2:
        half = crop.side / 2.0
        return np.array([crop.centre[0] - half, crop.centre[1] - half, crop.centre[0] + half, crop.centre[1] + half])
    return np.concatenate([found.min(axis=0), found.max(axis=0)])


def _next_box(found: np.ndarray, previous: np.ndarray) -> np.ndarray:
    """Where to look next frame: the keypoint box, shrinking by at most SHRINK per frame. A person
    whose legs go unseen would otherwise get a tighter crop each frame until the crop holds a hand."""
    centre = (found[:2] + found[2:]) / 2.0
    half = np.maximum(found[2:] - found[:2], SHRINK * (previous[2:] - previous[:2])) / 2.0
    return np.concatenate([centre - half, centre + half])


def _deduplicate(people: list[tuple[Person2D, np.ndarray]]) -> list[tuple[Person2D, np.ndarray]]:
    """Drop a person whose joints mostly coincide with a better-scored one (two crops on one body)."""
    kept: list[tuple[Person2D, np.ndarray]] = []
    for p, box in people:
        if not any(_same_person(p, q) for q, _ in kept):
            kept.append((p, box))
    return kept


def _same_person(a: Person2D, b: Person2D) -> bool:
    both = (a.confidence > 0) & (b.confidence > 0)
    if not both.any():
        return False
    diag = max(float(np.hypot(*(a.bbox[2:] - a.bbox[:2]))), float(np.hypot(*(b.bbox[2:] - b.bbox[:2]))), 1.0)
    close = np.linalg.norm(a.keypoints[both] - b.keypoints[both], axis=1) < SAME_JOINT * diag
    return close.sum() > SAME_PERSON * len(LSP14)
