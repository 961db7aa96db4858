"""PyTorch backend: the converted model as a ``torch.nn.Module`` on CUDA, where TensorRT is absent.

Speed comes from four things, each cheap to keep:
- FP16 weights and activations (``[pose2d] precision``), the input cast on the GPU, outputs cast back
  to float32 on the GPU so the host never converts half floats;
- channels-last: the module takes NHWC crops and permutes them to an NCHW *view*, which is already
  channels-last in memory, and its conv weights are stored channels-last too, so cuDNN runs NHWC
  kernels with no layout transposes;
- one CUDA graph per batch bucket (1, 2, 4, ... 64): a batch is padded up to the next bucket and the
  whole network replays as one launch, which removes the per-layer launch gaps that dominate small
  batches; a graph is captured the first time its bucket is used, or up front by ``warm_up`` (the
  runtime's inference process does this before it asks for its first frame: captures with cuDNN's
  autotuning take long enough to stall a stream's first seconds);
- pinned host buffers per bucket and asynchronous copies on the backend's own stream.
Gradients are off with ``no_grad``, not ``inference_mode``: the graphs' static tensors are reused
by later calls outside any such mode, which inference tensors do not allow.

``device="cpu"`` runs the same module eagerly in FP32 (no graphs): it is how the tests check this
backend's numerics on machines without a GPU.
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np

from realtime.config import Pose2DConfig
from realtime.pose2d.backends import Backend, BackendError
from realtime.pose2d.models import model_path

#: Batch sizes that get a captured CUDA graph; larger batches run in chunks of the last one.
BUCKETS: tuple[int, ...] = (1, 2, 4, 8, 16, 32, 64)


def bucket_for(n: int, buckets: tuple[int, ...] = BUCKETS) -> int:
    """The smallest bucket holding ``n`` crops (``n`` must not exceed the largest bucket)."""
    for b in buckets:
        if n <= b:
            return b
    raise ValueError(f"batch of {n} is larger than the largest bucket {buckets[-1]}")


@dataclass
class _Graph:
    """One captured bucket: its graph, the static device tensors it reads/writes, pinned copies."""

    graph: Any
    device_in: Any
    device_out: dict[str, Any]
    host_in: Any
    host_out: dict[str, Any]


class TorchBackend(Backend):
    name = "torch"

    def __init__(self, model: str, config: Pose2DConfig | None = None, device: str = "cuda",
                 graphs: bool | None = None, bucketed: bool | None = None,
                 buckets: tuple[int, ...] = BUCKETS) -> None:
        """``graphs``: CUDA graphs (default on CUDA); ``bucketed``: pad each batch up to one of
        ``buckets`` (default = graphs), running batches above the largest in chunks of it."""
        super().__init__(model, config)
        try:
            import torch
        except ImportError:
            raise BackendError("the torch backend needs PyTorch: pip install torch") from None
        if device.startswith("cuda") and not torch.cuda.is_available():
            raise BackendError(
                f"the torch backend was asked for {device!r} but CUDA is not available "
                f"(torch {torch.__version__}); use backend 'onnxruntime' on machines without an NVIDIA GPU")
        from realtime.pose2d import to_torch

        self._torch = torch
        self.device = torch.device(device)
        self.cuda = self.device.type == "cuda"
        self.dtype = torch.float16 if (self.cuda and self.config.precision == "fp16") else torch.float32
        self.graphs = self.cuda and (graphs is None or graphs)
        self.bucketed = self.graphs if bucketed is None else bucketed
        self.buckets = tuple(sorted(buckets))
        module = to_torch.load(model_path(model, "torch", self.config))
        module = module.eval().to(self.device, dtype=self.dtype)
        if self.cuda:
            module = module.to(memory_format=torch.channels_last)
            torch.backends.cudnn.benchmark = True  # fixed bucket shapes: autotune each conv once, before capture
        self._module = module
        self._captured: dict[int, _Graph] = {}
        self._stream = torch.cuda.Stream(self.device) if self.cuda else None

    @property
    def captured(self) -> list[int]:
        """Buckets whose CUDA graph has been captured so far."""
        return sorted(self._captured)

    def infer(self, batch: np.ndarray) -> dict[str, np.ndarray]:
        if self._module is None:
            raise BackendError(f"{self.model}: the torch backend is closed")
        batch = self.check_batch(batch)
        if not self.bucketed:
            return self._eager(batch)
        step = self.buckets[-1]
        parts = [self._bucket(batch[i:i + step]) for i in range(0, len(batch), step)]
        if len(parts) == 1:
            return parts[0]
        return {k: np.concatenate([p[k] for p in parts]) for k in self.output_names}

    def warm_up(self, max_batch: int = 1) -> None:
        """Capture the graphs of every bucket up to the one holding ``max_batch`` crops (larger
        batches run in chunks of the largest bucket); eager backends run one batch."""
        if not self.bucketed:
            return super().warm_up(max_batch)
        top = bucket_for(min(max(max_batch, 1), self.buckets[-1]), self.buckets)
        for size in self.buckets:
            if size <= top:
                self._bucket(np.zeros((size, *self.input_shape), np.float32))

    def _bucket(self, chunk: np.ndarray) -> dict[str, np.ndarray]:
        n, size = len(chunk), bucket_for(len(chunk), self.buckets)
        if self.graphs:
            return self._replay(chunk, size)
        padded = np.zeros((size, *self.input_shape), dtype=np.float32)
        padded[:n] = chunk
        return {k: v[:n] for k, v in self._eager(padded).items()}

    def _forward(self, x: Any) -> dict[str, Any]:
        out = self._module(x.to(self.dtype))
        return {k: v.float().contiguous() for k, v in zip(self.output_names, _as_tuple(out))}

    def _eager(self, batch: np.ndarray) -> dict[str, np.ndarray]:
        torch = self._torch
        with torch.no_grad():
            x = torch.from_numpy(batch).to(self.device)
            out = self._forward(x)
            return {k: v.cpu().numpy() for k, v in out.items()}

    def _replay(self, chunk: np.ndarray, size: int) -> dict[str, np.ndarray]:
        n = len(chunk)
        g = self._captured.get(size) or self._capture(size)
        host_in = g.host_in.numpy()
        host_in[:n] = chunk
        host_in[n:] = 0.0
        with self._torch.cuda.stream(self._stream):
            g.device_in.copy_(g.host_in, non_blocking=True)
            g.graph.replay()
            for k, v in g.device_out.items():
                g.host_out[k].copy_(v, non_blocking=True)
        self._stream.synchronize()
        return {k: v.numpy()[:n].copy() for k, v in g.host_out.items()}

    def _capture(self, size: int) -> _Graph:
        """Warm up on a side stream, then capture ``size`` crops as one graph (PyTorch's documented recipe)."""
        torch = self._torch
        device_in = torch.zeros((size, *self.input_shape), dtype=torch.float32, device=self.device)
        with torch.no_grad():
            self._stream.wait_stream(torch.cuda.current_stream(self.device))
            with torch.cuda.stream(self._stream):
                for _ in range(3):
                    self._forward(device_in)
            torch.cuda.current_stream(self.device).wait_stream(self._stream)
            graph = torch.cuda.CUDAGraph()
            with torch.cuda.graph(graph, stream=self._stream):
                device_out = self._forward(device_in)
        host_in = torch.empty(device_in.shape, dtype=torch.float32, pin_memory=True)
        host_out = {k: torch.empty(v.shape, dtype=v.dtype, pin_memory=True) for k, v in device_out.items()}
        g = _Graph(graph, device_in, device_out, host_in, host_out)
        self._captured[size] = g
        return g

    def close(self) -> None:
        self._captured.clear()
        self._module = None
        if self.cuda:
            self._torch.cuda.empty_cache()


def _as_tuple(out: Any) -> tuple:
    if isinstance(out, dict):
        return tuple(out.values())
    if isinstance(out, (tuple, list)):
        return tuple(out)
    return (out,)
