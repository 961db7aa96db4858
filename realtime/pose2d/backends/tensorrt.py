"""TensorRT 10 backend: an engine built from the model's ONNX, cached on disk, run on a CUDA stream.

Build (once per model, TensorRT version, GPU and precision; minutes, so the engine is cached under
``<engines_dir>/cache/``): ``OnnxParser`` fills a network (TensorRT 10 networks are always explicit
batch), ``BuilderFlag.FP16`` allows half-precision kernels, and one optimisation profile covers batch
1 .. ``[pose2d] max_people`` with the typical batch (4 people) as the tuning point.

Run: device buffers sized for the profile's maximum batch are allocated once; each call sets the
input shape, copies the crops in, ``execute_async_v3`` on the backend's stream, copies outputs out.

Device memory and streams are PyTorch CUDA tensors and streams rather than cuda-python or pycuda:
torch is already the GPU dependency of this project (the torch backend), its caching allocator,
pinned host memory and stream objects do all this backend needs, and a second CUDA binding would
add a dependency and a second owner of the CUDA context for no gain.
"""
from __future__ import annotations

import hashlib
import logging
from pathlib import Path
from typing import Any

import numpy as np

from realtime.config import Pose2DConfig
from realtime.pose2d.backends import Backend, BackendError
from realtime.pose2d.models import engines_dir, model_path

log = logging.getLogger(__name__)

#: Batch size the optimisation profile is tuned for (a typical frame's number of people).
OPT_BATCH = 4


def import_tensorrt() -> Any:
    """``tensorrt`` or a clear error; the import can also fail on missing libnvinfer libraries."""
    try:
        import tensorrt
    except (ImportError, OSError) as e:  # OSError: the bindings are there but libnvinfer is not
        raise BackendError(
            "TensorRT is not installed: install NVIDIA's TensorRT 10 Python package (pip install tensorrt "
            f"from NVIDIA's index, with its builder libraries) or use backend 'torch' ({e})") from None
    return tensorrt


def engine_key(onnx_bytes: bytes, trt_version: str, gpu_name: str, capability: tuple[int, int],
               precision: str, max_batch: int) -> str:
    """Cache key: an engine is only valid for the same model, TensorRT, GPU, precision and profile."""
    h = hashlib.sha256(onnx_bytes).hexdigest()[:16]
    gpu = "".join(c if c.isalnum() else "-" for c in gpu_name).strip("-")
    return f"{h}-trt{trt_version}-{gpu}-sm{capability[0]}{capability[1]}-{precision}-b{max_batch}"


