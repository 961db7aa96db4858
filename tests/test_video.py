"""``realtime.estimate_video`` / ``VideoEstimator3D``: video in 3D in one process (VIDEO mode):
people followed, lifted, given stable track ids and smoothed, as ``realtime run`` publishes them."""
from __future__ import annotations

from collections import Counter

import numpy as np
import pytest

import realtime
from realtime.capture import SourceError
from realtime.capture.source import video_frames
from realtime.config import Config
from realtime.pose2d import ImageError
from realtime.skeleton import JOINTS3D
from realtime.video import VideoEstimator3D

from pipeline import REPO

pytestmark = pytest.mark.skipif(not (REPO / "engines" / "pose_prior.npz").exists(),
                                reason="engines/pose_prior.npz (the committed pose prior) is not present")

FRAMES = 40


@pytest.fixture(scope="module")
def arm_frames(small_video):
    return list(video_frames(small_video, FRAMES))


def test_a_video_file_gives_tracked_people_in_3d(small_video):
    """The arm-wrestling video (two wrestlers at the table, people around): every frame in order with
    the file's times; the wrestlers keep one id each from their confirmation on; lifted people carry a
    finite 3D pose. The detector's rate is fixed (``detector_budget_people`` and ``_ms`` 0): the
    default budgets follow measured times, so who is found, and whether a wrestler cut by the frame keeps their score
    above the threshold, changed with the machine's load (a full-suite run lost one for some frames)."""
    config = Config().replace("pose2d", detector_budget_people=0.0, detector_budget_ms=0.0)
    results = list(realtime.estimate_video(small_video, config, limit=FRAMES))
    assert len(results) == FRAMES
    times = [t for t, _ in results]
    assert times[0] == pytest.approx(0.0, abs=1e-6) and np.all(np.diff(times) > 0)
    assert times[-1] == pytest.approx((FRAMES - 1) / 28.0, rel=0.05)        # the file's 28 fps
    seen = Counter(p.track_id for _, people in results for p in people if p.track_id >= 0)
    steady = [track for track, n in seen.most_common(2)]
    assert len(steady) == 2 and all(seen[t] >= 0.8 * FRAMES for t in steady)
    for _, people in results:
        assert len({p.track_id for p in people if p.track_id >= 0}) == sum(p.track_id >= 0 for p in people)
        for p in people:
            if p.joints3d is not None:
                assert p.joints3d.shape == (len(JOINTS3D), 3) and np.isfinite(p.joints3d).all()
                assert p.root is not None and np.isfinite(p.root).all()
    assert sum(p.joints3d is not None for _, people in results for p in people) >= 2 * FRAMES * 0.8


def _jitter(config: Config, frames: list) -> tuple[dict[int, float], VideoEstimator3D]:
    """Each confirmed track's mean frame-to-frame joint movement (m), and the estimator (open)."""
    video = VideoEstimator3D(config)
    poses: dict[int, list[np.ndarray]] = {}
    for i, frame in enumerate(frames):
        for p in video.estimate(frame, i / 28.0):
            if p.track_id >= 0 and p.joints3d is not None:
                poses.setdefault(p.track_id, []).append(p.joints3d)
    return {t: float(np.mean(np.linalg.norm(np.diff(np.stack(v), axis=0), axis=-1)))
            for t, v in poses.items() if len(v) >= FRAMES // 2}, video


def test_tracked_3d_is_smoothed_and_reset_starts_afresh(arm_frames):
    """With [filter] on, a track's 3D joints move less from frame to frame than the same run's
    without it (the 2D stage made deterministic: detector on this thread, fixed rate); after reset()
    nobody is followed and new people get new ids."""
    config = Config().replace("pose2d", detector_async=False, detector_budget_people=0.0, detector_budget_ms=0.0)
    raw, plain = _jitter(config.replace("filter", enabled=False), arm_frames)
    plain.close()
    smooth, video = _jitter(config, arm_frames)
    with video:
        assert video.pose2d.model == config.pose2d.model != config.pose2d.photo_model   # the video network
        assert raw.keys() == smooth.keys() and len(raw) >= 2
        for track in raw:
            assert smooth[track] < 0.8 * raw[track]
        video.reset()
        assert video.follower.sources[0].tracks == []
        video.estimate(arm_frames[0], 0.0)
        people = video.estimate(arm_frames[1], 1 / 28.0)
        assert people and all(p.track_id == -1 or p.track_id > max(raw) for p in people)


def test_a_file_read_offline_looks_for_people_more_often_than_a_live_source(arm_frames):
    """A file's frames are each read in turn (``offline``, as ``realtime.estimate_video`` and
    ``realtime estimate`` read them): the detector looks at ``file_detector_regions_per_frame``
    regions a frame, a live source at ``detector_regions_per_frame`` (budgets off: a fixed rate);
    the detector stays float32 and the keypoint network is the video one either way."""
    config = Config().replace("pose2d", detector_async=False, detector_budget_people=0.0, detector_budget_ms=0.0,
                              cpu_int8=True)
    looked = {}
    for offline in (False, True):
        with VideoEstimator3D(config, offline=offline) as video:
            for i, frame in enumerate(arm_frames[:20]):
                video.estimate(frame, i / 28.0)
            s = video.follower.sources[0]
            looked[offline] = s.regions_looked
            rate = config.pose2d.file_detector_regions_per_frame if offline else config.pose2d.detector_regions_per_frame
            assert s.turn == pytest.approx(19 * rate)          # the round-robin's turns after the first frame
            assert video.pose2d.model == config.pose2d.model
            assert video.pose2d.config.cpu_int8 is not offline
    # the arm video is one region (the whole frame): offline it is looked at on every frame; live on
    # every third or fourth, and around people lost or on a poor frame
    assert looked[True] >= 20 > looked[False]
    # a live rate above the file one (a GPU's) is kept for files: offline never looks less
    assert config.replace("pose2d", detector_regions_per_frame=4.0).pose2d.for_files().detector_regions_per_frame == 4.0


def test_bad_input_to_the_video_api(tmp_path, photos_dir, arm_frames):
    with pytest.raises(SourceError, match="no such video"):
        next(realtime.estimate_video(tmp_path / "missing.mp4"))
    (tmp_path / "not.mp4").write_bytes(b"not a video")
    with pytest.raises(SourceError, match="not.mp4"):
        next(realtime.estimate_video(tmp_path / "not.mp4"))
    with pytest.raises(SourceError, match="realtime.estimate"):
        next(realtime.estimate_video(photos_dir / "p2.jpg"))
    with VideoEstimator3D(Config()) as video:
        assert video.estimate(np.zeros((1, 1, 3), np.uint8), 0.0) == []     # too small: skipped
        with pytest.raises(ImageError):
            video.estimate(np.zeros((64, 64, 5), np.uint8), 0.0)
        assert len(video.estimate(arm_frames[0], 0.0)) >= 2
        # a time going backwards is counted by the tracker, the stream goes on
        assert len(video.estimate(arm_frames[1], -1.0)) >= 2
        assert video.tracker.rejected["time went backwards"] == 1
