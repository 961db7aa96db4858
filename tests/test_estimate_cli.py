"""``realtime estimate``: a real subprocess on real photos, JSON out, bad files reported and skipped."""
from __future__ import annotations

import json
import math
import subprocess
import sys
from pathlib import Path

import pytest

from realtime.skeleton import JOINTS3D, LSP14

REPO = Path(__file__).resolve().parent.parent


def _estimate(*args: str) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "realtime", "estimate", *args], cwd=REPO,
                          capture_output=True, text=True, timeout=120)


def test_json_with_lsp14_names(photos_dir):
    done = _estimate(str(photos_dir / "p2.jpg"), str(photos_dir / "p1.jpg"), "--json", "--backend", "onnxruntime")
    assert done.returncode == 0, done.stderr
    out = json.loads(done.stdout)
    assert out["model"] == "movenet-thunder" and out["detector"] == "nanodet"   # [pose2d] photo_model
    assert out["backend"] == "onnxruntime"
    p2, p1 = out["images"]
    assert (p2["width"], p2["height"]) == (500, 422)
    assert len(p2["people"]) == 2 and len(p1["people"]) == 1
    for person in p2["people"] + p1["people"]:
        assert list(person["keypoints"]) == list(LSP14)
        x0, y0, x1, y1 = person["bbox"]
        assert 0 < person["score"] <= 1 and x0 < x1 and y0 < y1
        for x, y, c in person["keypoints"].values():
            assert 0 <= c <= 1 and (c == 0 or (x0 - 1 <= x <= x1 + 1 and y0 - 1 <= y <= y1 + 1))
        if out["lifting"] == "on":
            assert person["joints3d"] is None or list(person["joints3d"]) == list(JOINTS3D)
            assert person["joints3d"] is None or (len(person["root"]) == 3 and person["root"][2] < 0)
        else:
            assert "joints3d" not in person


@pytest.mark.slow
def test_bad_files_are_reported_and_skipped(photos_dir, tmp_path):
    (tmp_path / "notes.jpg").write_text("not an image")
    missing = tmp_path / "missing.png"
    done = _estimate(str(missing), str(tmp_path / "notes.jpg"), str(photos_dir / "p1.jpg"), "--json",
                     "--backend", "onnxruntime")
    assert done.returncode == 1
    errors = [line for line in done.stderr.splitlines() if line.startswith("error:")]
    assert len(errors) == 2 and str(missing) in errors[0] and "notes.jpg" in errors[1]
    assert "Traceback" not in done.stderr
    images = json.loads(done.stdout)["images"]
    assert "no such file" in images[0]["error"] and "not an image" in images[1]["error"]
    assert len(images[2]["people"]) == 1


def test_text_output_with_another_model(photos_dir):
    done = _estimate(str(photos_dir / "p1.jpg"), "--model", "blazepose-lite", "--backend", "onnxruntime", "--no-3d")
    assert done.returncode == 0, done.stderr
    assert "model blazepose-lite" in done.stdout and "1 person" in done.stdout
    for name in LSP14:
        assert f"    {name} " in done.stdout


@pytest.mark.slow
def test_draw_writes_the_people_on_the_photos(photos_dir, tmp_path):
    import cv2

    one = _estimate(str(photos_dir / "p2.jpg"), "--no-3d", "--backend", "onnxruntime", "--draw", str(tmp_path / "p2.png"))
    assert one.returncode == 0, one.stderr
    drawn, photo = cv2.imread(str(tmp_path / "p2.png")), cv2.imread(str(photos_dir / "p2.jpg"))
    assert drawn.shape == photo.shape and (cv2.absdiff(drawn, photo).max(axis=2) > 60).mean() > 0.005
    several = _estimate(str(photos_dir / "p1.jpg"), str(photos_dir / "p3.jpg"), "--no-3d", "--backend", "onnxruntime",
                        "--draw", str(tmp_path / "out"))
    assert several.returncode == 0, several.stderr
    assert sorted(p.name for p in (tmp_path / "out").iterdir()) == ["p1.jpg", "p3.jpg"]


