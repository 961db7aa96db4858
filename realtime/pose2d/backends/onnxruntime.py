"""ONNX Runtime CPU backend: the converted model with a dynamic batch, any batch size.

On a few CPU cores, sharing each layer's work of a small batch out over threads (ONNX Runtime's
intra-op parallelism) scales poorly: the layers of a 192x192 network are too small to split well.
Cutting the batch into parts, one per thread, each run single-threaded, does better for batches of
two or more crops (``[pose2d] ort_split_batch``); ``InferenceSession.run`` is thread-safe and
releases the GIL, so the parts run truly in parallel. A run holds at most ``RUN_BATCH`` crops:
ONNX Runtime's working memory grows with the batch (a list of 8 crowd photos, 376 people, peaked at
16.5 GB with MoveNet Thunder in one run per thread: docs/benchmarks.md).

With ``[pose2d] cpu_int8`` a network that has an int8 calibration (the NanoDet detector) runs its
int8 model (``realtime/pose2d/int8.py``); where that cannot be built, the float32 one, with a warning.
"""
from __future__ import annotations

import logging
from concurrent.futures import ThreadPoolExecutor

import numpy as np
import onnxruntime as ort

from realtime.config import Pose2DConfig
from realtime.pose2d.backends import Backend
from realtime.pose2d.int8 import has_table
from realtime.pose2d.models import INPUT_NAME, ModelError, model_path

#: Most crops in one ``InferenceSession.run``; larger batches run in pieces of about this size.
RUN_BATCH = 16
log = logging.getLogger(__name__)


class OnnxRuntimeBackend(Backend):
    """CPU execution provider, sequential execution, all graph optimisations, ``ort_threads`` threads."""
    name = "onnxruntime"

    def __init__(self, model: str, config: Pose2DConfig | None = None):
        super().__init__(model, config)
        self.path = self._int8_path() or model_path(model, "onnx", self.config)
        threads = self.config.ort_threads
        self.session: ort.InferenceSession | None = self._session(threads)
        self._parts = threads if self.config.ort_split_batch and threads > 1 else 1
        self._single = self._session(1) if self._parts > 1 else None
        self._pool = ThreadPoolExecutor(self._parts, thread_name_prefix="ort") if self._parts > 1 else None

    @property
    def int8(self) -> bool:
        return self.path.name.endswith("-int8.onnx")

    def _int8_path(self):
        """The int8 model when configured and calibrated for this network; None otherwise, or (with a
        warning) when it cannot be built here."""
        if not (self.config.cpu_int8 and has_table(self.model)):
            return None
        try:
            return model_path(self.model, "int8", self.config)
        except ModelError as e:
            log.warning("%s: running the float32 model: %s", self.model, e)
            return None

    def _session(self, threads: int) -> ort.InferenceSession:
        options = ort.SessionOptions()
        options.intra_op_num_threads = threads
        options.inter_op_num_threads = 1
        options.execution_mode = ort.ExecutionMode.ORT_SEQUENTIAL
        options.graph_optimization_level = ort.GraphOptimizationLevel.ORT_ENABLE_ALL
        # Idle worker threads must sleep, not spin: the pipeline's other processes need those cores.
        options.add_session_config_entry("session.intra_op.allow_spinning", "0")
        return ort.InferenceSession(str(self.path), options, providers=["CPUExecutionProvider"])

    def infer(self, batch: np.ndarray) -> dict[str, np.ndarray]:
        if self.session is None:
            raise RuntimeError(f"{self.model}: the onnxruntime backend is closed")
        batch = self.check_batch(batch)
        parts = min(self._parts, len(batch))
        pieces = np.array_split(batch, max(parts, -(-len(batch) // RUN_BATCH)))
        if parts <= 1:
            results = [self.session.run(self.output_names, {INPUT_NAME: p}) for p in pieces]
        else:
            assert self._single is not None and self._pool is not None
            single = self._single
            results = list(self._pool.map(lambda p: single.run(self.output_names, {INPUT_NAME: p}), pieces))
        if len(results) == 1:
            return dict(zip(self.output_names, results[0]))
        return {name: np.concatenate([r[i] for r in results]) for i, name in enumerate(self.output_names)}

    def close(self) -> None:
        self.session = self._single = None
        if self._pool is not None:
            self._pool.shutdown(wait=False)
