"""TFLite flatbuffer -> a small operator-list IR that the ONNX and PyTorch emitters share.

One parser, two emitters: every layout, padding and activation rule of TFLite is decoded here once,
so ONNX and PyTorch cannot disagree. Constant subgraphs (DEQUANTIZE of fp16/int8 weights, DENSIFY
of sparse weights) are folded to float32 arrays at parse time, leaving only compute ops.

Shapes are TFLite's (NHWC for 4-D tensors, batch 1); the emitters make the batch dynamic.
Why hand-written: no maintained tflite->ONNX/PyTorch converter works without TensorFlow
(tf2onnx needs it), and the ops these models use are few.
"""
from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

#: Compute ops the emitters implement (the union over cpm, the BlazePose detector and landmark models).
SUPPORTED_OPS = frozenset({
    "CONV_2D", "DEPTHWISE_CONV_2D", "ADD", "RELU", "RELU6", "LOGISTIC", "MAX_POOL_2D",
    "RESIZE_BILINEAR", "CONCATENATION", "PAD", "RESHAPE", "DEPTH_TO_SPACE",
})
_FOLDED_OPS = frozenset({"DEQUANTIZE", "DENSIFY"})
_ACTIVATIONS = {0: "NONE", 1: "RELU", 2: "RELU_N1_TO_1", 3: "RELU6", 4: "TANH"}


class TfliteError(ValueError):
    """The .tflite file cannot be converted; the message names the file and the op or tensor."""


@dataclass(frozen=True)
class Op:
    """One compute op. ``inputs``/``outputs`` are tensor ids; ``attrs`` holds plain Python values only."""
    type: str
    inputs: tuple[int, ...]
    outputs: tuple[int, ...]
    attrs: dict[str, Any] = field(default_factory=dict)


@dataclass(frozen=True)
class Graph:
    """A converted model: ops in execution order, float32 constants, static NHWC shapes (batch 1)."""
    ops: tuple[Op, ...]
    shapes: dict[int, tuple[int, ...]]
    constants: dict[int, np.ndarray]
    inputs: tuple[int, ...]
    outputs: tuple[int, ...]
    names: dict[int, str]

    def op_types(self) -> list[str]:
        return sorted({op.type for op in self.ops})

    def to_dict(self) -> dict[str, Any]:
        """Plain containers and arrays (what ``torch.save`` stores and ``weights_only`` loads back)."""
        return {
            "ops": [(op.type, list(op.inputs), list(op.outputs), dict(op.attrs)) for op in self.ops],
            "shapes": {k: list(v) for k, v in self.shapes.items()},
            "constants": dict(self.constants),
            "inputs": list(self.inputs), "outputs": list(self.outputs), "names": dict(self.names),
        }

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> "Graph":
        return cls(
            ops=tuple(Op(t, tuple(i), tuple(o), dict(a)) for t, i, o, a in d["ops"]),
            shapes={int(k): tuple(v) for k, v in d["shapes"].items()},
            constants={int(k): np.asarray(v) for k, v in d["constants"].items()},
            inputs=tuple(d["inputs"]), outputs=tuple(d["outputs"]),
            names={int(k): v for k, v in d["names"].items()},
        )


