"""PoseEstimator2D: every person's LSP-14 keypoints in still images (stateless, like MediaPipe's IMAGE mode).

person detector (whole image + tiles, one batch) -> one aspect-keeping crop per person -> ONE
batched keypoint-network call for everyone -> keypoints (and, with belief maps, the paper's 3D
feedback) -> LSP-14 keypoints in image pixels with a confidence per joint.

Each call stands alone: the detector looks everywhere, nothing is remembered, so a list of
unrelated photos gives the same people in any order. Video, where the people of one frame place the
crops of the next and the detector is spread over frames, is :class:`realtime.pose2d.video.VideoFollower`
(``VideoFollower(estimator)``), which shares this estimator's networks.
"""
from __future__ import annotations

import logging
import math
import time
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import TYPE_CHECKING, Sequence

import numpy as np

from realtime.boxes import covered
from realtime.config import Pose2DConfig
from realtime.pose2d.crops import Crop, box_crop, warp
from realtime.pose2d.detection import Detection, PersonDetector
from realtime.pose2d.images import ImageError, check_frame, load_image
from realtime.pose2d.keypoints import KeypointOutput, merge_mirrored, read_keypoints
from realtime.pose2d.refine import BeliefRefiner
from realtime.networks import REGISTRY, ModelSpec, names
from realtime.skeleton import LSP14, UPRIGHT_LEAN_DEG, torso_lean
from realtime.transport.schema import Person

if TYPE_CHECKING:
    from realtime.lifting import Camera, LiftingSetup
    from realtime.pose2d.backends import Backend

log = logging.getLogger(__name__)

#: Keypoints of two people closer than this fraction of the box diagonal count as the same joint.
SAME_JOINT = 0.1
#: Two people sharing more than this fraction of their joints are one person found twice.
SAME_PERSON = 0.5
#: A person whose torso leans more than this from upright (degrees) is cropped again along their body:
#: the keypoint networks learnt upright people (a person lying on the floor, crawling, upside down).
TURN_ABOVE_DEG = UPRIGHT_LEAN_DEG
TURN = float(np.radians(TURN_ABOVE_DEG))
#: The flip test's two reads of a joint agree within this fraction of the crop's side.
MIRROR_AGREE = 0.1
#: A box this close to the image's bottom edge (a fraction of the image's height) reaches it.
CUT_MARGIN = 0.01
#: A keypoint within this fraction of its person's box (longer side) of the image's edge is on the edge
#: (:meth:`PoseEstimator2D.cut_off`; chosen by ``tools/bench_2d.py --edge``).
EDGE_MARGIN = 0.1
#: A keypoint beyond the image's edge (the network's guess: no pixel of it was seen) needs this
#: confidence (inf: never reported; chosen by ``tools/bench_2d.py --edge`` on both halves).
BEYOND_CONFIDENCE = math.inf
#: Still images go through the networks this many at a time (their detector regions in one batch).
PHOTO_BATCH = 8
#: A person only a turned view found is dropped when more of their box than this is inside better-scored people,
COVERED_BY_OTHERS = 0.5
#: or when their score is below this many times ``person_score`` (on the shared photos, people lying
#: across turned photos scored 0.43-0.80 with MoveNet Lightning, what else the turned views found 0.25-0.37).
LYING_SCORE = 2.0


#: Earlier name of the pipeline's one person type (``realtime.transport.schema.Person``), kept for
#: code written against it.
Person2D = Person


