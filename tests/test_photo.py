"""``realtime.estimate``: still images in 3D in one call, stateless (IMAGE mode)."""
from __future__ import annotations

import numpy as np
import pytest

import realtime
from realtime.config import Config, LiftingConfig
from realtime.photo import PoseEstimator3D
from realtime.pose2d import ImageError, load_image
from realtime.pose2d.estimator import PHOTO_BATCH
from realtime.skeleton import JOINTS3D, LSP14

from pipeline import REPO

pytestmark = pytest.mark.skipif(not (REPO / "engines" / "pose_prior.npz").exists(),
                                reason="engines/pose_prior.npz (the committed pose prior) is not present")


@pytest.fixture(scope="module")
def photos(photos_dir):
    return sorted(p for p in photos_dir.iterdir() if p.suffix.lower() in (".jpg", ".png"))


def test_a_list_of_photos_gives_every_person_in_3d(photos):
    """Each photo's people with their 2D keypoints and a 3D pose (pelvis-relative, metres) and a root in
    front of the camera; the same photos one by one, or again, give the same people."""
    results = realtime.estimate([str(p) for p in photos])
    assert len(results) == len(photos)
    people = [p for found in results for p in found]
    assert len(people) >= len(photos), "fewer people than photos"
    lifted = [p for p in people if p.joints3d is not None]
    assert len(lifted) >= 0.9 * len(people)
    for p in lifted:
        assert p.joints3d.shape == (len(JOINTS3D), 3) and np.isfinite(p.joints3d).all()
        assert p.uncertainty.shape == (len(JOINTS3D),) and (p.uncertainty >= 0).all()  # 0 at the root
        height = p.joints3d[:, 1].max() - p.joints3d[:, 1].min()
        assert 0.5 < height < 2.5, f"a person {height:.2f} m tall"
        assert p.root is not None and p.root[2] < 0, "the root is not in front of the camera"
    pairs = list(zip(photos, results))                   # the list goes in batches of PHOTO_BATCH:
    for path, found in pairs[:2] + pairs[PHOTO_BATCH - 1:PHOTO_BATCH + 1]:   # alone, as an array, the same
        again = realtime.estimate(load_image(path))
        assert len(again) == len(found)
        for a, b in zip(again, found):
            assert np.allclose(a.keypoints2d, b.keypoints2d, atol=1e-3)
            assert (a.joints3d is None) == (b.joints3d is None)
            if a.joints3d is not None:
                assert np.allclose(a.joints3d, b.joints3d, atol=1e-4)


def test_photos_run_the_photo_network_and_video_the_live_one():
    """Still images use [pose2d] photo_model (no frame rate binds them), whatever model the video runs."""
    config = Config().replace("pose2d", backend="onnxruntime")
    assert (config.pose2d.model, config.pose2d.photo_model) == ("movenet-lightning", "movenet-thunder")
    assert config.pose2d.for_photos().model == "movenet-thunder"
    assert config.pose2d.for_photos().detector == config.pose2d.detector
    with PoseEstimator3D(config.replace("pose2d", photo_model="blazepose-lite")) as estimator:
        assert estimator.pose2d.model == "blazepose-lite"
        assert len(estimator.estimate(np.zeros((64, 64, 3), np.uint8))) == 0


