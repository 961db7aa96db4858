"""Tracker (stable ids) and One Euro filtering: behaviour on constructed scenes and on mocap-driven ones."""
from __future__ import annotations

import math

import numpy as np
import pytest

from realtime.config import FilterConfig, TrackingConfig, load_config
from realtime.tracking import OneEuroFilter, TrackFilter, Tracker
from realtime.transport.schema import Person, SchemaError

FPS = 30.0
# A person seen from the front, feet at y=0, head at y=-1 (image y down), LSP-14 order.
TEMPLATE = np.array([
    (0.0, -1.0), (0.0, -0.82),
    (-0.12, -0.8), (-0.15, -0.62), (-0.16, -0.45),
    (0.12, -0.8), (0.15, -0.62), (0.16, -0.45),
    (-0.08, -0.5), (-0.09, -0.27), (-0.09, -0.03),
    (0.08, -0.5), (0.09, -0.27), (0.09, -0.03),
])


def person(x: float, foot_y: float, height: float, rng: np.random.Generator | None = None,
           proportions: float = 1.0) -> Person:
    kp = TEMPLATE.copy()
    kp[:, 0] *= proportions
    kp = kp * height + (x, foot_y)
    if rng is not None:
        kp = kp + rng.normal(0.0, 0.02 * height, kp.shape)
    conf = np.full(14, 0.9)
    lo, hi = kp.min(0), kp.max(0)
    return Person(keypoints2d=kp, confidence=conf, score=0.9, bbox=np.concatenate([lo, hi]))


def run(tracker: Tracker, frames: list[list[Person]], t0: float = 0.0) -> list[list[int | None]]:
    return [tracker.update(t0 + i / FPS, dets) for i, dets in enumerate(frames)]


def test_defaults_are_the_config_defaults_and_constructors_read_no_file():
    assert Tracker().config == TrackingConfig() == load_config().tracking
    assert TrackFilter().config == FilterConfig() == load_config().filter
    assert TrackFilter().config == load_config().filter


def test_unconfirmed_detections_get_none_until_k_confirmations():
    k = 4
    tracker = Tracker(TrackingConfig(confirm_frames=k))
    out = run(tracker, [[person(100 + 3 * i, 500, 300)] for i in range(k + 2)])
    assert out[:k - 1] == [[None]] * (k - 1)
    assert isinstance(out[k - 1][0], int)
    assert out[k - 1] == out[k] == out[k + 1]
    assert Tracker(TrackingConfig(confirm_frames=1)).update(0.0, [person(100, 500, 300)])[0] is not None


def test_two_people_crossing_keep_their_ids():
    """A near person walks right, a far one left; they cross and the far one is hidden for a while."""
    rng = np.random.default_rng(0)
    frames, truth = [], []
    n = 90
    for i in range(n):
        xa = 200 + 10 * i            # near, 300 px tall, 300 px/s
        xb = 1100 - 9 * i            # far, 240 px tall
        dets, who = [person(xa, 620, 300, rng)], ["a"]
        if abs(xa - xb) > 40:        # the far person is hidden while right behind the near one
            dets.append(person(xb, 560, 240, rng, proportions=1.2))
            who.append("b")
        order = rng.permutation(len(dets))
        frames.append([dets[j] for j in order])
        truth.append([who[j] for j in order])
    out = run(Tracker(), frames)
    ids: dict[str, set] = {"a": set(), "b": set()}
    for frame_ids, frame_who in zip(out[3:], truth[3:]):
        for tid, w in zip(frame_ids, frame_who):
            ids[w].add(tid)
    assert len(ids["a"]) == 1 and len(ids["b"]) == 1, ids
    assert ids["a"] != ids["b"] and None not in ids["a"] | ids["b"]
    assert any(len(w) == 1 for w in truth), "the scene should hide the far person at some point"


def test_short_occlusion_coasts_and_keeps_the_id():
    tracker = Tracker()
    frames = [[person(100 + 6 * i, 500, 300)] if not 20 <= i < 35 else [] for i in range(50)]  # 0.5 s gap
    out = run(tracker, frames)
    seen = {tid for f in out[5:] for tid in f}
    assert len(seen) == 1 and None not in seen
    assert tracker.active_ids == list(seen)


def test_long_absence_ends_the_track_and_a_new_person_gets_a_new_id():
    cfg = TrackingConfig(coast_s=0.5, reid_s=1.0)
    tracker = Tracker(cfg)
    first = run(tracker, [[person(300, 500, 300)] for _ in range(10)])
    old = first[-1][0]
    assert tracker.update(10 / FPS + 0.6, []) == []
    assert tracker.active_ids == []          # past coast_s: ended
    t1 = 10 / FPS + 1.5                       # past reid_s: forgotten
    second = run(tracker, [[person(300, 500, 300)] for _ in range(10)], t0=t1)
    new = second[-1][0]
    assert isinstance(new, int) and new > old
    third = run(tracker, [[person(700, 500, 300)] for _ in range(10)], t0=t1 + 5.0)
    assert third[-1][0] > new                 # monotonic: ids are never reused