@dataclass
class PoseEstimator2D:
    """The 2D networks (a person detector and a keypoint network on one backend) and how to use them."""

    keypoint_backend: "Backend"
    detector: PersonDetector
    spec: ModelSpec
    config: Pose2DConfig = field(default_factory=Pose2DConfig)
    #: The prior and lifters the 3D feedback uses (None = feedback off, or a network without belief maps).
    lifting: "LiftingSetup | None" = None
    #: Milliseconds of each phase in the last call: detect, crop, infer, decode.
    last_timings: dict[str, float] = field(default_factory=dict, init=False)
    _refiners: dict = field(default_factory=dict, repr=False, init=False)

    @classmethod
    def create(cls, backend: str | None = None, model: str | None = None, config: Pose2DConfig | None = None,
               detector: str | None = None, lifting: "LiftingSetup | None" = None) -> "PoseEstimator2D":
        """Load the keypoint network and the person detector on one backend (``auto`` = fastest here).
        With ``[pose2d] refine_3d``, the 3D feedback lifts with ``lifting`` (the process's lifting
        setup; None = one built from the default ``[lifting]`` settings)."""
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
        person_detector = create_detector(detector, detector_backend, config.detector_score, config.detector_tiles)
        spec = REGISTRY[model]
        if not (config.refine_3d and _has_belief_maps(spec)):
            lifting = None
        elif lifting is None:
            from realtime.config import LiftingConfig
            from realtime.lifting import LiftingSetup
            lifting = LiftingSetup.from_config(LiftingConfig())
        return cls(keypoints, person_detector, spec, config, lifting)

    @property
    def model(self) -> str:
        return self.spec.name

    @property
    def backend(self) -> str:
        return self.keypoint_backend.name

    @property
    def person_score(self) -> float:
        """The mean keypoint confidence below which a crop holds no person (config, else the model's)."""
        return self.spec.min_score if self.config.person_score is None else self.config.person_score

    def refiner(self, camera: "Camera | None" = None) -> BeliefRefiner | None:
        """The 3D feedback for a camera (its lifter is the one the lifting workers use for that camera's
        pitch), or None when the feedback is off."""
        if self.lifting is None:
            return None
        pitch = camera.pitch_deg if camera is not None else self.lifting.config.camera_pitch_deg
        if pitch not in self._refiners:
            c = self.config
            self._refiners[pitch] = BeliefRefiner(self.lifting.lifter(pitch), c.refine_weight, c.refine_sigma,
                                                  c.refine_iterations, c.refine_leave_one_out)
        return self._refiners[pitch]

    def warm_up(self, sources: int = 1, frame_size: tuple[int, int] = (1920, 1080)) -> None:
        """Make both networks ready for the batches a stream of ``sources`` videos sends them (the
        detector's first look at every region of a frame of ``frame_size``, the keypoints of
        ``max_people`` a source, mirrored too with the flip test): on a GPU this captures their CUDA
        graphs now rather than during a stream's first seconds."""
        mirrored = 2 if self._flip_test else 1
        self.keypoint_backend.warm_up(self.config.max_people * sources * mirrored)
        self.detector.backend.warm_up(len(self.detector.regions(*frame_size)) * sources)

    def close(self) -> None:
        self.keypoint_backend.close()
        self.detector.backend.close()

    def __enter__(self) -> "PoseEstimator2D":
        return self

    def __exit__(self, *exc) -> None:
        self.close()

    def estimate(self, image: "np.ndarray | str | Path | Sequence[np.ndarray | str | Path]"
                 ) -> "list[Person] | list[list[Person]]":
        """Every person in an image (an array in BGR like OpenCV's, or a file path), best score first.
        Given a list of images, a list of results: their people go through the networks together.
        Each image stands alone (no state between calls). An image too small or malformed raises
        :class:`ImageError` naming the problem."""
        if isinstance(image, (list, tuple)):
            return self.estimate_many(image)
        return self.estimate_many([image])[0]

    def estimate_many(self, images: Sequence["np.ndarray | str | Path"]) -> list[list[Person]]:
        """:meth:`estimate` on several images, :func:`photo_batches` of them at a time, each batch
        with one detector and one keypoint call."""
        return [people for frames in photo_batches(images) for people in self._estimate_batch(frames)]

    def _estimate_batch(self, frames: list[np.ndarray]) -> list[list[Person]]:
        t0 = time.perf_counter()
        detections = self.detect(frames)
        t1 = time.perf_counter()
        people = self.people_in_detections(frames, detections)
        self.last_timings["detect"] = (t1 - t0) * 1e3
        return people

    def detect(self, frames: Sequence[np.ndarray]) -> list[list[Detection]]:
        """The first step of :meth:`estimate` (8-bit BGR frames): the person detector's people in each
        frame, looked for everywhere (the whole frame, its tiles and, with ``detector_turns``, the
        frame turned a quarter each way)."""
        regions = [self.detector.regions(f.shape[1], f.shape[0], self.config.detector_turns) for f in frames]
        return self.detector.detect_many(frames, regions)

    def people_in_detections(self, frames: Sequence[np.ndarray], detections: Sequence[Sequence[Detection]]
                             ) -> list[list[Person]]:
        """The rest of :meth:`estimate` after the detector: the best ``max_people`` detections of each
        frame through the keypoint network, people below ``person_score`` dropped, doubles removed."""
        ranked = [sorted(found, key=lambda d: (d.lying, -d.score))[: self.config.max_people] for found in detections]
        boxes = [[d.box for d in found] for found in ranked]
        cameras = [self.camera()] * len(frames)
        people = self.keypoints_in_boxes(frames, boxes, cameras)
        crop_of = {id(p): (b, 0.0) for found, frame_boxes in zip(people, boxes) for p, b in zip(found, frame_boxes)}
        # once more in crops turned along the body, the best score kept: people whose torso leans over
        # TURN_ABOVE_DEG by its angle, and people in a box wider than tall (lying across the image,
        # where the upright crop's keypoints may not show which way) both ways a quarter
        turned = [[(k, a) for k, (lean, box) in enumerate(zip(leans(found), frame_boxes))
                   for a in _turns(lean, box)] for found, frame_boxes in zip(people, boxes)]
        if any(turned):
            again = self.keypoints_in_boxes(frames, [[boxes[i][k] for k, _ in t] for i, t in enumerate(turned)],
                                            cameras, [[a for _, a in t] for t in turned])
            crop_of.update({id(p): (boxes[i][k], a) for i, (t, found) in enumerate(zip(turned, again))
                            for (k, a), p in zip(t, found)})
            keep_surer(people, [[k for k, _ in t] for t in turned], again)
        # once more as if their body went on below the image: people the image's bottom edge cuts
        below = [[k for k, d in enumerate(dets) if reaches_bottom(d.extent, f.shape[0])]
                 for dets, f in zip(ranked, frames)]
        if any(below):
            extended = [[cut_below(boxes[i][k]) for k in rows] for i, rows in enumerate(below)]
            again = self.keypoints_in_boxes(frames, extended, cameras)
            crop_of.update({id(p): (b, 0.0) for found, frame_boxes in zip(again, extended)
                            for p, b in zip(found, frame_boxes)})
            keep_surer(people, below, again)
        final = [deduplicate(confirm_lying(sorted([(p, d.lying) for p, d in zip(found, dets)
                                                   if p.score >= self.person_score], key=lambda x: -x[0].score),
                                           LYING_SCORE * self.person_score))
                 for found, dets in zip(people, ranked)]
        if self._flip_test:
            # who is there was decided by one read, as without the flip test
            final = self.mirrored_read(frames, final, [[crop_of[id(p)] for p in found] for found in final])
        return [[self.cut_off(p, f.shape) for p in found] for found, f in zip(final, frames)]

    def cut_off(self, person: Person, shape: tuple[int, ...]) -> Person:
        """``person`` with their keypoints at the edge of an image of ``shape`` below ``edge_confidence``
        (:func:`at_edge`), and those beyond it below :data:`BEYOND_CONFIDENCE`, reported missing; the
        box and score stay the network's (a person the edge cuts does reach it, and a video follower
        crops them next from that box)."""
        threshold = self.config.edge_confidence
        if threshold <= 0:
            return person
        kp, conf, box = person.keypoints2d, person.confidence, person.bbox
        margin = EDGE_MARGIN * max(float(box[2] - box[0]), float(box[3] - box[1]))
        drop = (conf > 0) & ((at_edge(kp, shape, margin) & (conf < threshold))
                             | (at_edge(kp, shape, 0.0) & (conf < max(threshold, BEYOND_CONFIDENCE))))
        return replace(person, confidence=np.where(drop, 0.0, person.confidence)) if drop.any() else person

    @property
    def _flip_test(self) -> bool:
        """The flip test is on (``flip_test``; with ``refine_3d`` the 3D feedback refines the keypoints instead)."""
        return self.config.flip_test and not self.config.refine_3d

    def mirrored_read(self, frames: Sequence[np.ndarray], people: Sequence[Sequence[Person]],
                      crops: Sequence[Sequence[tuple[np.ndarray, float]]]) -> list[list[Person]]:
        """The flip test on still images' people: each read again in their crop (``crops``: the
        (box, angle) they were read in) mirrored, in one network batch, and the two reads merged
        (:func:`merge_mirrored`): new people with steadier keypoints, the same confidences and score.
        Its time counts in ``last_timings["infer"]``."""
        t0 = time.perf_counter()
        squares, batch = self._crops(frames, [[b for b, _ in f] for f in crops], [[a for _, a in f] for f in crops])
        if batch is None:
            return [list(found) for found in people]
        mirrored = read_keypoints(self.spec, self.keypoint_backend.infer(self.spec.normalise(batch[:, :, ::-1])),
                                  self.config.keypoint_threshold)
        every = [c for frame_squares in squares for c in frame_squares]
        flat = [p for found in people for p in found]
        upright = KeypointOutput(np.stack([c.to_crop(p.keypoints) for c, p in zip(every, flat)]),
                                 np.stack([p.confidence for p in flat]))
        merged = merge_mirrored(upright, mirrored, self.spec.input_size[0], MIRROR_AGREE)
        out = []
        for c, p, k in zip(every, flat, merged.keypoints):
            keypoints = c.to_image(k)
            out.append(replace(p, keypoints2d=keypoints, bbox=keypoint_box(keypoints, p.confidence, c)))
        self.last_timings["infer"] = self.last_timings.get("infer", 0.0) + (time.perf_counter() - t0) * 1e3
        return _per_frame(out, squares)

    def estimate_in_boxes(self, image_bgr: np.ndarray, boxes: np.ndarray) -> list[Person]:
        """Keypoints of the people in given boxes (keypoint-box sized, e.g. ground truth or another
        detector's), one per box, in box order, whatever their score."""
        image = _image(image_bgr, 0)
        boxes = np.asarray(boxes, np.float64).reshape(-1, 4)
        people = self.keypoints_in_boxes([image], [boxes])
        return (self.mirrored_read([image], people, [[(b, 0.0) for b in boxes]]) if self._flip_test else people)[0]

    def camera(self) -> "Camera":
        """The camera a still image is taken to come from: [lifting] camera_pitch_deg, focal unknown."""
        from realtime.lifting.camera import Camera

        return Camera(None, self.lifting.config.camera_pitch_deg if self.lifting is not None else None)

    def keypoints_in_boxes(self, frames: Sequence[np.ndarray], boxes: Sequence[Sequence[np.ndarray]],
                           cameras: "Sequence[Camera | None] | None" = None,
                           angles: Sequence[Sequence[float]] | None = None) -> list[list[Person]]:
        """One keypoint-network batch for the people in ``boxes`` of each frame (8-bit BGR frames), each
        crop turned by its ``angles`` entry (radians, clockwise on screen; None = upright).
        With the 3D feedback on, each frame's people are lifted with its camera's lifter
        (``cameras``, one per frame) and keep that lift as their 3D pose and root."""
        t0 = time.perf_counter()
        crops, batch = self._crops(frames, boxes, angles)
        t1 = time.perf_counter()
        people: list[list[Person]] = [[] for _ in frames]
        if batch is not None:
            out = self.keypoint_backend.infer(self.spec.normalise(batch))
            t2 = time.perf_counter()
            owners = [i for i, frame_crops in enumerate(crops) for _ in frame_crops]
            people = _per_frame(self._read(out, [c for f in crops for c in f], owners, frames, cameras), crops)
        else:
            t2 = t1
        t3 = time.perf_counter()
        self.last_timings = {"detect": 0.0, "crop": (t1 - t0) * 1e3, "infer": (t2 - t1) * 1e3,
                             "decode": (t3 - t2) * 1e3}
        return people

    def _crops(self, frames: Sequence[np.ndarray], boxes: Sequence[Sequence[np.ndarray]],
               angles: Sequence[Sequence[float]] | None) -> tuple[list[list[Crop]], np.ndarray | None]:
        """Each frame's crops (``boxes`` turned by ``angles``, None = upright) and all of them as one
        network batch (None when there are none)."""
        size, scale = self.spec.input_size[0], self.spec.crop_scale
        if angles is None:
            angles = [[0.0] * len(frame_boxes) for frame_boxes in boxes]
        crops = [[box_crop(b, size, scale, a) for b, a in zip(frame_boxes, frame_angles)]
                 for frame_boxes, frame_angles in zip(boxes, angles)]
        batches = [warp(f, c) for f, c in zip(frames, crops) if c]
        if not batches:
            return crops, None
        return crops, batches[0] if len(batches) == 1 else np.concatenate(batches)

    def _read(self, out: dict[str, np.ndarray], crops: list[Crop], owners: list[int],
              frames: Sequence[np.ndarray], cameras: "Sequence[Camera | None] | None") -> list[Person]:
        """People from the network's outputs (crop ``k`` from ``frames[owners[k]]``): keypoints refined
        by the 3D feedback when it is on, and then lifted; the person's score stays the network's own
        confidences (the image evidence, which the feedback must not inflate)."""
        read = read_keypoints(self.spec, out, self.config.keypoint_threshold)
        points, confidence, evidence = read.keypoints, read.confidence, read.confidence
        if self.lifting is None or read.maps is None:
            return [person_in_crop(c, p, k, e) for c, p, k, e in zip(crops, points, confidence, evidence)]
        size = self.spec.input_size[0]
        stride = size / read.maps.shape[1]
        own = None if self.spec.decoder == "lsp_maps" else read.to_maps(size)
        cameras = list(cameras) if cameras is not None else [None] * len(frames)
        people: list[Person | None] = [None] * len(crops)
        owner = np.asarray(owners)
        refiners = [self.refiner(cameras[i]) for i in owners]
        # one refinement per lifter (camera pitch): the crops of frames whose cameras share one go together
        for refiner in {id(r): r for r in refiners}.values():
            rows = np.flatnonzero([r is refiner for r in refiners])
            lenses = [self.lifting.lens(cameras[owner[k]] or self.camera(), frames[owner[k]].shape[1],
                                        frames[owner[k]].shape[0]) for k in rows]   # as the workers lift
            lens = {key: np.array([c[key] for c in lenses]) for key in lenses[0]}   # {}: perspective off
            r = refiner.refine(read.maps[rows], [crops[k] for k in rows], self.config.keypoint_threshold,
                               keypoints=None if own is None else own[rows],
                               confidence=None if own is None else read.confidence[rows], has_map=read.has_map,
                               lens=lens)
            fused = (r.keypoints + 0.5) * stride - 0.5
            for j, k in enumerate(rows):
                person = person_in_crop(crops[k], fused[j], r.confidence[j], evidence[k])
                h, w = frames[owner[k]].shape[:2]
                if r.lift is not None:  # the feedback's lift is the person's 3D pose and root
                    r.lift.assign_row(person, j, cameras[owner[k]] or self.camera(), w, h)
                people[k] = person
        return people  # type: ignore[return-value]