class TensorRTBackend(Backend):
    name = "tensorrt"

    def __init__(self, model: str, config: Pose2DConfig | None = None) -> None:
        trt = import_tensorrt()
        try:
            import torch
        except ImportError:
            raise BackendError("the tensorrt backend keeps its device buffers in PyTorch CUDA tensors: "
                               "pip install torch (a CUDA build)") from None
        if not torch.cuda.is_available():
            raise BackendError("the tensorrt backend needs an NVIDIA GPU, and CUDA is not available")
        super().__init__(model, config)
        self._trt, self._torch = trt, torch
        self.max_batch = self.config.max_people
        self._logger = trt.Logger(trt.Logger.WARNING)
        onnx_path = model_path(model, "onnx", self.config)
        engine_bytes = self._cached_engine(onnx_path, self.config)
        self._runtime = trt.Runtime(self._logger)
        self._engine = self._runtime.deserialize_cuda_engine(engine_bytes)
        if self._engine is None:
            raise BackendError(f"TensorRT could not deserialize {self.engine_path} (delete it to rebuild)")
        self._context = self._engine.create_execution_context()
        names = [self._engine.get_tensor_name(i) for i in range(self._engine.num_io_tensors)]
        inputs = [n for n in names if self._engine.get_tensor_mode(n) == trt.TensorIOMode.INPUT]
        if len(inputs) != 1:
            raise BackendError(f"{onnx_path}: expected one input tensor, the engine has {inputs}")
        self._input = inputs[0]
        if sorted(n for n in names if n != self._input) != sorted(self.output_names):
            raise BackendError(f"{onnx_path}: engine outputs {names} differ from the model's {self.output_names}")
        self._stream = torch.cuda.Stream()
        self._device = {n: self._allocate(n, "cuda") for n in names}
        self._host = {n: self._allocate(n, "cpu") for n in names}
        for n, buf in self._device.items():
            self._context.set_tensor_address(n, buf.data_ptr())

    def _allocate(self, name: str, device: str) -> Any:
        """A device (or pinned host) buffer for ``name`` at the profile's maximum batch."""
        trt, torch = self._trt, self._torch
        shape = list(self._engine.get_tensor_shape(name))
        shape[0] = self.max_batch
        if any(d < 0 for d in shape):
            raise BackendError(f"tensor {name!r} has a dynamic dimension other than the batch: {shape}")
        dtype = torch.from_numpy(np.empty(0, dtype=trt.nptype(self._engine.get_tensor_dtype(name)))).dtype
        return torch.empty(shape, dtype=dtype, device=device, pin_memory=device == "cpu")

    def _cached_engine(self, onnx_path: Path, config: Pose2DConfig) -> bytes:
        trt, torch = self._trt, self._torch
        onnx_bytes = onnx_path.read_bytes()
        key = engine_key(onnx_bytes, trt.__version__, torch.cuda.get_device_name(),
                         torch.cuda.get_device_capability(), config.precision, self.max_batch)
        cache = engines_dir(config) / "cache" / f"{self.model}-{key}.engine"
        self.engine_path, self.built = cache, not cache.exists()
        if not self.built:
            return cache.read_bytes()
        log.info("building a TensorRT engine for %s (%s); cached at %s", self.model, config.precision, cache)
        engine_bytes = self._build(onnx_bytes, onnx_path, config.precision)
        cache.parent.mkdir(parents=True, exist_ok=True)
        tmp = cache.with_suffix(".tmp")
        tmp.write_bytes(engine_bytes)
        tmp.replace(cache)
        return engine_bytes

    def _build(self, onnx_bytes: bytes, onnx_path: Path, precision: str) -> bytes:
        trt = self._trt
        builder = trt.Builder(self._logger)
        network = builder.create_network(0)
        parser = trt.OnnxParser(network, self._logger)
        if not parser.parse(onnx_bytes):
            errors = "; ".join(str(parser.get_error(i)) for i in range(parser.num_errors))
            raise BackendError(f"TensorRT could not parse {onnx_path}: {errors}")
        config = builder.create_builder_config()
        if precision == "fp16":
            if not hasattr(trt.BuilderFlag, "FP16"):
                raise BackendError(
                    f"TensorRT {trt.__version__} has no BuilderFlag.FP16 (TensorRT 11 removed weak typing): "
                    "use TensorRT 10, or set [pose2d] precision = \"fp32\"")
            config.set_flag(trt.BuilderFlag.FP16)
        inp = network.get_input(0)
        hw = tuple(inp.shape)[1:]
        profile = builder.create_optimization_profile()
        profile.set_shape(inp.name, (1, *hw), (min(OPT_BATCH, self.max_batch), *hw), (self.max_batch, *hw))
        config.add_optimization_profile(profile)
        serialized = builder.build_serialized_network(network, config)
        if serialized is None:
            raise BackendError(f"TensorRT failed to build an engine from {onnx_path} (see its log above)")
        return bytes(serialized)

    def infer(self, batch: np.ndarray) -> dict[str, np.ndarray]:
        batch = self.check_batch(batch)
        step = self.max_batch
        parts = [self._run(batch[i:i + step]) for i in range(0, len(batch), step)]
        if len(parts) == 1:
            return parts[0]
        return {k: np.concatenate([p[k] for p in parts]) for k in self.output_names}

    def _run(self, chunk: np.ndarray) -> dict[str, np.ndarray]:
        torch = self._torch
        n = len(chunk)
        self._context.set_input_shape(self._input, (n, *self.input_shape))
        self._host[self._input].numpy()[:n] = chunk
        with torch.cuda.stream(self._stream):
            self._device[self._input][:n].copy_(self._host[self._input][:n], non_blocking=True)
            if not self._context.execute_async_v3(self._stream.cuda_stream):
                raise BackendError(f"TensorRT execution failed for {self.model!r} at batch {n}")
            for k in self.output_names:
                self._host[k][:n].copy_(self._device[k][:n], non_blocking=True)
        self._stream.synchronize()
        return {k: self._host[k][:n].numpy().astype(np.float32, copy=True) for k in self.output_names}

    def close(self) -> None:
        self._device = {}
        self._host = {}
        self._context = None
        self._engine = None

