"""ONNX Runtime CPU backend: the converted model with a dynamic batch, any batch size."""
from __future__ import annotations

import numpy as np
import onnxruntime as ort

from realtime.config import Pose2DConfig
from realtime.pose2d.backends import Backend
from realtime.pose2d.models import INPUT_NAME, model_path


class OnnxRuntimeBackend(Backend):
    """CPU execution provider, sequential execution, all graph optimisations, ``ort_threads`` intra-op threads."""
    name = "onnxruntime"

    def __init__(self, model: str, config: Pose2DConfig | None = None):
        super().__init__(model, config)
        options = ort.SessionOptions()
        options.intra_op_num_threads = self.config.ort_threads
        options.inter_op_num_threads = 1
        options.execution_mode = ort.ExecutionMode.ORT_SEQUENTIAL
        options.graph_optimization_level = ort.GraphOptimizationLevel.ORT_ENABLE_ALL
        # Idle worker threads must sleep, not spin: the pipeline's other processes need those cores.
        options.add_session_config_entry("session.intra_op.allow_spinning", "0")
        self.path = model_path(model, "onnx", self.config)
        self.session: ort.InferenceSession | None = ort.InferenceSession(
            str(self.path), options, providers=["CPUExecutionProvider"])

    def infer(self, batch: np.ndarray) -> dict[str, np.ndarray]:
        if self.session is None:
            raise RuntimeError(f"{self.model}: the onnxruntime backend is closed")
        outputs = self.session.run(self.output_names, {INPUT_NAME: self.check_batch(batch)})
        return dict(zip(self.output_names, outputs))

    def close(self) -> None:
        self.session = None