def _per_frame(flat: list[Person], crops: list[list[Crop]]) -> list[list[Person]]:
    """One person per crop, in crop order, cut back into each frame's list."""
    starts = np.cumsum([0] + [len(frame_crops) for frame_crops in crops])
    return [flat[a:b] for a, b in zip(starts[:-1], starts[1:])]


def person_in_crop(crop: Crop, points: np.ndarray, confidence: np.ndarray, evidence: np.ndarray) -> Person:
    """A person from crop-pixel keypoints: image keypoints, their box, the score from ``evidence``."""
    keypoints = crop.to_image(points)
    return Person(keypoints2d=keypoints, confidence=confidence, score=float(evidence.mean()),
                  bbox=keypoint_box(keypoints, confidence, crop))


def reaches_bottom(box: np.ndarray, height: int) -> bool:
    """A box (a detector's extent, a followed person's box) reaching the image's bottom edge: the
    person may be cut by it."""
    return bool(box[3] >= height - 1 - CUT_MARGIN * height)


def cut_below(box: np.ndarray) -> np.ndarray:
    """The box to crop a person cut by the image's bottom edge in: as if their body went on below the
    image, the same top, twice the height and the width. The keypoint networks learnt whole people
    and read a head and shoulders filling their input poorly: on portraits cut at the chest MoveNet
    Thunder's person score went from 0.04-0.23 in the detector's box to 0.22-0.49 in this one."""
    x0, y0, x1, y1 = (float(v) for v in box)
    w, h, cx = x1 - x0, y1 - y0, (x0 + x1) / 2.0
    return np.array([cx - w, y0, cx + w, y1 + h])


