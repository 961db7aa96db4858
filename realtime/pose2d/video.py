"""VideoFollower: people followed between the frames of one or several videos (VIDEO mode).

On video the detector is the expensive, jittery part, so (as real-time systems do) each person's
keypoints in one frame place their crop in the next. The detector's regions (the whole frame and its
tiles) are taken round-robin, ``detector_regions_per_frame`` of them per frame on average, so its cost
per frame is the same whatever the frame's size (a 1080p frame's 9 regions come round every 18 frames
at 0.5; a small frame's one region every other frame) and no frame pays for all of them; only the
first frame of a video looks everywhere at once. Hysteresis keeps people: a new person needs
``person_score``, a followed one only ``keep_fraction`` of it, and a followed person below that is
dropped only after ``lost_frames`` poor frames in a row (a turn or a passer-by in front must not lose
them), cropped larger after each poor frame; the detector looks around them on the frame after
their first poor one (its box replaces the keypoint box that went wrong; at most once in
``LOOK_EVERY`` frames a person) and around where they were once they are dropped (whom it finds
there within ``RECENT_LOST`` frames is followed again as the person dropped).

One follower holds the state of every source it follows and shares its estimator's networks:
:meth:`VideoFollower.estimate_sources` puts one frame of each source through ONE detector call and
ONE keypoint call (a GPU is only busy with large batches; on a CPU one call saves per-call overhead).

With ``[pose2d] detector_async`` (the default) the detector's network runs on its own thread while
the keypoint network works on the same frame, and its people join the next frame: the two networks
overlap instead of queueing (on 2 CPU cores neither alone keeps both cores busy), and the frames on
which the detector runs are no longer the slow ones. A person is found one frame later; the first
frame of a video still waits for its detector, since nobody is followed yet.
"""
from __future__ import annotations

import math
import time
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass, field, replace
from typing import TYPE_CHECKING, Sequence

import numpy as np

from realtime.pose2d.crops import Crop, letterbox
from realtime.pose2d.detection import Detection
from realtime.pose2d.estimator import TURN, cut_below, deduplicate, keep_surer, leans, reaches_bottom
from realtime.pose2d.images import MIN_SIDE, to_bgr8
from realtime.transport.schema import Person

if TYPE_CHECKING:
    from realtime.lifting import Camera
    from realtime.pose2d.estimator import PoseEstimator2D

#: A tracked person's box shrinks to no less than this fraction of the last one per frame.
SHRINK = 0.85
#: A detection is a tracked person when its body centre is in their box and its size within this factor
#: above theirs, or down to PART_SIZE of theirs (a tile that cuts a person finds a smaller "person" inside).
SAME_SIZE = 2.0
PART_SIZE = 0.25
#: The detector's region around a lost person: this many times their box's longer side.
LOST_REGION = 2.0
#: A followed person on a poor frame is cropped this much larger on the next one (each poor frame
#: again): their last keypoint box is what went wrong (a turn, a limb hidden, a fast move), and more
#: of the scene around them costs nothing (the crop is resampled to the network's input anyway). Chosen
#: on the shared videos, 4 starts each (tools/bench_2d.py, docs/benchmarks.md): 1.5 found more people
#: on both than 1 (keep the box) and 1.25; 2 lost small people on the 1080p demo.
POOR_GROWTH = 1.5
#: The detector looks around a followed person on their first poor frame at most once in this many
#: frames: a person whose score hovers at the threshold (small, at the back) has a poor frame every few
#: frames, and each look is a whole detector region (~55 ms of CPU). On the shared videos once in 10
#: finds as many people as every time, with fewer regions; once in 30 lost people on the shop video
#: (tools/bench_2d.py's video rows, docs/benchmarks.md).
LOOK_EVERY = 10
#: A new detection where a followed person was dropped in the last RECENT_LOST frames is that person
#: again: followed at once, down to ``keep_fraction`` of the person score, like the tracker coasting a
#: lost track. Without it the detector's look around a dropped person found them and the keypoint
#: network, held to a new person's score, often rejected them: people at the back of a shop, whose
#: scores hover at the threshold, came and went (tools/bench_2d.py, 8 starts: the shop video read
#: offline 6.43 -> 6.87 people a frame, 97.7 % of the detector on every region of every frame).
RECENT_LOST = 4
#: A new detection the detector scores at least this is held on its first frame to ``keep_fraction``
#: of the person score, like a followed person: two pieces of evidence, the detector's and the keypoint
#: network's, each fair. On the shop video people the detector found at 0.4-0.5 for dozens of frames in
#: a row (the man at the front seen from above and cut by the frame, a woman half behind another
#: shopper) had keypoint scores just under the person score on the frames the detector looked, and
#: went unreported for seconds. A person the keypoint network then rejects is still dropped silently.
SURE_DETECTION = 0.4


