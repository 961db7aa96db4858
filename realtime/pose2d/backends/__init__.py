"""Inference backends: one loaded 2D model on one device, batch of crops in, named outputs out.

Every backend honours the tflite contract (NHWC float32 RGB in, the model's outputs under the
registry's stable names out), so callers never care which runtime runs. GPU runtimes are imported
lazily: the core imports without torch or TensorRT.
"""
from __future__ import annotations

import importlib
import importlib.util
import logging
from pathlib import Path

import numpy as np

from realtime.config import Pose2DConfig
from realtime.pose2d.models import ModelError, model_spec

#: Fastest first; "auto" takes the first that is available.
BACKENDS = ("tensorrt", "torch", "onnxruntime")
_CLASSES = {
    "tensorrt": ("realtime.pose2d.backends.tensorrt", "TensorRTBackend"),
    "torch": ("realtime.pose2d.backends.torch_cuda", "TorchBackend"),
    "onnxruntime": ("realtime.pose2d.backends.onnxruntime", "OnnxRuntimeBackend"),
}
log = logging.getLogger(__name__)


class BackendError(RuntimeError):
    """A backend is unknown or unavailable here, or was given input it cannot run."""


class Backend:
    """One loaded model on one device."""
    name: str = ""
    model: str
    input_shape: tuple[int, int, int]
    output_names: list[str]

    def __init__(self, model: str, config: Pose2DConfig | None = None):
        spec = model_spec(model)
        self.model = model
        self.config = config or Pose2DConfig()
        self.input_shape = spec.input_shape
        self.output_names = list(spec.outputs)

    def check_batch(self, batch: np.ndarray) -> np.ndarray:
        """(N,H,W,3) float32, contiguous; a wrong shape is an error naming the expected one."""
        batch = np.asarray(batch)
        if batch.ndim != 4 or batch.shape[1:] != self.input_shape or batch.shape[0] < 1:
            raise BackendError(f"{self.model}: expected a batch of shape (N, {', '.join(map(str, self.input_shape))}), "
                               f"got {batch.shape}")
        return np.ascontiguousarray(batch, dtype=np.float32)

    def infer(self, batch: np.ndarray) -> dict[str, np.ndarray]:
        """(N,H,W,3) float32 NHWC RGB, normalised as ``model_spec(model).normalise`` does -> outputs by name."""
        raise NotImplementedError

    def warm_up(self, max_batch: int = 1) -> None:
        """Pay the first calls' one-off costs (allocations, kernel selection, graph capture) now, for
        batches of up to ``max_batch``, so that the first frames of a stream are not the slow ones."""
        self.infer(np.zeros((1, *self.input_shape), np.float32))

    def close(self) -> None:
        """Release the runtime's resources; the backend is unusable afterwards."""

    def __enter__(self) -> "Backend":
        return self

    def __exit__(self, *exc) -> None:
        self.close()


def may_have_gpu() -> bool:
    """An NVIDIA device node and torch are there: the cheap test, before importing torch (seconds on
    a small CPU box) to ask CUDA."""
    return any(Path("/dev").glob("nvidia[0-9]*")) and importlib.util.find_spec("torch") is not None


def _gpu_present() -> bool:
    if not may_have_gpu():
        return False
    import torch
    return torch.cuda.is_available()


def is_available(backend: str) -> bool:
    if backend == "onnxruntime":
        return importlib.util.find_spec("onnxruntime") is not None
    if backend == "torch":
        return _gpu_present()
    if backend == "tensorrt":
        return importlib.util.find_spec("tensorrt") is not None and _gpu_present()
    return False


def available_backends() -> list[str]:
    """Backends usable on this machine, fastest first (torch counts only with CUDA)."""
    return [b for b in BACKENDS if is_available(b)]


def create_backend(model: str, backend: str = "auto", config: Pose2DConfig | None = None) -> Backend:
    """Load ``model`` (a registry name) on ``backend``, or on the fastest available one for "auto"."""
    model_spec(model)
    if backend == "auto":
        found = available_backends()
        if not found:
            raise BackendError("no inference backend is available (install onnxruntime)")
        for candidate in found[:-1]:
            try:
                return _load(model, candidate, config)
            except BackendError as e:
                log.warning("backend %s could not load %s (%s); trying the next one", candidate, model, e)
        backend = found[-1]
    return _load(model, backend, config)


def _load(model: str, backend: str, config: Pose2DConfig | None) -> Backend:
    if backend not in _CLASSES:
        raise BackendError(f"unknown backend {backend!r}; one of auto, {', '.join(BACKENDS)}")
    module_name, class_name = _CLASSES[backend]
    try:
        module = importlib.import_module(module_name)
    except ModuleNotFoundError as e:
        if e.name == module_name:
            raise BackendError(f"backend {backend!r} is not part of this installation") from None
        raise BackendError(f"backend {backend!r} is unavailable: {e.name} is not installed") from None
    return getattr(module, class_name)(model, config)


__all__ = ["Backend", "BackendError", "BACKENDS", "ModelError", "available_backends", "create_backend",
           "is_available"]