def _turns(lean: float, box: np.ndarray) -> list[float]:
    """The turned crops a still image's person is tried in (radians): see people_in_detections."""
    turns = [float(lean)] if abs(lean) > TURN else []
    if box[2] - box[0] > box[3] - box[1]:
        turns += [a for a in (np.pi / 2, -np.pi / 2) if all(abs(a - t) > TURN for t in turns)]
    return turns


def keep_surer(people: list[list[Person]], rows: Sequence[Sequence[int]], again: Sequence[Sequence[Person]]) -> None:
    """Where a second crop of a person (``again[i][j]`` of ``people[i][rows[i][j]]``) has the higher
    score, it replaces the first: the person score is the network's own confidence in its crop."""
    for found, frame_rows, others in zip(people, rows, again):
        for k, person in zip(frame_rows, others):
            if person.score > found[k].score:
                found[k] = person


def leans(people: Sequence[Person]) -> np.ndarray:
    """Each person's torso angle from upright in the image (radians, clockwise; 0 without a torso)."""
    if not people:
        return np.zeros(0)
    lean = torso_lean(np.stack([p.keypoints for p in people]), np.stack([p.confidence > 0 for p in people]))
    return np.nan_to_num(lean)


def at_edge(keypoints: np.ndarray, shape: tuple[int, ...], margin: float) -> np.ndarray:
    """(K,) keypoints within ``margin`` pixels of an edge of an image of ``shape`` (rows, columns), or
    beyond it (``margin`` 0: beyond it only). Why: a keypoint network learnt whole people and gives a
    person the image cuts (a webcam's upper body, someone walking out of the frame) every joint all the
    same: the cut-off ones land on the edge or beyond it, most with a low confidence (docs/pose2d.md,
    "People cut by the image's edge"). Reported, a cut-off leg folds up to the edge in 2D and in 3D."""
    height, width = shape[:2]
    x, y = keypoints[:, 0], keypoints[:, 1]
    return (x < margin - 0.5) | (y < margin - 0.5) | (x > width - 0.5 - margin) | (y > height - 0.5 - margin)