def test_reappearing_person_nearby_is_reidentified():
    cfg = TrackingConfig(coast_s=0.5, reid_s=3.0)
    tracker = Tracker(cfg)
    old = run(tracker, [[person(300 + 2 * i, 500, 300)] for i in range(15)])[-1][0]
    t = 15 / FPS + 2.0                        # lost (> coast_s) but within reid_s
    assert tracker.update(t - 1.0, []) == [] and tracker.active_ids == []
    again = tracker.update(t, [person(360, 505, 310)])
    assert again == [old]                    # the old id at once, no re-confirmation
    other = Tracker(cfg)
    run(other, [[person(300, 500, 300)] for _ in range(15)])
    far = run(other, [[person(1200, 500, 300)] for _ in range(5)], t0=15 / FPS + 2.0)
    assert far[-1][0] is not None and far[-1][0] != old  # far away: a new person


def test_bad_detections_are_skipped_or_refused_loudly():
    import dataclasses

    tracker = Tracker(TrackingConfig(confirm_frames=1))
    good = person(300, 500, 300)
    tid = tracker.update(0.0, [good])[0]
    nan_all = dataclasses.replace(good, keypoints2d=np.full((14, 2), np.nan))
    some_nan = dataclasses.replace(good, keypoints2d=good.keypoints2d.copy())
    some_nan.keypoints2d[[0, 4, 7]] = np.nan
    too_few = dataclasses.replace(good, confidence=np.r_[np.ones(2), np.zeros(12)])
    out = tracker.update(1 / FPS, [nan_all, too_few, some_nan])
    assert out[:2] == [None, None]
    assert out[-1] == tid                     # NaN keypoints count as missing; the person is kept
    assert sum(tracker.rejected.values()) == 2
    assert tracker.update(float("nan"), [good]) == [None]
    no_box = dataclasses.replace(good, bbox=np.full(4, np.nan))
    assert tracker.update(2 / FPS, [no_box]) == [tid]   # box taken from the keypoints
    # Anything but the pipeline's Person is refused loudly, not skipped in silence.
    with pytest.raises(TypeError, match="detection 1 is a dict, expected a realtime.transport.schema.Person"):
        tracker.update(3 / FPS, [good, {"keypoints2d": good.keypoints2d}])
    with pytest.raises(SchemaError, match=r"keypoints2d \(13, 2\)"):
        Person(keypoints2d=np.zeros((13, 2)), confidence=np.ones(14), score=0.5)


# ----------------------------------------------------------------------------------------- One Euro

def test_one_euro_keeps_a_constant_signal_constant():
    f = OneEuroFilter(min_cutoff=1.0, beta=5.0)
    x = np.array([[0.3, 1.2, -4.0], [1.0, 2.0, 3.0]])
    for i in range(50):
        np.testing.assert_array_equal(f(i / FPS, x), x)


def test_one_euro_step_follows_the_first_order_lag():
    fc = 2.0
    f = OneEuroFilter(min_cutoff=fc, beta=0.0)
    f(0.0, np.zeros((1, 1)))
    a = 1.0 / (1.0 + FPS / (2 * math.pi * fc))
    ys = [f(i / FPS, np.ones((1, 1)))[0, 0] for i in range(1, 31)]
    np.testing.assert_allclose(ys, 1.0 - (1.0 - a) ** np.arange(1, 31), rtol=1e-12)
    tau = 1 / (2 * math.pi * fc)                               # 63 % of the step within a frame of tau
    t63 = (np.argmax(np.array(ys) >= 1 - math.exp(-1)) + 1) / FPS
    assert tau <= t63 <= tau + 1 / FPS
    fast = OneEuroFilter(min_cutoff=fc, beta=5.0)
    fast(0.0, np.zeros((1, 1)))
    assert fast(1 / FPS, np.ones((1, 1)))[0, 0] > 2 * ys[0]      # speed raises the cutoff: less lag


def test_one_euro_reduces_jitter_on_a_noisy_sine():
    rng = np.random.default_rng(1)
    t = np.arange(300) / FPS
    truth = 0.3 * np.sin(2 * math.pi * 0.5 * t)[:, None]
    noisy = truth + rng.normal(0, 0.02, truth.shape)
    f = OneEuroFilter(min_cutoff=1.0, beta=20.0)
    out = np.stack([f(ti, xi[None])[0] for ti, xi in zip(t, noisy)])

    def jitter(x):
        return np.abs(np.diff(x, 2, axis=0)).mean()
    assert jitter(out) < 0.7 * jitter(noisy)
    assert np.abs(out - truth)[30:].mean() < 0.95 * np.abs(noisy - truth)[30:].mean()