def same_pads(size: int, kernel: int, stride: int, dilation: int = 1) -> tuple[int, int]:
    """TFLite/TensorFlow SAME padding: the odd extra pixel goes after (bottom/right), not before."""
    out = -(-size // stride)
    total = max((out - 1) * stride + (kernel - 1) * dilation + 1 - size, 0)
    return total // 2, total - total // 2


def _opcode_names() -> dict[int, str]:
    from tflite.BuiltinOperator import BuiltinOperator
    return {v: k for k, v in vars(BuiltinOperator).items() if not k.startswith("_")}


def _options(op: Any, cls: type) -> Any:
    table = op.BuiltinOptions()
    opts = cls()
    opts.Init(table.Bytes, table.Pos)
    return opts


def _sparse_vector(kind: int, table: Any) -> np.ndarray:
    import tflite
    cls = {1: tflite.Int32Vector, 2: tflite.Uint16Vector, 3: tflite.Uint8Vector}[kind]
    vec = cls()
    vec.Init(table.Bytes, table.Pos)
    return vec.ValuesAsNumpy().astype(np.int64)


def _densify(values: np.ndarray, shape: tuple[int, ...], sparsity: Any, where: str) -> np.ndarray:
    """Expand a TFLite sparse constant (DENSE / SPARSE_CSR levels in traversal order, no blocks)."""
    order = sparsity.TraversalOrderAsNumpy()
    if sparsity.BlockMapLength() or len(order) != len(shape):
        raise TfliteError(f"{where}: block-sparse weights are not supported")
    positions = np.zeros(1, dtype=np.int64)
    coords = np.zeros((1, 0), dtype=np.int64)
    for level in range(sparsity.DimMetadataLength()):
        meta = sparsity.DimMetadata(level)
        if meta.Format() == 0:
            n = meta.DenseSize()
            child = np.arange(n)
            positions = (positions[:, None] * n + child[None, :]).reshape(-1)
            coords = np.concatenate([np.repeat(coords, n, axis=0), np.tile(child, len(coords))[:, None]], axis=1)
        else:
            segments = _sparse_vector(meta.ArraySegmentsType(), meta.ArraySegments())
            indices = _sparse_vector(meta.ArrayIndicesType(), meta.ArrayIndices())
            counts = segments[positions + 1] - segments[positions]
            new_positions = np.concatenate([np.arange(segments[p], segments[p + 1]) for p in positions])
            coords = np.concatenate([np.repeat(coords, counts, axis=0), indices[new_positions][:, None]], axis=1)
            positions = new_positions
    dense = np.zeros(shape, dtype=values.dtype)
    index = tuple(coords[:, list(order).index(d)] for d in range(len(shape)))
    dense[index] = values[positions]
    return dense


def _tensor_array(model: Any, tensor: Any, where: str) -> np.ndarray | None:
    from tflite.TensorType import TensorType
    data = model.Buffers(tensor.Buffer()).DataAsNumpy()
    if isinstance(data, int) or data.size == 0:
        return None
    dtypes = {TensorType.FLOAT32: np.float32, TensorType.FLOAT16: np.float16, TensorType.INT32: np.int32,
              TensorType.INT8: np.int8, TensorType.UINT8: np.uint8, TensorType.INT64: np.int64}
    if tensor.Type() not in dtypes:
        raise TfliteError(f"{where}: tensor type {tensor.Type()} is not supported")
    values = np.frombuffer(data.tobytes(), dtype=dtypes[tensor.Type()]).copy()
    shape = tuple(int(s) for s in tensor.ShapeAsNumpy()) if tensor.ShapeLength() else ()
    if tensor.Sparsity() is not None:
        return _densify(values, shape, tensor.Sparsity(), where)
    return values.reshape(shape)


def _dequantize(tensor: Any, q: np.ndarray) -> np.ndarray:
    if q.dtype == np.float16:
        return q.astype(np.float32)
    params = tensor.Quantization()
    scale = params.ScaleAsNumpy().astype(np.float32)
    zero = params.ZeroPointAsNumpy().astype(np.float32)
    if scale.size > 1:
        shape = [1] * q.ndim
        shape[params.QuantizedDimension()] = -1
        scale, zero = scale.reshape(shape), zero.reshape(shape)
    return ((q.astype(np.float32) - zero) * scale).astype(np.float32)


def _attrs(kind: str, op: Any, shapes: dict[int, tuple[int, ...]], ins: list[int], outs: list[int],
           constants: dict[int, np.ndarray]) -> dict[str, Any]:
    import tflite
    if kind in ("CONV_2D", "DEPTHWISE_CONV_2D"):
        cls = tflite.Conv2DOptions if kind == "CONV_2D" else tflite.DepthwiseConv2DOptions
        o = _options(op, cls)
        _, kh, kw, _ = shapes[ins[1]]
        stride, dil = (o.StrideH(), o.StrideW()), (o.DilationHFactor(), o.DilationWFactor())
        return {"stride": stride, "dilation": dil, "activation": _ACTIVATIONS[o.FusedActivationFunction()],
                "pads": _pads(o.Padding(), shapes[ins[0]], (kh, kw), stride, dil)}
    if kind == "MAX_POOL_2D":
        o = _options(op, tflite.Pool2DOptions)
        kernel, stride = (o.FilterHeight(), o.FilterWidth()), (o.StrideH(), o.StrideW())
        return {"kernel": kernel, "stride": stride, "activation": _ACTIVATIONS[o.FusedActivationFunction()],
                "pads": _pads(o.Padding(), shapes[ins[0]], kernel, stride, (1, 1))}
    if kind == "ADD":
        return {"activation": _ACTIVATIONS[_options(op, tflite.AddOptions).FusedActivationFunction()]}
    if kind == "CONCATENATION":
        o = _options(op, tflite.ConcatenationOptions)
        return {"axis": o.Axis() % len(shapes[outs[0]]), "activation": _ACTIVATIONS[o.FusedActivationFunction()]}
    if kind == "RESIZE_BILINEAR":
        o = _options(op, tflite.ResizeBilinearOptions)
        return {"align_corners": bool(o.AlignCorners()), "half_pixel_centers": bool(o.HalfPixelCenters())}
    if kind == "DEPTH_TO_SPACE":
        return {"block": _options(op, tflite.DepthToSpaceOptions).BlockSize()}
    if kind == "PAD":
        return {"pads": tuple(tuple(int(v) for v in row) for row in constants[ins[1]])}
    return {}


def _pads(padding: int, in_shape: tuple[int, ...], kernel: tuple[int, int], stride: tuple[int, int],
          dilation: tuple[int, int]) -> tuple[int, int, int, int]:
    """(top, left, bottom, right) for TFLite padding 0 = SAME, 1 = VALID."""
    if padding == 1:
        return (0, 0, 0, 0)
    top, bottom = same_pads(in_shape[1], kernel[0], stride[0], dilation[0])
    left, right = same_pads(in_shape[2], kernel[1], stride[1], dilation[1])
    return (top, left, bottom, right)


def parse(path: str | Path) -> Graph:
    """Read a .tflite file into a :class:`Graph` (float32 constants, only :data:`SUPPORTED_OPS`)."""
    import tflite
    from tflite.TensorType import TensorType
    path = Path(path)
    try:
        model = tflite.Model.GetRootAsModel(path.read_bytes(), 0)
        graph = model.Subgraphs(0)
    except FileNotFoundError:
        raise TfliteError(f"{path}: no such model file") from None
    except Exception as e:  # a truncated or foreign file fails somewhere inside the flatbuffer reader
        raise TfliteError(f"{path}: not a readable .tflite flatbuffer ({e})") from None
    if model.SubgraphsLength() != 1:
        raise TfliteError(f"{path}: {model.SubgraphsLength()} subgraphs; only single-graph models convert")
    opcodes = _opcode_names()
    shapes: dict[int, tuple[int, ...]] = {}
    names: dict[int, str] = {}
    constants: dict[int, np.ndarray] = {}
    for i in range(graph.TensorsLength()):
        t = graph.Tensors(i)
        shapes[i] = tuple(int(s) for s in t.ShapeAsNumpy()) if t.ShapeLength() else ()
        names[i] = t.Name().decode()
        array = _tensor_array(model, t, f"{path}: tensor {names[i]!r}")
        if array is not None:
            constants[i] = array
    inputs = tuple(int(graph.Inputs(i)) for i in range(graph.InputsLength()))
    for i in inputs:
        if graph.Tensors(i).Type() != TensorType.FLOAT32:
            raise TfliteError(f"{path}: input {names[i]!r} is not float32 (quantised models are not supported)")
    ops: list[Op] = []
    for k in range(graph.OperatorsLength()):
        op = graph.Operators(k)
        code = model.OperatorCodes(op.OpcodeIndex())
        kind = opcodes.get(max(code.BuiltinCode(), code.DeprecatedBuiltinCode()), "CUSTOM")
        ins = [int(j) for j in op.InputsAsNumpy()] if op.InputsLength() else []
        outs = [int(j) for j in op.OutputsAsNumpy()]
        if kind in _FOLDED_OPS and all(j in constants for j in ins):
            src = ins[0]
            value = constants[src]
            constants[outs[0]] = _dequantize(graph.Tensors(src), value) if kind == "DEQUANTIZE" else value
            continue
        if kind not in SUPPORTED_OPS:
            raise TfliteError(f"{path}: op {kind} (operator {k}) is not supported; supported: "
                              f"{', '.join(sorted(SUPPORTED_OPS))}")
        ins = [j for j in ins if j >= 0]
        ops.append(Op(kind, tuple(ins), tuple(outs), _attrs(kind, op, shapes, ins, outs, constants)))
    for i, value in list(constants.items()):
        if value.dtype != np.float32 and value.dtype.kind == "f":
            constants[i] = value.astype(np.float32)
    outputs = tuple(int(graph.Outputs(i)) for i in range(graph.OutputsLength()))
    used = {j for op in ops for j in op.inputs}
    constants = {i: v for i, v in constants.items() if i in used}
    return Graph(tuple(ops), shapes, constants, inputs, outputs, names)