def keypoint_box(keypoints: np.ndarray, confidence: np.ndarray, crop: Crop) -> np.ndarray:
    found = keypoints[confidence > 0]
    if len(found) < 2:
        half = crop.side / 2.0
        return np.array([crop.centre[0] - half, crop.centre[1] - half, crop.centre[0] + half, crop.centre[1] + half])
    return np.concatenate([found.min(axis=0), found.max(axis=0)])


def photo_batches(images: Sequence["np.ndarray | str | Path"]):
    """The images as 8-bit BGR frames, ``PHOTO_BATCH`` at a time, files read batch by batch: in one
    batch a folder would hold every image and every detector region in memory at once (40 photos
    peaked at 4807 MB, tools/bench_photos.py). Errors name the image's place in the whole list."""
    for start in range(0, len(images), PHOTO_BATCH):
        yield [_image(im, start + i) for i, im in enumerate(images[start:start + PHOTO_BATCH])]


def _image(image: "np.ndarray | str | Path", index: int) -> np.ndarray:
    if isinstance(image, (str, Path)):
        return load_image(image)
    return check_frame(image, f"image {index}")


def _has_belief_maps(spec: ModelSpec) -> bool:
    return spec.decoder in ("lsp_maps", "mpii_maps", "movenet")


def confirm_lying(people: list[tuple[Person, bool]], min_score: float) -> list[Person]:
    """``people`` (best first) with whether only a turned view of the image found them; those must lie
    (torso over TURN_ABOVE_DEG from upright), score at least ``min_score`` and not lie mostly inside
    better-scored people: a turned view also finds parts of upright people (an arm, the feet), patterns
    across two of them and lamps."""
    kept: list[Person] = []
    for p, lying in people:
        if lying and (abs(leans([p])[0]) <= TURN or p.score < min_score
                      or covered(p.bbox, _padded([q.bbox for q in kept])) > COVERED_BY_OTHERS):
            continue
        kept.append(p)
    return kept