def test_a_crowd_photo_gives_dozens_of_people(photos_dir):
    """A crowd: 16 photos of 3-6 people tiled 4 x 4 into one image (64 people, 30-150 px tall). Every
    person found is reported (up to [pose2d] max_people, 64), most of them with a 3D pose."""
    import cv2

    tiles = [cv2.resize(load_image(photos_dir / name), (320, 240))
             for name in ("apink2.jpg", "p3.jpg", "ski.jpg", "handsup1.jpg")] * 4
    crowd = np.vstack([np.hstack(tiles[i:i + 4]) for i in range(0, 16, 4)])
    people = realtime.estimate(crowd)
    assert len(people) >= 40
    assert sum(p.joints3d is not None for p in people) >= 0.9 * len(people)
    rows = [int(p.bbox[1] + p.bbox[3]) // 2 // 240 for p in people]   # which row of tiles each is in
    assert all(rows.count(r) >= 8 for r in range(4))


def test_a_person_lying_across_the_photo_lies_in_3d(photos_dir):
    """A photo turned a quarter (the person lying with the head to the right) gives the same person
    lying in 3D, head to the right, not squeezed into a standing pose; upright, the head is up."""
    import cv2

    head, pelvis = JOINTS3D.index("head_top"), JOINTS3D.index("pelvis")
    for name in ("golf.jpg", "p1.jpg", "nadal.png"):
        image = load_image(photos_dir / name)
        for turned, axis in ((image, 1), (cv2.rotate(image, cv2.ROTATE_90_CLOCKWISE), 0)):
            people = [p for p in realtime.estimate(turned) if p.joints3d is not None]
            assert people, f"{name}: nobody lifted"
            up = people[0].joints3d[head] - people[0].joints3d[pelvis]
            # depth: p1.jpg leans 0.3 m towards the camera upright too (0.39 turned); squeezed upright it was 1.5
            assert up[axis] > 0.45 and abs(up[1 - axis]) < 0.3 and abs(up[2]) < 0.5 and np.linalg.norm(up) < 0.9, \
                f"{name}: head - pelvis {up.round(2)} m"     # upright only, golf.jpg turned gave (1.1, -0.24, -1.53)


def test_each_person_says_the_pitch_it_was_lifted_at_so_3d_can_be_had_in_camera_axes(annotated_dir):
    """The 8 Human3.6M / MPI-INF-3DHP frames with camera-frame 3D truth, through the public call: each
    person's joints turned into camera axes by their own ``pitch_deg`` (the one the search chose) are
    nearer the truth (pelvis-aligned MPJPE, no rescaling) than the gravity-level joints are."""
    from realtime.lifting.evaluation import mpjpe
    from realtime.pose2d.annotated3d import EVAL_JOINTS, load_annotated3d

    frames = load_annotated3d(annotated_dir)
    camera, level = [], []
    for frame, people in zip(frames, realtime.estimate([str(f.image) for f in frames])):
        person = min(people, key=lambda p: np.abs(p.keypoints2d - frame.keypoints2d)[frame.visible2d].mean())
        assert person.joints3d is not None and person.pitch_deg in LiftingConfig().elevations_deg
        for out, joints in ((camera, person.joints3d_camera()), (level, person.joints3d)):
            out.append(mpjpe(joints[None], frame.joints3d[None], EVAL_JOINTS, rescale=False)[0])
        root = person.root_camera()       # turned about x: x and the distance kept, in front of the camera
        assert root[0] == person.root[0] and np.isclose(np.linalg.norm(root), np.linalg.norm(person.root))
        assert root[2] < 0
    assert np.mean(camera) < 0.9 * np.mean(level), (np.round(camera, 3), np.round(level, 3))
    assert np.mean(camera) < 0.2


def test_bad_images_are_one_clear_error(tmp_path, small_video):
    with pytest.raises(ImageError, match="missing.jpg"):
        realtime.estimate(str(tmp_path / "missing.jpg"))
    (tmp_path / "not.jpg").write_bytes(b"not an image")
    with pytest.raises(ImageError, match="not.jpg"):
        realtime.estimate([str(tmp_path / "not.jpg")])
    with pytest.raises(ImageError, match=r"realtime.estimate_video\(.*realtime run --source"):   # a video: where instead
        realtime.estimate(str(small_video))
    with pytest.raises(ImageError):
        realtime.estimate(np.zeros((1, 1, 3), np.uint8))
    with pytest.raises(ImageError, match=f"image {PHOTO_BATCH}:"):  # its place in the list, past the first batch
        realtime.estimate([np.zeros((64, 64, 3), np.uint8)] * PHOTO_BATCH + [np.zeros((1, 1, 3), np.uint8)])
    assert realtime.estimate(np.zeros((240, 320, 3), np.uint8)) == []


def _with_focal_35mm(source, path, f35):
    """``source`` saved as a JPEG whose EXIF gives a 35 mm equivalent focal length (as a phone writes it)."""
    from PIL import Image

    with Image.open(source) as im:
        exif = im.getexif()
        if f35 is not None:
            exif.get_ifd(0x8769)[0xA405] = f35
        im.convert("RGB").save(path, exif=exif)
    return path


def test_a_photos_exif_focal_length_places_its_people(photos_dir, tmp_path):
    """The same photo from an ultra-wide (13 mm equivalent) and a telephoto (77 mm) lens: the person,
    the same size in the image, is about 77/13 times further away through the longer lens (about: the
    perspective correction lifts them a little differently). A photo without
    the tag, an array (no EXIF), an implausible tag and a configured focal length keep the usual camera."""
    from realtime.pose2d.images import FILM_DIAGONAL_MM, exif_focal_px

    source = photos_dir / "p1.jpg"
    wide, tele, none, odd = (_with_focal_35mm(source, tmp_path / f"{n}.jpg", f)
                             for n, f in (("wide", 13), ("tele", 77), ("none", None), ("odd", 5000)))
    h, w = load_image(source).shape[:2]
    assert exif_focal_px(wide) == pytest.approx(13 * np.hypot(w, h) / FILM_DIAGONAL_MM)
    assert exif_focal_px(none) is None and exif_focal_px(odd) is None
    assert exif_focal_px(tmp_path / "missing.jpg") is None and exif_focal_px(photos_dir / "astronaut.png") is None
    with PoseEstimator3D() as est:
        people = est.estimate([str(wide), str(tele), str(none), load_image(wide)])
        depth = [-found[0].root[2] for found in people]
        assert depth[1] / depth[0] == pytest.approx(77 / 13, rel=0.1), depth
        assert depth[2] == pytest.approx(depth[3]) and depth[0] < depth[2] < depth[1]   # 0.8 x width between
        with pytest.raises(ValueError, match="cameras: 1 for 2 images"):
            est.estimate_many([str(wide), str(tele)], [est.camera])
    configured = Config().replace("source", focal_px=500.0)
    with PoseEstimator3D(configured) as est:
        assert est.camera_of(str(wide)).focal_px == 500.0


def test_a_portrait_from_the_chest_up_is_lifted_standing_not_folded(photos_dir):
    """Grace Hopper's portrait shows head, neck, shoulders and a wrist: the joints the image cuts off
    are reported missing (not folded up on its bottom edge), five joints are enough to lift (more than
    a guess, docs/lifting.md), and the legs the prior fills in hang below the pelvis."""
    (person,) = realtime.estimate(str(photos_dir / "grace_hopper.jpg"))[:1]
    seen = {n for n, c in zip(LSP14, person.confidence) if c > 0}
    assert not seen & {"r_knee", "l_knee", "r_ankle", "l_ankle"}, seen
    assert person.joints3d is not None
    y = {n: person.joints3d[JOINTS3D.index(n), 1] for n in ("head_top", "thorax", "pelvis", "r_knee", "l_knee",
                                                             "r_ankle", "l_ankle")}
    assert y["head_top"] > y["thorax"] > y["pelvis"] > max(y["r_knee"], y["l_knee"]) > max(y["r_ankle"], y["l_ankle"]), y