@dataclass
class _Track:
    """Where to look for a person in the next frame."""

    box: np.ndarray
    score: float
    #: Poor frames in a row so far.
    misses: int = 0
    #: The person was reported at least once (or is found again where they were dropped a moment ago);
    #: a fresh detection the keypoint network rejects is dropped at once and silently (a detector false
    #: positive is not a lost person).
    confirmed: bool = True
    #: The crop's turn (radians, clockwise): a person leaning over ``TURN_ABOVE_DEG`` in the last frame
    #: (lying, crawling) is cropped along their torso, as the keypoint networks learnt people upright.
    angle: float = 0.0
    #: Frames since the detector last looked around this person for a poor frame (LOOK_EVERY or more:
    #: their next first poor frame gets a look; 0 on that first poor frame: the look is next frame).
    since_look: int = LOOK_EVERY
    #: Read in a crop as if their body went on below the image (``cut_below``): the image's bottom edge
    #: cuts them (a webcam's head and shoulders). Chosen by reading both crops when the box reaches
    #: that edge and the person is new or on a poor frame; the surer read decides.
    below: bool = False
    #: A new detection whose box reaches the image's bottom edge: read both ways on its first frame.
    edge: bool = False
    #: A new detection the detector is sure of (score >= SURE_DETECTION): held to ``keep_fraction`` of
    #: the person score, like a followed person, on its first frame.
    sure: bool = False

    @property
    def look(self) -> bool:
        """The detector looks around this person in the next frame: this was their first poor frame
        and a look was due."""
        return self.misses == 1 and self.since_look == 0


@dataclass
class _Source:
    """One video's state."""

    tracks: list[_Track] = field(default_factory=list)
    #: Frames since the last reset (0 = the next frame is the first).
    frame: int = 0
    #: Boxes of people dropped in the last RECENT_LOST frames, with the frame: a detection there is them.
    recent_lost: list[tuple[np.ndarray, int]] = field(default_factory=list)
    detector_runs: int = 0
    #: The work done so far (kept across resets, like ``detector_runs``): keypoint crops read (people
    #: followed, new detections, people on a poor frame, upright checks of turned crops) and detector
    #: regions looked at. Per frame, what a frame costs: each crop and each region is a network input.
    crops_read: int = 0
    regions_looked: int = 0
    last_timings: dict[str, float] = field(default_factory=dict)
    #: Changes on every reset: detections still running for an older generation are dropped.
    generation: int = 0
    #: Turns of the detector's round-robin taken so far (fractional: the rate need not be whole).
    turn: float = 0.0
    #: Detections of this source that came back from the detector's thread during a call without a
    #: frame of it: they join its next frame. (The runtime's sources seldom have frames in the same
    #: call; dropping these lost 60 % of the people of four sources on a GPU.)
    waiting: list[Detection] | None = None

    @property
    def lost_boxes(self) -> list[np.ndarray]:
        """Boxes of the people dropped in the last frame: the detector looks there next."""
        return [box for box, frame in self.recent_lost if frame == self.frame]


@dataclass
class _Costs:
    """Running estimates (ms) of one keypoint crop and one detector region on this machine: what
    ``detector_budget_people`` trades between following people and looking for new ones."""

    crop_ms: float | None = None
    region_ms: float | None = None

    #: Weight of the newest measurement.
    ALPHA = 0.1

    def add(self, name: str, total_ms: float, count: int) -> None:
        if count <= 0 or not total_ms > 0:
            return
        old, new = getattr(self, name), total_ms / count
        setattr(self, name, new if old is None else old + self.ALPHA * (new - old))


@dataclass
class _Pending:
    """The detector's work on the last frames, running on its thread."""

    future: Future
    #: (source, generation) of each image in the batch.
    owners: list[tuple[int, int]]