def test_track_filter_resets_for_a_new_track_and_forgets_dead_ones():
    filt = TrackFilter(FilterConfig(min_cutoff=0.5, beta=0.0, root_min_cutoff=0.5, root_beta=0.0))
    j0 = np.zeros((16, 3))
    for i in range(10):
        filt.update(1, i / FPS, j0, np.zeros(3))
    j, root = filt.update(1, 10 / FPS, j0 + 1.0, np.ones(3))
    assert 0 < j[0, 0] < 0.5 and 0 < root[0] < 0.5        # an old track is smoothed ...
    j, root = filt.update(2, 10 / FPS, j0 + 1.0, np.ones(3))
    np.testing.assert_array_equal(j, j0 + 1.0)               # ... a newborn one starts at its first pose
    np.testing.assert_array_equal(root, np.ones(3))
    filt.forget([2])
    assert len(filt) == 1
    j, root = filt.update(1, 11 / FPS, j0 + 3.0, None)
    np.testing.assert_array_equal(j, j0 + 3.0)               # forgotten: starts afresh
    assert root is None


def test_track_filter_passes_invalid_poses_through_without_losing_state():
    filt = TrackFilter(FilterConfig(min_cutoff=0.5, beta=0.0, root_min_cutoff=0.5, root_beta=0.0))
    j0 = np.zeros((16, 3))
    for i in range(5):
        filt.update(7, i / FPS, j0)
    nan_out, _ = filt.update(7, 5 / FPS, np.full((16, 3), np.nan))
    assert np.isnan(nan_out).all()
    j, _ = filt.update(7, 6 / FPS, j0 + 1.0)
    assert 0 < j[0, 0] < 0.5                                  # still filtering from the old state
    with pytest.raises(ValueError, match=r"joints3d has shape \(16,\)"):
        filt.update(7, 7 / FPS, np.zeros(16))
    with pytest.raises(ValueError, match="not finite"):
        filt.update(7, float("nan"), j0)
    off = TrackFilter(FilterConfig(enabled=False))
    np.testing.assert_array_equal(off.update(1, 0.0, j0 + 2.0)[0], j0 + 2.0)


# ----------------------------------------------------------------------------------------- metrics

def test_mot_metrics_count_switches_misses_and_idf1():
    from realtime.tracking.metrics import MotAccumulator
    box_a, box_b = np.array([0, 0, 10, 20]), np.array([100, 0, 110, 20])
    acc = MotAccumulator()
    for t in range(10):
        hyp = ["x", "y"] if t < 5 else ["y", "x"]            # the ids swap half way
        acc.update(["A", "B"], np.stack([box_a, box_b]), hyp, np.stack([box_a, box_b]))
    acc.update(["A", "B"], np.stack([box_a, box_b]), ["y"], box_a[None])   # B missed
    acc.update(["A"], box_a[None], ["y", "z"], np.stack([box_a, box_b]))   # z is a false positive
    s = acc.scores()
    assert (s.gt, s.id_switches, s.misses, s.false_positives) == (23, 2, 1, 1)
    assert s.mota == pytest.approx(1 - 4 / 23)
    # best one-to-one pairing: A-y (7 frames: t 5..9, 10, 11), B-x (5 frames); 12 of 23 + 23 detections
    assert s.idf1 == pytest.approx(2 * 12 / (23 + 23))


# ------------------------------------------------------------------------ mocap-driven scenes

@pytest.fixture(scope="module")
def walking_clips(mocap_dir, tmp_path_factory):
    from realtime.mocap import load_dataset
    from realtime.tracking.scenes import PELVIS
    cache = tmp_path_factory.mktemp("mocap-cache")     # never into the checkout
    clips = [c.joints for c in load_dataset(mocap_dir, fps=FPS, split="test", progress=False, cache_dir=cache).clips
             if len(c.joints) >= 90 and c.description == "walk"
             and np.linalg.norm(c.joints[-1, PELVIS, [0, 2]] - c.joints[0, PELVIS, [0, 2]]) > 1.0]
    assert len(clips) >= 4
    return clips


@pytest.mark.slow
def test_people_walking_across_held_out_mocap_keep_their_ids(walking_clips):
    """Three walkers from held-out subjects cross in front of the camera with realistic detector errors."""
    from realtime.tracking.metrics import MotAccumulator
    from realtime.tracking.scenes import Noise, make_scene
    acc = MotAccumulator()
    for seed in range(2):
        scene = make_scene(walking_clips, 3, 150, np.random.default_rng(seed))
        tracker = Tracker(load_config().tracking)
        for t in range(scene.n_frames):
            ids = tracker.update(t / scene.fps, scene.detections[t])
            gt, boxes = scene.truth_boxes(t, Noise().min_visible)
            hyp = [(seed, i) for i in ids if i is not None]
            hyp_boxes = np.array([d.bbox for d, i in zip(scene.detections[t], ids) if i is not None])
            acc.update([(seed, g) for g in gt], boxes, hyp, hyp_boxes.reshape(-1, 4))
    s = acc.scores()
    assert s.gt > 400
    assert s.idf1 >= 0.9 and s.switches_per_100_frames < 1.0, s
