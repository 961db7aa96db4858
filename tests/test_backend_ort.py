"""Converted models (ONNX in ONNX Runtime, and the torch module on CPU) against the upstream tflite in LiteRT."""
from __future__ import annotations

import cv2
import numpy as np
import pytest

from realtime.config import Pose2DConfig
from realtime.pose2d.backends import BackendError, available_backends, create_backend
from realtime.pose2d.models import ModelError, model_path, model_spec

MODELS = ["cpm", "blazepose-detector", "blazepose-lite", "blazepose-full", "blazepose-heavy"]
PHOTOS = ["golf.jpg", "p1.jpg", "apink1.jpg"]


def photo_batch(photos_dir, name: str, files: list[str]) -> np.ndarray:
    """Centre-square crops of real photos at the model's input size, normalised as the model expects."""
    spec = model_spec(name)
    crops = []
    for f in files:
        bgr = cv2.imread(str(photos_dir / f))
        h, w = bgr.shape[:2]
        s = min(h, w)
        square = bgr[(h - s) // 2:(h - s) // 2 + s, (w - s) // 2:(w - s) // 2 + s, ::-1]
        crops.append(cv2.resize(square, spec.input_size[::-1], interpolation=cv2.INTER_AREA))
    return spec.normalise(np.stack(crops))


def litert(name: str, batch: np.ndarray) -> dict[str, np.ndarray]:
    from ai_edge_litert.interpreter import Interpreter
    spec = model_spec(name)
    it = Interpreter(model_path=str(model_path(name, "tflite")), num_threads=1)
    it.allocate_tensors()
    index = it.get_input_details()[0]["index"]
    by_name = {d["name"]: d["index"] for d in it.get_output_details()}
    results = []
    for x in batch:
        it.set_tensor(index, x[None])
        it.invoke()
        results.append([it.get_tensor(by_name[t]).copy() for t in spec.source_outputs])
    return {n: np.concatenate([r[i] for r in results]) for i, n in enumerate(spec.outputs)}


def assert_close(name: str, ours: dict[str, np.ndarray], ref: dict[str, np.ndarray]) -> None:
    """1e-3 absolute for outputs in [0, 1] (belief maps, flags); 1e-3 of the output's scale for logits/pixels."""
    for key, expected in ref.items():
        assert ours[key].shape == expected.shape, (name, key)
        tolerance = 1e-3 * max(1.0, float(np.abs(expected).max()))
        err = float(np.abs(ours[key] - expected).max())
        assert err < tolerance, f"{name}/{key}: max |diff| {err:.3g} >= {tolerance:.3g}"


def import_torch():
    """torch on one thread: its default of one thread per core is several times slower on a shared CI box."""
    torch = pytest.importorskip("torch")
    torch.set_num_threads(1)
    return torch


@pytest.fixture(scope="module")
def refs(photos_dir):
    return {name: (batch := photo_batch(photos_dir, name, PHOTOS), litert(name, batch)) for name in MODELS}


@pytest.mark.parametrize("name", MODELS)
def test_onnxruntime_matches_litert(name, refs):
    batch, ref = refs[name]
    with create_backend(name, "onnxruntime") as be:
        assert be.name == "onnxruntime" and be.input_shape == model_spec(name).input_shape
        assert_close(name, be.infer(batch), ref)


def test_cpm_belief_maps_peak_on_a_person(refs):
    """Not only equal to LiteRT: the belief maps carry real peaks (a person fills the golf crop)."""
    batch, _ = refs["cpm"]
    with create_backend("cpm", "onnxruntime") as be:
        maps = be.infer(batch[:1])["belief_maps"][0]
    assert maps.shape == (96, 96, 14)
    assert (maps.reshape(-1, 14).max(axis=0) > 0.3).sum() >= 8


@pytest.mark.parametrize("name", ["cpm", "blazepose-detector", "movenet-lightning", "movenet-multipose"])
def test_batch_equals_single_runs(name, refs, photos_dir):
    batch = refs[name][0] if name in refs else photo_batch(photos_dir, name, PHOTOS)
    with create_backend(name, "onnxruntime") as be:
        together = be.infer(batch)
        single = [be.infer(batch[i:i + 1]) for i in range(len(batch))]
    for key in be.output_names:
        assert together[key].shape[0] == len(batch)
        np.testing.assert_allclose(together[key], np.concatenate([s[key] for s in single]), rtol=0, atol=1e-4)
    assert not np.allclose(together[be.output_names[0]][0], together[be.output_names[0]][1])


@pytest.mark.parametrize("name", MODELS)
def test_torch_module_matches_litert(name, refs):
    torch = import_torch()
    from realtime.pose2d.models import torch_module as load_module
    batch, ref = refs[name]
    module = load_module(name)
    with torch.inference_mode():
        outs = module(torch.from_numpy(batch))
    assert_close(name, {k: v.numpy() for k, v in zip(module.output_names, outs)}, ref)


def test_torch_module_channels_last_and_fp16_cast(refs):
    torch = import_torch()
    from realtime.pose2d.models import torch_module as load_module
    batch, ref = refs["cpm"]
    module = load_module("cpm")
    x = torch.from_numpy(batch)
    assert x.permute(0, 3, 1, 2).is_contiguous(memory_format=torch.channels_last)
    half = load_module("cpm").half()
    assert all(p.dtype == torch.float16 for p in half.parameters())
    assert all(b.dtype in (torch.float16, torch.int64) for b in half.buffers())
    with torch.inference_mode():
        (maps,) = module(x)
    np.testing.assert_allclose(maps.numpy(), ref["belief_maps"], atol=1e-3)


def test_auto_backend_and_errors(refs):
    assert "onnxruntime" in available_backends()
    with create_backend("cpm", "auto", Pose2DConfig(ort_threads=2)) as be:
        assert be.name == available_backends()[0]
        with pytest.raises(BackendError, match=r"expected a batch of shape \(N, 192, 192, 3\)"):
            be.infer(np.zeros((2, 100, 100, 3), np.float32))
    with pytest.raises(BackendError, match="unknown backend 'cuda'"):
        create_backend("cpm", "cuda")
    with pytest.raises(ModelError, match="unknown model 'cmp'.*cpm"):
        create_backend("cmp", "onnxruntime")
    be = create_backend("cpm", "onnxruntime")
    be.close()
    with pytest.raises(RuntimeError, match="closed"):
        be.infer(refs["cpm"][0])


def test_a_batch_cut_into_parts_gives_the_whole_batch_result(refs):
    """[pose2d] ort_split_batch: parts of the batch run side by side on their own threads; the result
    is the one-call result, in order, for every batch size around the thread count."""
    crops = np.concatenate([refs["cpm"][0]] * 2)
    crops = np.concatenate([crops, crops[:, ::-1]])  # 4 different crops
    whole = create_backend("cpm", "onnxruntime", Pose2DConfig(ort_threads=1))
    split = create_backend("cpm", "onnxruntime", Pose2DConfig(ort_threads=3, ort_split_batch=True))
    for n in (1, 2, 3, 4):
        (expected,), (got,) = whole.infer(crops[:n]).values(), split.infer(crops[:n]).values()
        assert got.shape == expected.shape
        np.testing.assert_allclose(got, expected, atol=1e-4)
    split.close()
    with pytest.raises(RuntimeError, match="closed"):
        split.infer(crops[:2])
    whole.close()


@pytest.mark.parametrize("threads", [1, 2])
def test_a_large_batch_runs_in_pieces_of_at_most_run_batch(refs, threads):
    """A crowd (many photos' people in one batch) goes through ONNX Runtime RUN_BATCH crops at a time,
    so its working memory stays that of a small batch; the result is every crop's own, in order."""
    from realtime.pose2d.backends.onnxruntime import RUN_BATCH
    from realtime.pose2d.models import INPUT_NAME

    crop = refs["cpm"][0][:1]
    crops = np.concatenate([crop, crop[:, ::-1], crop[:, :, ::-1]] * RUN_BATCH)[: 2 * RUN_BATCH + 3]
    be = create_backend("cpm", "onnxruntime", Pose2DConfig(ort_threads=threads, ort_split_batch=True))
    session = be._single if threads > 1 else be.session
    sizes = []
    run = session.run
    session.run = lambda names, feed: sizes.append(len(feed[INPUT_NAME])) or run(names, feed)
    (got,) = be.infer(crops).values()
    assert sum(sizes) == len(crops) and max(sizes) <= RUN_BATCH
    singles = {i: next(iter(be.infer(crops[i:i + 1]).values())) for i in (0, 1, 2)}
    for i in range(len(crops)):
        np.testing.assert_allclose(got[i:i + 1], singles[i % 3], atol=1e-4)
    be.close()