class VideoFollower:
    """Follows the people of ``sources`` videos between frames with an estimator's networks."""

    def __init__(self, estimator: "PoseEstimator2D", sources: int = 1, asynchronous: bool | None = None,
                 cameras: "Sequence[Camera | None] | None" = None):
        if sources < 1:
            raise ValueError(f"a follower needs at least one source, got {sources}")
        if cameras is not None and len(cameras) != sources:
            raise ValueError(f"a follower of {sources} sources got {len(cameras)} cameras")
        self.estimator = estimator
        self.sources = [_Source() for _ in range(sources)]
        #: Each source's camera (for the 3D feedback's lifter and the people's roots; None = unknown).
        self.cameras = list(cameras) if cameras is not None else [None] * sources
        self.asynchronous = estimator.config.detector_async if asynchronous is None else asynchronous
        self._pool: ThreadPoolExecutor | None = None
        self._pending: _Pending | None = None
        self.costs = _Costs()

    def close(self) -> None:
        """Stop the detector's thread (the networks stay open: they are the estimator's)."""
        if self._pending is not None:
            self._pending.future.cancel()
            self._pending = None
        if self._pool is not None:
            self._pool.shutdown(wait=True)
            self._pool = None

    def __enter__(self) -> "VideoFollower":
        return self

    def __exit__(self, *exc) -> None:
        self.close()

    # -- per-source state -----------------------------------------------------------------------------
    def reset(self, source: int | None = None) -> None:
        """Forget a source's previous frames (all sources with None): its next frame runs the whole detector."""
        for i in range(len(self.sources)) if source is None else [source]:
            old = self.sources[i]
            self.sources[i] = _Source(detector_runs=old.detector_runs, crops_read=old.crops_read,
                                      regions_looked=old.regions_looked, generation=old.generation + 1)

    def seed(self, boxes: np.ndarray, score: float = 1.0, source: int = 0) -> None:
        """Start following people in given boxes (e.g. from an external detector) from the next frame."""
        s = self.sources[source]
        s.tracks = [_Track(np.asarray(b, np.float64), score) for b in np.asarray(boxes, np.float64).reshape(-1, 4)]
        s.frame = max(s.frame, 1)
        s.recent_lost = []

    @property
    def detector_runs(self) -> int:
        """Frames (of source 0) on which the detector ran."""
        return self.sources[0].detector_runs

    @property
    def lost(self) -> bool:
        """Someone of source 0 was dropped in the last frame: the detector looks where they were next."""
        return bool(self.sources[0].lost_boxes)

    @property
    def last_timings(self) -> dict[str, float]:
        return self.sources[0].last_timings

    def timings(self, source: int) -> dict[str, float]:
        return self.sources[source].last_timings

    def detector_rate(self, source: int = 0) -> float:
        """Detector regions for the source's next frame: ``detector_regions_per_frame`` (or as many as
        ``detector_budget_ms`` of measured region time allow, if more), plus, with
        ``detector_budget_people`` B and n people followed, (B - n) keypoint crops' time in regions.

        Why: a frame's cost is its people's keypoints plus the detector's regions. With a fixed rate a
        scene of two people leaves most of a crowd's budget unused while newcomers wait for their
        region's turn; here the time of the people not there goes into looking for them, so a frame
        costs about what B people cost and the fewer people, the sooner a newcomer is found."""
        config = self.estimator.config
        rate = config.detector_regions_per_frame
        if config.detector_budget_ms and self.costs.region_ms:   # cheap regions (a GPU): more of them
            rate = max(rate, config.detector_budget_ms / self.costs.region_ms)
        spare = config.detector_budget_people - len(self.sources[source].tracks)
        if spare > 0 and self.costs.crop_ms and self.costs.region_ms:
            rate += spare * self.costs.crop_ms / self.costs.region_ms
        return rate

    def detector_regions(self, width: int, height: int, source: int = 0, rate: float | None = None) -> list[Crop]:
        """Where the detector looks in this frame: everywhere on the first frame; then the next regions
        round-robin, ``rate`` (default :meth:`detector_rate`) per frame (the turns numbered
        ``floor(turn)`` up to ``floor(turn + rate)`` of a cycle in which the whole frame comes before
        every tile, ``turn`` the source's turns so far), plus a region around each person lost in the
        last frame and around each person on their first poor frame (their crop from the last
        keypoint box went wrong; the detector's box, which replaces it, is a fresh start: on the
        shared shop video this found 5 % more people a frame, mostly small ones at the back), at most
        once in ``LOOK_EVERY`` frames a person.
        The whole frame every other turn: medium and large people (most of them) are found soon, the
        tiles (for small people) take turns in between; on the demo video this found 4 % more people
        a frame than plain round-robin at the same cost (tools/bench_2d.py)."""
        s = self.sources[source]
        detector = self.estimator.detector
        regions = detector.regions(width, height)
        if s.frame == 0:
            return regions
        rate = self.detector_rate(source) if rate is None else rate
        start, end = math.floor(s.turn + 1e-9), math.floor(s.turn + rate + 1e-9)
        cycle = _whole_between_tiles(regions)
        due = [cycle[(start + k) % len(cycle)] for k in range(min(end - start, len(cycle)))]
        due = list({id(r): r for r in due}.values())     # the whole frame once, even when it comes twice
        around = s.lost_boxes + [t.box for t in s.tracks if t.look]
        return due + [_around(box, width, height, detector.input_size) for box in around]

    # -- estimation -----------------------------------------------------------------------------------
    def estimate(self, frame: np.ndarray) -> list[Person]:
        """The people of the next frame of source 0, best score first. Frames too small to hold a
        person give [] and leave the state alone."""
        return self.estimate_sources([frame])[0]

    def estimate_sources(self, frames: Sequence[np.ndarray | None]) -> list[list[Person]]:
        """The next frame of each source (``frames[i]`` for source i; None = no frame this time, its
        state untouched), with ONE detector call and ONE keypoint call for all of them."""
        if len(frames) > len(self.sources):
            raise ValueError(f"estimate_sources: {len(frames)} frames for {len(self.sources)} sources")
        est = self.estimator
        t0 = time.perf_counter()
        ready = {i: to_bgr8(f) for i, f in enumerate(frames)
                 if f is not None and not (isinstance(f, np.ndarray) and (f.ndim < 2 or min(f.shape[:2]) < MIN_SIDE))}
        rates = {i: self.detector_rate(i) for i in ready}
        regions = {i: self.detector_regions(f.shape[1], f.shape[0], i, rates[i]) for i, f in ready.items()}
        for i in ready:
            if self.sources[i].frame:                      # the first frame looks everywhere, outside the cycle
                self.sources[i].turn += rates[i]
            self.sources[i].regions_looked += len(regions[i])
        detections = self._collect()                       # the last frames' detections (asynchronous)
        for i in [i for i in detections if i not in ready]:
            s = self.sources[i]
            s.waiting = (s.waiting or []) + detections.pop(i)
        for i in ready:
            if self.sources[i].waiting is not None:
                detections[i] = self.sources[i].waiting + detections.get(i, [])
                self.sources[i].waiting = None
        now = [i for i in ready if regions[i] and (not self.asynchronous or self.sources[i].frame == 0)]
        later = [i for i in ready if regions[i] and i not in now]
        if now:
            t = time.perf_counter()
            for i, found in zip(now, est.detector.detect_many([ready[i] for i in now], [regions[i] for i in now])):
                detections[i] = detections.get(i, []) + found
            self.costs.add("region_ms", (time.perf_counter() - t) * 1e3, sum(len(regions[i]) for i in now))
        if later:
            prepared = est.detector.prepare([ready[i] for i in later], [regions[i] for i in later])
            if self._pool is None:
                self._pool = ThreadPoolExecutor(1, thread_name_prefix="detector")
            self._pending = _Pending(self._pool.submit(self._run_detector, prepared),
                                     [(i, self.sources[i].generation) for i in later])
        candidates = {i: self._candidates(i, detections.get(i), f.shape[0]) for i, f in ready.items()}
        t1 = time.perf_counter()
        order = list(ready)
        # a turned crop is checked against an upright one of the same box, and a person the image's
        # bottom edge may cut is read both as they are and as if their body went on below it, in the
        # same network call (the torso a crop was turned by, or the edge, can mislead)
        turned = [[k for k, c in enumerate(candidates[i]) if c.angle] for i in order]
        unsure = [[k for k, c in enumerate(candidates[i]) if not c.angle and (c.edge or (
            c.misses and reaches_bottom(c.box, ready[i].shape[0])))] for i in order]
        found = est.keypoints_in_boxes([ready[i] for i in order],
                                       [[_crop_box(c, ready[i].shape[0]) for c in candidates[i]]
                                        + [candidates[i][k].box for k in t]
                                        + [_crop_box(candidates[i][k], ready[i].shape[0], not candidates[i][k].below)
                                           for k in u]
                                        for i, t, u in zip(order, turned, unsure)], [self.cameras[i] for i in order],
                                       [[c.angle for c in candidates[i]] + [0.0] * (len(t) + len(u))
                                        for i, t, u in zip(order, turned, unsure)])
        n = [len(candidates[i]) for i in order]
        upright = [crop_people[m:m + len(t)] for m, t, crop_people in zip(n, turned, found)]
        other = [crop_people[m + len(t):] for m, t, crop_people in zip(n, turned, found)]
        found = [crop_people[:m] for m, crop_people in zip(n, found)]
        keep_surer(found, turned, upright)
        for i, u, crop_people, others in zip(order, unsure, found, other):
            for k, person in zip(u, others):       # the other crop was surer: it is the crop from now on
                c = candidates[i][k]
                candidates[i][k] = replace(c, below=bool(c.below != (person.score > crop_people[k].score)))
        keep_surer(found, unsure, other)
        for i, t, u in zip(order, turned, unsure):
            self.sources[i].crops_read += len(candidates[i]) + len(t) + len(u)
        crop, infer = est.last_timings.get("crop", 0.0), est.last_timings.get("infer", 0.0)
        self.costs.add("crop_ms", infer, sum(m + len(t) + len(u) for m, t, u in zip(n, turned, unsure)))
        people: list[list[Person]] = [[] for _ in frames]
        for i, crop_people in zip(order, found):
            people[i] = [est.cut_off(p, ready[i].shape) for p in self._people(i, candidates[i], crop_people)]
        t2 = time.perf_counter()
        # "decode": reading the outputs, the 3D feedback and following people, all after the network
        timings = {"detect": (t1 - t0) * 1e3, "crop": crop, "infer": infer, "decode": (t2 - t1) * 1e3 - crop - infer}
        for i in range(len(frames)):
            self.sources[i].last_timings = dict(timings) if i in ready else dict.fromkeys(timings, 0.0)
        return people

    def _run_detector(self, prepared) -> list[list[Detection]]:
        """The detector's network on its thread, timed per region."""
        t = time.perf_counter()
        found = self.estimator.detector.run(prepared)
        self.costs.add("region_ms", (time.perf_counter() - t) * 1e3, sum(len(r) for r in prepared.regions))
        return found

    def _collect(self) -> dict[int, list[Detection]]:
        """The detections of the batch running on the detector's thread, by source (waiting for it to
        finish), without those of sources reset since."""
        if self._pending is None:
            return {}
        pending, self._pending = self._pending, None
        found = pending.future.result()
        return {i: dets for (i, generation), dets in zip(pending.owners, found)
                if self.sources[i].generation == generation}

    def _candidates(self, source: int, detections: list[Detection] | None, height: int) -> list[_Track]:
        """Who to look at in this frame (``height`` pixels high): the people followed from the last
        one and new detections."""
        s = self.sources[source]
        candidates = list(s.tracks)
        s.recent_lost = [(b, f) for b, f in s.recent_lost if s.frame - f <= RECENT_LOST]
        if detections is not None:
            candidates = _merge(candidates, detections, height, [b for b, _ in s.recent_lost])
            s.detector_runs += 1
        s.frame += 1
        return sorted(candidates, key=lambda c: -c.score)[: self.estimator.config.max_people]

    def _people(self, source: int, candidates: list[_Track], found_people: list[Person]) -> list[Person]:
        """The people found; the tracks for the next frame (found people, and followed people on a
        poor frame keeping their box); the people lost for good."""
        s = self.sources[source]
        config = self.estimator.config
        threshold = self.estimator.person_score
        found, poor = [], []
        for person, track in zip(found_people, candidates):
            if person.score >= threshold * (config.keep_fraction if track.confirmed or track.sure else 1.0):
                found.append((person, track.box, track.since_look + 1, track.below))
            elif track.confirmed:
                look = track.misses == 0 and track.since_look >= LOOK_EVERY
                poor.append(_Track(_grown(track.box), track.score, track.misses + 1, angle=track.angle,
                                   since_look=0 if look else track.since_look + 1, below=track.below))
        found.sort(key=lambda pb: -pb[0].score)
        kept = deduplicate([p for p, *_ in found])
        found = [f for f in found if any(f[0] is k for k in kept)]
        poor = [t for t in poor if not any(_inside(t.box, p.bbox) for p, *_ in found)]
        s.recent_lost += [(t.box, s.frame) for t in poor if t.misses >= config.lost_frames]
        turns = leans([p for p, *_ in found])
        s.tracks = ([_Track(_next_box(p.bbox, box), p.score, angle=float(lean) if abs(lean) > TURN else 0.0,
                            since_look=since, below=below and abs(lean) <= TURN)
                     for (p, box, since, below), lean in zip(found, turns)]
                    + [t for t in poor if t.misses < config.lost_frames])
        return [p for p, *_ in found]