def _padded(boxes: list[np.ndarray], margin: float = 0.1) -> np.ndarray:
    """Keypoint boxes grown by ``margin`` of their longer side each way (to the body's outline: feet, hands)."""
    b = np.asarray(boxes, np.float64).reshape(-1, 4)
    pad = margin * (b[:, 2:] - b[:, :2]).max(axis=1, keepdims=True)
    return np.concatenate([b[:, :2] - pad, b[:, 2:] + pad], axis=1)


def deduplicate(people: list[Person]) -> list[Person]:
    """Drop a person whose joints mostly coincide with a better-scored one (two crops on one body);
    ``people`` best first."""
    kept: list[Person] = []
    for p in people:
        if not any(same_person(p, q) for q in kept):
            kept.append(p)
    return kept


def same_person(a: Person, b: Person) -> bool:
    both = (a.confidence > 0) & (b.confidence > 0)
    if not both.any():
        return False
    diag = max(float(np.hypot(*(a.bbox[2:] - a.bbox[:2]))), float(np.hypot(*(b.bbox[2:] - b.bbox[:2]))), 1.0)
    close = np.linalg.norm(a.keypoints[both] - b.keypoints[both], axis=1) < SAME_JOINT * diag
    return close.sum() > SAME_PERSON * len(LSP14)


__all__ = ["Detection", "ImageError", "Person", "PoseEstimator2D", "deduplicate", "person_in_crop"]