@pytest.mark.slow
def test_draw_3d_renders_every_lifted_person_as_a_picture_and_as_a_page(photos_dir, tmp_path):
    """--draw-3d OUT.png: each person's skeleton in its own colour (the viewer's palette); OUT.html: the
    people's 3D poses inside a self-contained page (plotly.js and the data, no external script)."""
    import re

    import cv2
    import numpy as np

    from realtime.viewer.poses3d import PALETTE

    done = _estimate(str(photos_dir / "p3.jpg"), "--json", "--backend", "onnxruntime",
                     "--draw-3d", str(tmp_path / "p3.png"))
    assert done.returncode == 0, done.stderr
    people = [p for p in json.loads(done.stdout)["images"][0]["people"] if p.get("joints3d")]
    assert len(people) >= 2
    picture = cv2.imread(str(tmp_path / "p3.png")).astype(int)
    coloured = [int((np.abs(picture - np.array(c)).max(axis=2) < 30).sum()) for c in PALETTE[:len(people)]]
    assert all(n > 200 for n in coloured), coloured
    page = _estimate(str(photos_dir / "p3.jpg"), "--backend", "onnxruntime", "--draw-3d", str(tmp_path / "p3.html"))
    assert page.returncode == 0, page.stderr
    text = (tmp_path / "p3.html").read_text()
    data = json.loads(re.search(r'id="data">(.*?)</script>', text, re.S).group(1))
    assert len(data["people"]) == len(people) and all(len(p["j3"]) == len(JOINTS3D) for p in data["people"])
    assert "Plotly" in text and not re.search(r"<script[^>]+src=", text)
    no_3d = _estimate(str(photos_dir / "p3.jpg"), "--no-3d", "--draw-3d", str(tmp_path / "x.png"))
    assert no_3d.returncode == 2 and no_3d.stderr.strip() == "error: --draw-3d: 3D lifting is disabled (--no-3d)"


def test_unknown_backend_is_a_usage_error(photos_dir):
    done = _estimate(str(photos_dir / "p1.jpg"), "--backend", "nonsense")
    assert done.returncode == 2 and "invalid choice" in done.stderr


@pytest.mark.parametrize("backend", ["tensorrt"])
def test_unavailable_backend_is_one_error_line(photos_dir, backend):
    pytest.importorskip("onnxruntime")
    try:
        import tensorrt  # noqa: F401
        pytest.skip("TensorRT is installed here")
    except ImportError:
        pass
    done = _estimate(str(photos_dir / "p1.jpg"), "--backend", backend)
    assert done.returncode == 2 and done.stderr.startswith("error:") and "Traceback" not in done.stderr


def test_3d_joints_with_a_pose_prior(photos_dir, tmp_path):
    lifting = pytest.importorskip("realtime.lifting")
    import numpy as np

    rng = np.random.default_rng(0)
    poses = rng.normal(size=(16, 3))[None] * 0.3 + rng.normal(size=(300, 16, 3)) * 0.05
    prior = lifting.PosePrior.fit(poses, n_components=2, n_basis=4, progress=False, em_iters=5, align_iters=1,
                                  init_samples=100)
    prior.save(tmp_path / "prior.npz")
    (tmp_path / "config.toml").write_text(f'[lifting]\nprior = "{tmp_path / "prior.npz"}"\n')
    done = _estimate(str(photos_dir / "p1.jpg"), "--json", "--backend", "onnxruntime",
                     "--config", str(tmp_path / "config.toml"))
    assert done.returncode == 0, done.stderr
    out = json.loads(done.stdout)
    assert out["lifting"] == "on"
    (person,) = out["images"][0]["people"]
    assert list(person["joints3d"]) == list(JOINTS3D)
    assert all(len(xyz) == 3 and all(np.isfinite(xyz)) for xyz in person["joints3d"].values())


def test_a_directory_stands_for_its_images(photos_dir, tmp_path):
    """`realtime estimate DIR`: every image directly inside, by name; --draw writes one picture each.
    A directory without images is one error line."""
    done = _estimate(str(photos_dir), "--json", "--no-3d", "--draw", str(tmp_path / "drawn"))
    assert done.returncode == 0, done.stderr
    names = [Path(r["image"]).name for r in json.loads(done.stdout)["images"]]
    expected = sorted(p.name for p in photos_dir.iterdir() if p.suffix.lower() in (".jpg", ".jpeg", ".png"))
    assert names == expected
    assert sorted(p.stem for p in (tmp_path / "drawn").iterdir()) == sorted(Path(n).stem for n in names)
    (tmp_path / "empty").mkdir()
    done = _estimate(str(tmp_path / "empty"))
    assert done.returncode == 1 and "no images" in done.stderr