def _whole_between_tiles(regions: list[Crop]) -> list[Crop]:
    """The round-robin order: the whole frame (the first region) before every tile, so that medium and
    large people are looked for every other turn while the tiles, for the small ones, take turns."""
    if len(regions) <= 2:
        return regions
    whole, tiles = regions[0], regions[1:]
    return [r for tile in tiles for r in (whole, tile)]


def _merge(tracked: list[_Track], detections: list[Detection], height: int,
           lost: list[np.ndarray] = ()) -> list[_Track]:
    """Tracked people keep their keypoint boxes (tighter than a detection's), except those on a poor
    streak, whose box the detection replaces (their last keypoint box is what went wrong); other
    detections are new people (read both ways on their first frame when the image's bottom edge,
    ``height``, may cut them), or people dropped a moment ago at a ``lost`` box, followed again."""
    merged = list(tracked)
    for d in detections:
        same = [i for i, t in enumerate(merged[:len(tracked)]) if _same_place(d.box, d.centre, t.box)]
        if not same:
            again = any(_same_place(d.box, d.centre, b) for b in lost)
            merged.append(_Track(np.asarray(d.box, np.float64), d.score, confirmed=again,
                                 edge=reaches_bottom(d.extent, height), sure=d.score >= SURE_DETECTION))
        elif merged[same[0]].misses:
            t = merged[same[0]]
            merged[same[0]] = _Track(np.asarray(d.box, np.float64), t.score, t.misses, t.confirmed, t.angle,
                                     t.since_look, t.below)
    return merged


