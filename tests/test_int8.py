"""``realtime.pose2d.int8``: the detector's int8 model, built from the committed calibration table on
real models, finds the people the float32 model finds; a table for another build is a clear error."""
from __future__ import annotations

import json
from dataclasses import replace

import numpy as np
import pytest

from realtime.config import Pose2DConfig
from realtime.pose2d import PoseEstimator2D, load_image
from realtime.pose2d import int8
from realtime.pose2d.models import ModelError, build, built_stamp, model_path, model_spec, stamp

pytestmark = pytest.mark.skipif(not int8.has_table("nanodet"), reason="no committed int8 table for nanodet")


def _iou(a: np.ndarray, b: np.ndarray) -> float:
    lo, hi = np.maximum(a[:2], b[:2]), np.minimum(a[2:], b[2:])
    inter = np.prod(np.clip(hi - lo, 0, None))
    return float(inter / (np.prod(a[2:] - a[:2]) + np.prod(b[2:] - b[:2]) - inter))


def test_the_int8_detector_finds_the_people_the_float_one_finds(models_dir, photos_dir):
    """On photos of one to five people: every person the float32 detector finds is found by the int8
    one in nearly the same box, with nearly the same score; the int8 file records its table."""
    config = Pose2DConfig(backend="onnxruntime", models_dir=str(models_dir))
    path = model_path("nanodet", "int8", config)
    assert path.name == "nanodet-int8.onnx"
    assert built_stamp(path) == {**stamp(model_spec("nanodet")), "int8_table_sha256": int8.table_sha256("nanodet")}
    found = {}
    for on in (False, True):
        with PoseEstimator2D.create(config=replace(config, cpu_int8=on)) as est:
            assert est.detector.backend.int8 is on and est.keypoint_backend.int8 is False   # MoveNet: float32
            found[on] = [est.detect([load_image(photos_dir / n)])[0] for n in ("p1.jpg", "p2.jpg", "apink2.jpg", "ski.jpg")]
    for float_dets, int8_dets in zip(found[False], found[True]):
        strong = [d for d in float_dets if d.score >= 0.5]
        assert strong
        for d in strong:
            best = max(int8_dets, key=lambda e: _iou(d.box, e.box))
            assert _iou(d.box, best.box) > 0.85 and abs(best.score - d.score) < 0.1


def test_a_table_for_another_build_is_one_clear_error(models_dir, tmp_path):
    config = Pose2DConfig(models_dir=str(models_dir))
    fp32 = model_path("nanodet", "onnx", config)
    other = {**stamp(model_spec("nanodet")), "converter": "0"}
    with pytest.raises(int8.Int8Error, match="measured on another build of nanodet.*run tools/calibrate_int8.py"):
        int8.quantize("nanodet", fp32, tmp_path / "x-int8.onnx", other)
    assert not (tmp_path / "x-int8.onnx").exists()
    with pytest.raises(ModelError, match="movenet-lightning: no int8 calibration table"):
        build("movenet-lightning", ("int8",), config)


def test_the_committed_table_matches_the_converter():
    """Rerun tools/calibrate_int8.py when this fails: the table's tensor names belong to one build."""
    table = json.loads(int8.table_path("nanodet").read_text())
    assert table["stamp"] == stamp(model_spec("nanodet"))
    lo, hi = np.array(list(table["ranges"].values())).T
    assert len(lo) > 50 and np.all(lo <= hi) and np.all(np.isfinite(hi))


def test_without_a_usable_int8_model_the_detector_runs_in_float32(models_dir, tmp_path, monkeypatch, caplog):
    """A stale table (here: one measured on another converter) must not stop the pipeline: the
    backend says why in one warning and loads the float32 model."""
    from realtime.pose2d.backends import create_backend

    table = json.loads(int8.table_path("nanodet").read_text())
    table["stamp"] = {**table["stamp"], "converter": "0"}
    stale = tmp_path / "int8_nanodet.json"
    stale.write_text(json.dumps(table))
    monkeypatch.setattr(int8, "table_path", lambda name: stale)
    config = Pose2DConfig(models_dir=str(models_dir), engines_dir=str(tmp_path / "engines"), cpu_int8=True)
    with caplog.at_level("WARNING"), create_backend("nanodet", "onnxruntime", config) as backend:
        assert not backend.int8 and backend.path.name == "nanodet.onnx"
    (warning,) = [r.getMessage() for r in caplog.records if r.levelname == "WARNING"]
    assert warning.startswith("nanodet: running the float32 model") and "tools/calibrate_int8.py" in warning