def test_a_video_prints_a_line_a_frame_with_track_ids(small_video, photos_dir, tmp_path):
    """`realtime estimate clip.mp4` (VIDEO mode): a header line, then one JSON line per frame in order
    with the file's times, people with track ids (-1 until confirmed, then the same person keeps
    theirs) and 3D; --draw writes the frames drawn as a video. A missing video is one error line and
    the others still run; images and videos in one call is a usage error."""
    import cv2

    frames = 12
    drawn = tmp_path / "drawn.mp4"
    done = _estimate(str(small_video), "--json", "--frames", str(frames), "--backend", "onnxruntime",
                     "--draw", str(drawn))
    assert done.returncode == 0, done.stderr
    header, *lines = [json.loads(line) for line in done.stdout.splitlines()]
    assert header["video"] == str(small_video) and header["model"] == "movenet-lightning"  # [pose2d] model
    assert [f["frame"] for f in lines] == list(range(frames))
    times = [f["t"] for f in lines]
    assert times[0] == 0 and all(0.02 < b - a < 0.05 for a, b in zip(times, times[1:]))   # 28 fps
    ids = [p["id"] for f in lines for p in f["people"]]
    assert all(len(f["people"]) >= 1 for f in lines) and max(ids) >= 1
    last = {p["id"] for p in lines[-1]["people"] if p["id"] >= 0}
    lifted = [p["joints3d"] for f in lines for p in f["people"] if p["joints3d"] is not None]
    assert last and all(list(j) == list(JOINTS3D) for j in lifted)
    # None where too few joints are seen to lift (the table and the frame's edge cut the wrestlers)
    assert len(lifted) >= 0.9 * sum(len(f["people"]) for f in lines)
    assert len(last & {p["id"] for p in lines[-2]["people"]}) >= 1       # ids carry over between frames
    cap = cv2.VideoCapture(str(drawn))
    assert int(cap.get(cv2.CAP_PROP_FRAME_COUNT)) == frames and cap.read()[1].shape == (256, 340, 3)
    cap.release()

    missing = tmp_path / "missing.mp4"
    done = _estimate(str(missing), str(small_video), "--frames", "3", "--backend", "onnxruntime")
    assert done.returncode == 1 and done.stderr.strip() == f"error: {missing}: no such video file"
    assert done.stdout.splitlines()[-1] == f"{small_video}: 3 frames"
    mixed = _estimate(str(small_video), str(photos_dir / "p1.jpg"))
    assert mixed.returncode == 2 and "not both" in mixed.stderr


def test_a_reader_that_goes_away_ends_the_run_quietly(small_video):
    """`realtime estimate clip.mp4 --json | head -1`: the closed pipe ends the run with no traceback
    and no error line (status 141, as a Unix tool killed by SIGPIPE)."""
    proc = subprocess.Popen([sys.executable, "-m", "realtime", "estimate", str(small_video), "--json",
                             "--backend", "onnxruntime"], cwd=REPO, stdout=subprocess.PIPE,
                            stderr=subprocess.PIPE, text=True)
    assert json.loads(proc.stdout.readline())["video"] == str(small_video)
    proc.stdout.close()
    assert proc.wait(timeout=120) == 141
    assert proc.stderr.read() == ""


def test_json_says_the_focal_length_each_photo_was_lifted_with(photos_dir, tmp_path):
    """A file with an EXIF 35 mm equivalent focal length is lifted with it, one without with 0.8 x its
    width; both say which in `focal_px`."""
    from PIL import Image

    from realtime.pose2d.images import FILM_DIAGONAL_MM

    with Image.open(photos_dir / "p1.jpg") as im:
        exif = im.getexif()
        exif.get_ifd(0x8769)[0xA405] = 26
        im.save(tmp_path / "phone.jpg", exif=exif)
        width, height = im.size
    done = _estimate(str(tmp_path / "phone.jpg"), str(photos_dir / "p1.jpg"), "--json", "--backend", "onnxruntime")
    assert done.returncode == 0, done.stderr
    phone, plain = json.loads(done.stdout)["images"]
    assert phone["focal_px"] == round(26 * math.hypot(width, height) / FILM_DIAGONAL_MM, 1)
    assert plain["focal_px"] == round(0.8 * width, 1)