def _crop_box(track: _Track, height: int, below: bool | None = None) -> np.ndarray:
    """The box a track's crop is made around: its box, or (``below``, default the track's own choice)
    its box's part inside the image as if the body went on below it (``cut_below``)."""
    if not (track.below if below is None else below):
        return track.box
    box = track.box.copy()
    box[3] = min(box[3], height - 1.0)
    return cut_below(box)


def _grown(box: np.ndarray) -> np.ndarray:
    """A poor track's box for the next frame: POOR_GROWTH times as large, about the same centre."""
    centre, half = (box[:2] + box[2:]) / 2.0, (box[2:] - box[:2]) / 2.0 * POOR_GROWTH
    return np.concatenate([centre - half, centre + half])


def _inside(box: np.ndarray, other: np.ndarray) -> bool:
    """The centre of ``box`` lies in ``other`` (a poor track where someone else was found is theirs)."""
    cx, cy = (box[:2] + box[2:]) / 2.0
    return bool(other[0] <= cx <= other[2] and other[1] <= cy <= other[3])


def _around(box: np.ndarray, width: int, height: int, input_size: int) -> Crop:
    """The detector's region around a lost person's last box (the whole frame if it would be larger)."""
    side = max(LOST_REGION * float(max(box[2:] - box[:2])), float(input_size))
    if side >= max(width, height):
        return letterbox(width, height, input_size)
    centre = (box[:2] + box[2:]) / 2.0
    return Crop((float(centre[0]), float(centre[1])), side, input_size)


def _same_place(box: np.ndarray, centre: np.ndarray, tracked: np.ndarray) -> bool:
    inside = tracked[0] <= centre[0] <= tracked[2] and tracked[1] <= centre[1] <= tracked[3]
    size, tracked_size = max(box[2:] - box[:2]), max(max(tracked[2:] - tracked[:2]), 1.0)
    return bool(inside and PART_SIZE <= size / tracked_size <= SAME_SIZE)


def _next_box(found: np.ndarray, previous: np.ndarray) -> np.ndarray:
    """Where to look next frame: the keypoint box, shrinking by at most SHRINK per frame. A person
    whose legs go unseen would otherwise get a tighter crop each frame until the crop holds a hand."""
    centre = (found[:2] + found[2:]) / 2.0
    half = np.maximum(found[2:] - found[:2], SHRINK * (previous[2:] - previous[:2])) / 2.0
    return np.concatenate([centre - half, centre + half])
