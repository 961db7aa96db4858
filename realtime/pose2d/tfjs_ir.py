"""TensorFlow.js graph models (a GraphDef as JSON + weight shards) -> the IR of ``tflite_ir``.

The human-models networks (MoveNet, MultiPose, EfficientPose, NanoDet, CenterNet) ship as TF.js
graph models. They are read here into the same ``Graph`` of compute ops that the tflite reader
produces, so the ONNX and PyTorch emitters (and through them TensorRT and CUDA graphs) serve them
unchanged. No TensorFlow is needed: the JSON is the GraphDef, the weights are flat little-endian
arrays described by the manifest (some float16- or uint8-quantised, dequantised here).

The graph is cut at given tensors (``outputs``): the dense network heads (heatmaps, offsets, box
regressions). What the upstream graphs do after them (arg-max, top-k, gathers: per-image decoding
written for batch 1) is done in NumPy by the model's reader, so the converted network keeps a
dynamic batch and only dense ops that every runtime compiles well.

Everything the cut subgraph computes from constants and static shapes (``Shape`` -> ``StridedSlice``
-> ``Pack`` chains, NanoDet's ``SparseToDense``) is folded at read time for the fixed input size.
Reshape-like ops (``Reshape``, ``ExpandDims``, ``Squeeze``, ``Unpack`` of one) are views that are
only materialised when a compute op needs a different shape, so MoveNet's batch-1 unstack/stack
around its input disappears.
Why hand-written: no maintained TF.js -> ONNX/PyTorch converter works without TensorFlow.
"""
from __future__ import annotations

import base64
import json
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Callable, Sequence

import numpy as np

from realtime.pose2d.tflite_ir import Graph, Op, same_pads


class TfjsError(ValueError):
    """The TF.js model cannot be read or converted; the message names the file and the node or tensor."""


_DTYPES = {"float32": np.float32, "int32": np.int32, "bool": np.bool_, "uint8": np.uint8, "int64": np.int64}
_QUANTISED = {"float16": np.float16, "uint8": np.uint8, "uint16": np.uint16}
_ACTIVATIONS = {"Relu": "RELU", "Relu6": "RELU6", "Sigmoid": "LOGISTIC", "Tanh": "TANH", "LeakyRelu": "LEAKY_RELU"}
_BINARY = {"Add": "ADD", "AddV2": "ADD", "BiasAdd": "ADD", "Sub": "SUB", "Mul": "MUL", "RealDiv": "DIV",
           "Maximum": "MAXIMUM", "Minimum": "MINIMUM"}
_VIEWS = frozenset({"Reshape", "ExpandDims", "Squeeze", "Unpack"})
_ALIASES = frozenset({"Identity", "Cast", "StopGradient", "Snapshot"})


@dataclass(frozen=True)
class _Act:
    """An activation: IR tensor ``tid`` seen with TF shape ``shape`` (a view when they differ)."""
    tid: int
    shape: tuple[int, ...]


def _decode_str(value: str) -> str:
    return base64.b64decode(value).decode()


def read_weights(json_path: Path, manifest: list[dict]) -> dict[str, np.ndarray]:
    """Every weight of the manifest as a float32/int32 array (quantised ones dequantised)."""
    weights: dict[str, np.ndarray] = {}
    for group in manifest:
        data = b""
        for rel in group["paths"]:
            shard = json_path.parent / rel
            try:
                data += shard.read_bytes()
            except OSError as e:
                raise TfjsError(f"{shard}: cannot read the weights of {json_path.name} ({e.strerror or e})") from None
        offset = 0
        for w in group["weights"]:
            shape = tuple(int(s) for s in w["shape"])
            count = int(np.prod(shape, dtype=np.int64))
            q = w.get("quantization")
            dtype = np.dtype(_QUANTISED[q["dtype"]] if q else _DTYPES.get(w["dtype"], np.float32))
            if not q and w["dtype"] not in _DTYPES:
                raise TfjsError(f"{json_path}: weight {w['name']!r} has unsupported dtype {w['dtype']!r}")
            size = count * dtype.itemsize
            if offset + size > len(data):
                raise TfjsError(f"{json_path}: the weight files {group['paths']} hold {len(data)} bytes, "
                                f"{offset + size} expected by weight {w['name']!r} (truncated or wrong file)")
            values = np.frombuffer(data, dtype.newbyteorder("<"), count, offset).reshape(shape)
            offset += size
            if q and q["dtype"] == "float16":
                values = values.astype(np.float32)
            elif q:
                values = (values.astype(np.float32) * np.float32(q["scale"]) + np.float32(q["min"]))
            weights[w["name"]] = np.array(values, dtype=_DTYPES.get(w["dtype"], np.float32))
        if offset != len(data):
            raise TfjsError(f"{json_path}: the weight files {group['paths']} hold {len(data)} bytes, "
                            f"the manifest describes {offset} (wrong or mismatched file)")
    return weights


def load(json_path: str | Path) -> tuple[dict, dict[str, np.ndarray]]:
    """The model's JSON (checked to be a TF.js graph model) and its weights."""
    json_path = Path(json_path)
    try:
        model = json.loads(json_path.read_text())
    except FileNotFoundError:
        raise TfjsError(f"{json_path}: no such model file") from None
    except (OSError, UnicodeDecodeError, json.JSONDecodeError) as e:
        raise TfjsError(f"{json_path}: not a readable TF.js model.json ({e})") from None
    if not isinstance(model, dict) or "modelTopology" not in model or "weightsManifest" not in model:
        raise TfjsError(f"{json_path}: not a TF.js graph model (no modelTopology / weightsManifest)")
    return model, read_weights(json_path, model["weightsManifest"])


def _tensor_name(ref: str) -> tuple[str, int]:
    name, _, index = ref.partition(":")
    return name, int(index) if index else 0


class _Reader:
    def __init__(self, path: Path, model: dict, weights: dict[str, np.ndarray]):
        self.path = path
        self.nodes = {n["name"]: n for n in model["modelTopology"]["node"]}
        self.weights = weights
        self.values: dict[tuple[str, int], Any] = {}   # (node, output) -> np.ndarray | _Act
        self.ops: list[Op] = []
        self.shapes: dict[int, tuple[int, ...]] = {}
        self.constants: dict[int, np.ndarray] = {}
        self.names: dict[int, str] = {}
        self.inputs: list[int] = []

    # -- IR building -------------------------------------------------------------------------------
    def tensor(self, shape: tuple[int, ...], name: str) -> int:
        tid = len(self.shapes)
        self.shapes[tid] = tuple(int(s) for s in shape)
        self.names[tid] = name
        return tid

    def const(self, value: np.ndarray, name: str) -> int:
        tid = self.tensor(np.shape(value), name)
        self.constants[tid] = np.ascontiguousarray(value, dtype=np.float32 if np.asarray(value).dtype.kind == "f"
                                                   else np.asarray(value).dtype)
        return tid

    def emit(self, kind: str, inputs: Sequence[int], shape: tuple[int, ...], name: str, **attrs: Any) -> _Act:
        out = self.tensor(shape, name)
        self.ops.append(Op(kind, tuple(inputs), (out,), attrs))
        return _Act(out, tuple(shape))

    def materialise(self, act: _Act, name: str) -> int:
        """The IR tensor holding ``act`` in its own shape (a RESHAPE op when it is a view)."""
        if self.shapes[act.tid] == act.shape:
            return act.tid
        src = self.shapes[act.tid]
        if not src or not act.shape or src[0] != 1 or act.shape[0] != 1:
            raise TfjsError(f"{self.path}: {name}: a reshape from {src} to {act.shape} would mix the batch dimension")
        return self.emit("RESHAPE", [act.tid], act.shape, name + "/reshape").tid

    def operand(self, value: Any, name: str) -> int:
        return self.materialise(value, name) if isinstance(value, _Act) else self.const(value, name + "/const")

    # -- evaluation --------------------------------------------------------------------------------
    def fail(self, node: dict, why: str) -> TfjsError:
        return TfjsError(f"{self.path}: node {node['name']!r} ({node['op']}): {why}")

    def run(self, outputs: Sequence[str], input_shape: tuple[int, ...] | None, nchw: bool = False,
            mean: Sequence[float] | None = None, scale: Sequence[float] | None = None) -> None:
        self.input_shape, self.nchw, self.mean, self.scale = input_shape, nchw, mean, scale
        order: list[str] = []
        seen: set[str] = set()
        for out in outputs:
            name, _ = _tensor_name(out)
            if name not in self.nodes:
                raise TfjsError(f"{self.path}: no node {name!r} (asked for output {out!r})")
            stack = [(name, False)]
            while stack:
                n, done = stack.pop()
                if done:
                    order.append(n)
                    continue
                if n in seen:
                    continue
                seen.add(n)
                stack.append((n, True))
                for ref in self.nodes[n].get("input", []):
                    if ref.startswith("^"):
                        continue
                    dep, _ = _tensor_name(ref)
                    if dep not in self.nodes:
                        raise TfjsError(f"{self.path}: node {n!r} reads {dep!r}, which is not in the graph")
                    if dep not in seen:
                        stack.append((dep, False))
        for n in order:
            node = self.nodes[n]
            args = [self.values[_tensor_name(r)] for r in node.get("input", []) if not r.startswith("^")]
            results = self.node(node, args)
            for i, v in enumerate(results):
                self.values[(n, i)] = v

    def node(self, node: dict, args: list[Any]) -> list[Any]:
        op, attr = node["op"], node.get("attr", {})
        if op == "Const":
            if node["name"] not in self.weights:
                raise self.fail(node, "constant missing from the weights manifest")
            return [self.weights[node["name"]]]
        if op == "Placeholder":
            dims = tuple(int(d.get("size", -1)) for d in attr.get("shape", {}).get("shape", {}).get("dim", []))
            shape = self.input_shape or dims
            if len(shape) != len(dims) or any(d not in (-1, s) for d, s in zip(dims, shape)) or min(shape) < 1:
                raise self.fail(node, f"input shape {shape} does not fit the placeholder's {dims}")
            return [self.input(tuple(shape), node["name"])]
        if not any(isinstance(a, _Act) for a in args) and op not in ("Shape",):
            return self.fold(node, args)
        if op == "Shape":
            shape = args[0].shape if isinstance(args[0], _Act) else np.shape(args[0])
            return [np.array(shape, dtype=np.int32)]
        handler = getattr(self, f"op_{op}", None)
        if op in _ALIASES:
            return [args[0]]
        if op in _BINARY:
            return [self.binary(node, _BINARY[op], args)]
        if op in _ACTIVATIONS:
            kind = _ACTIVATIONS[op]
            x = self.operand(args[0], node["name"])
            extra = {"alpha": float(attr["alpha"]["f"])} if kind == "LEAKY_RELU" else {}
            return [self.emit(kind, [x], args[0].shape, node["name"], **extra)]
        if handler is None:
            raise self.fail(node, "op not supported on activations")
        return handler(node, attr, args)

    def input(self, shape: tuple[int, ...], name: str) -> _Act:
        """The IR input: always an NHWC image. ``mean``/``scale`` (per channel) are applied inside the
        graph, and an NCHW placeholder (NanoDet, converted from PyTorch) gets a transpose, so every
        model is fed alike: NHWC pixels 0..255. The normalisation is one 1x1 depthwise convolution
        (weight ``scale``, bias ``-mean * scale``), not a Sub and a Mul: ONNX Runtime's layout
        optimiser moves a transpose through element-wise ops, leaving them broadcasting over a last
        axis of 3 (NanoDet: 63.3 -> 53.2 ms a region, ``tools/bench_backends.py --profile``; docs/pose2d.md)."""
        nchw = self.nchw
        nhwc = (shape[0], shape[2], shape[3], shape[1]) if nchw else shape
        normalised = self.mean is not None or self.scale is not None
        tid = self.tensor(nhwc, name + "/nhwc" if nchw or normalised else name)
        self.inputs.append(tid)
        x = _Act(tid, nhwc)
        if normalised:
            c = nhwc[3]
            mean = np.broadcast_to(np.asarray(0.0 if self.mean is None else self.mean, np.float32), (c,))
            scale = np.broadcast_to(np.asarray(1.0 if self.scale is None else self.scale, np.float32), (c,))
            weight = self.const(scale.reshape(1, 1, 1, c).copy(), name + "/scale")
            bias = self.const((-mean * scale).astype(np.float32), name + "/offset")
            x = self.emit("DEPTHWISE_CONV_2D", [tid, weight, bias], nhwc, name + "/normalised", stride=(1, 1),
                          dilation=(1, 1), activation="NONE", pads=(0, 0, 0, 0))
        if nchw:
            x = self.emit("TRANSPOSE", [x.tid], shape, name, perm=(0, 3, 1, 2))
        return x

    # -- constant folding ---------------------------------------------------------------------------
    def fold(self, node: dict, args: list[np.ndarray]) -> list[np.ndarray]:
        fn = _FOLD.get(node["op"])
        if fn is None:
            raise self.fail(node, "op not supported on constants")
        try:
            out = fn(node.get("attr", {}), *args)
        except (ValueError, IndexError, TypeError) as e:
            raise self.fail(node, f"cannot fold: {e}") from None
        return list(out) if isinstance(out, (list, tuple)) else [out]

    # -- ops on activations ----------------------------------------------------------------------------
    def binary(self, node: dict, kind: str, args: list[Any]) -> _Act:
        a, b = args
        shape = tuple(np.broadcast_shapes(_shape_of(a), _shape_of(b)))
        if len(shape) == 4 and any(isinstance(v, _Act) and len(v.shape) < 4 and v.shape for v in (a, b)):
            raise self.fail(node, "broadcasting a lower-rank activation against a 4-D one")
        ins = [self.operand(v, f"{node['name']}/{i}") for i, v in enumerate((a, b))]
        return self.emit(kind, ins, shape, node["name"])

    def conv(self, node: dict, attr: dict, args: list[Any], depthwise: bool) -> list[_Act]:
        x, w = args[0], args[1]
        if not isinstance(x, _Act) or isinstance(w, _Act):
            raise self.fail(node, "expects an activation and constant weights")
        if _decode_str(attr.get("data_format", {}).get("s", "TkhXQw==")) != "NHWC":
            raise self.fail(node, "only NHWC convolutions are supported")
        fused = [_decode_str(s) for s in attr.get("fused_ops", {}).get("list", {}).get("s", [])]
        stride = tuple(int(v) for v in attr["strides"]["list"]["i"][1:3])
        dilation = tuple(int(v) for v in attr.get("dilations", {}).get("list", {}).get("i", ["1"] * 4)[1:3])
        kh, kw = w.shape[:2]
        _, h, wd, c = x.shape
        pads = self.pads(node, attr, (h, wd), (kh, kw), stride, dilation)
        oh = (h + pads[0] + pads[2] - (kh - 1) * dilation[0] - 1) // stride[0] + 1
        ow = (wd + pads[1] + pads[3] - (kw - 1) * dilation[1] - 1) // stride[1] + 1
        if depthwise:
            weight = w.reshape(1, kh, kw, -1)          # TFLite depthwise layout (1, H, W, C * multiplier)
            groups, out_c = c, w.shape[2] * w.shape[3]
        else:
            weight = w.transpose(3, 0, 1, 2)           # HWIO -> TFLite's OHWI
            if c % w.shape[2]:
                raise self.fail(node, f"{c} input channels for a filter of {w.shape[2]}")
            groups, out_c = c // w.shape[2], w.shape[3]
        ins = [self.materialise(x, node["name"]), self.const(weight, node["name"] + "/weights")]
        activation = "NONE"
        if fused:
            if fused[0] != "BiasAdd" or len(args) < 3:
                raise self.fail(node, f"fused ops {fused} not supported")
            ins.append(self.const(np.asarray(args[2], np.float32).reshape(-1), node["name"] + "/bias"))
            extra = fused[1:]
            if extra:
                if len(extra) > 1 or extra[0] not in ("Relu", "Relu6"):
                    raise self.fail(node, f"fused ops {fused} not supported")
                activation = _ACTIVATIONS[extra[0]]
        kind = "DEPTHWISE_CONV_2D" if depthwise else "CONV_2D"
        extra_attrs = {"groups": groups} if groups > 1 and not depthwise else {}
        return [self.emit(kind, ins, (1, oh, ow, out_c), node["name"], stride=stride, dilation=dilation,
                          activation=activation, pads=pads, **extra_attrs)]

    def pads(self, node: dict, attr: dict, size: tuple[int, int], kernel: tuple[int, int],
             stride: tuple[int, int], dilation: tuple[int, int]) -> tuple[int, int, int, int]:
        padding = _decode_str(attr["padding"]["s"])
        if padding == "VALID":
            return (0, 0, 0, 0)
        if padding == "SAME":
            top, bottom = same_pads(size[0], kernel[0], stride[0], dilation[0])
            left, right = same_pads(size[1], kernel[1], stride[1], dilation[1])
            return (top, left, bottom, right)
        if padding == "EXPLICIT":
            p = [int(v) for v in attr["explicit_paddings"]["list"]["i"]]
            return (p[2], p[4], p[3], p[5])
        raise self.fail(node, f"padding {padding!r} not supported")

    def op__FusedConv2D(self, node, attr, args):
        return self.conv(node, attr, args, depthwise=False)

    def op_Conv2D(self, node, attr, args):
        return self.conv(node, attr, args, depthwise=False)

    def op_FusedDepthwiseConv2dNative(self, node, attr, args):
        return self.conv(node, attr, args, depthwise=True)

    def op_DepthwiseConv2dNative(self, node, attr, args):
        return self.conv(node, attr, args, depthwise=True)

    def op_Conv2DBackpropInput(self, node, attr, args):
        sizes, w, x = args
        if not isinstance(x, _Act) or isinstance(w, _Act) or isinstance(sizes, _Act):
            raise self.fail(node, "expects constant output sizes and weights")
        out_shape = tuple(int(v) for v in sizes)
        stride = tuple(int(v) for v in attr["strides"]["list"]["i"][1:3])
        kh, kw = w.shape[:2]
        _, h, wd, _ = x.shape
        crop = []
        for n_in, n_out, k, s in ((h, out_shape[1], kh, stride[0]), (wd, out_shape[2], kw, stride[1])):
            full = (n_in - 1) * s + k
            total = full - n_out
            if total < 0:
                raise self.fail(node, f"output size {n_out} larger than the full transposed convolution {full}")
            padding = _decode_str(attr["padding"]["s"])
            crop.append((total // 2, total - total // 2) if padding == "SAME" else (0, total))
        weight = w.transpose(2, 0, 1, 3)               # (H, W, out, in) -> TFLite TRANSPOSE_CONV's (out, H, W, in)
        ins = [self.materialise(x, node["name"]), self.const(weight, node["name"] + "/weights")]
        return [self.emit("TRANSPOSE_CONV", ins, (1, out_shape[1], out_shape[2], w.shape[2]), node["name"],
                          stride=stride, pads=(crop[0][0], crop[1][0], crop[0][1], crop[1][1]))]

    def op_MaxPool(self, node, attr, args):
        x = args[0]
        kernel = tuple(int(v) for v in attr["ksize"]["list"]["i"][1:3])
        stride = tuple(int(v) for v in attr["strides"]["list"]["i"][1:3])
        _, h, w, c = x.shape
        pads = self.pads(node, attr, (h, w), kernel, stride, (1, 1))
        oh = (h + pads[0] + pads[2] - kernel[0]) // stride[0] + 1
        ow = (w + pads[1] + pads[3] - kernel[1]) // stride[1] + 1
        return [self.emit("MAX_POOL_2D", [self.materialise(x, node["name"])], (1, oh, ow, c), node["name"],
                          kernel=kernel, stride=stride, pads=pads, activation="NONE")]

    def op_ResizeBilinear(self, node, attr, args):
        x, size = args
        if isinstance(size, _Act) or len(x.shape) != 4:
            raise self.fail(node, "expects a 4-D activation and a constant size")
        shape = (1, int(size[0]), int(size[1]), x.shape[3])
        return [self.emit("RESIZE_BILINEAR", [self.materialise(x, node["name"])], shape, node["name"],
                          align_corners=bool(attr.get("align_corners", {}).get("b", False)),
                          half_pixel_centers=bool(attr.get("half_pixel_centers", {}).get("b", False)))]

    def op_ConcatV2(self, node, attr, args):
        *parts, axis = args
        if isinstance(axis, _Act):
            raise self.fail(node, "expects a constant axis")
        rank = len(_shape_of(parts[0]))
        axis = int(axis) % rank
        shape = list(_shape_of(parts[0]))
        shape[axis] = sum(_shape_of(p)[axis] for p in parts)
        ins = [self.operand(p, f"{node['name']}/{i}") for i, p in enumerate(parts)]
        return [self.emit("CONCATENATION", ins, tuple(shape), node["name"], axis=axis, activation="NONE")]

    def op_Pad(self, node, attr, args, value: float = 0.0):
        x, pads = args[0], args[1]
        if isinstance(pads, _Act):
            raise self.fail(node, "expects constant paddings")
        rows = tuple((int(a), int(b)) for a, b in np.asarray(pads).reshape(-1, 2))
        shape = tuple(s + a + b for s, (a, b) in zip(x.shape, rows))
        if rows[0] != (0, 0):
            raise self.fail(node, "padding the batch dimension")
        return [self.emit("PAD", [self.materialise(x, node["name"])], shape, node["name"], pads=rows, value=value)]

    def op_PadV2(self, node, attr, args):
        value = args[2]
        if isinstance(value, _Act):
            raise self.fail(node, "expects a constant padding value")
        return self.op_Pad(node, attr, args[:2], float(np.asarray(value).reshape(-1)[0]))

    def op_Mean(self, node, attr, args):
        x, axes = args
        rank = len(x.shape)
        axes = tuple(sorted({int(a) % rank for a in np.asarray(axes).reshape(-1)}))
        keep = bool(attr.get("keep_dims", {}).get("b", False))
        if 0 in axes:
            raise self.fail(node, "a mean over the batch dimension")
        shape = tuple(1 if i in axes else s for i, s in enumerate(x.shape) if keep or i not in axes)
        return [self.emit("MEAN", [self.materialise(x, node["name"])], shape, node["name"], axes=axes, keepdims=keep)]

    def op_Transpose(self, node, attr, args):
        x, perm = args
        perm = tuple(int(p) for p in np.asarray(perm).reshape(-1))
        if perm[0] != 0:
            raise self.fail(node, "a transpose that moves the batch dimension")
        shape = tuple(x.shape[p] for p in perm)
        return [self.emit("TRANSPOSE", [self.materialise(x, node["name"])], shape, node["name"], perm=perm)]

    def op_SplitV(self, node, attr, args):
        x, sizes, axis = args
        return self.split(node, x, [int(s) for s in np.asarray(sizes).reshape(-1)], int(axis))

    def op_Split(self, node, attr, args):
        axis, x = args
        n = int(attr["num_split"]["i"])
        axis = int(axis) % len(x.shape)
        return self.split(node, x, [x.shape[axis] // n] * n, axis)

    def split(self, node: dict, x: _Act, sizes: list[int], axis: int) -> list[_Act]:
        axis %= len(x.shape)
        if -1 in sizes:
            sizes[sizes.index(-1)] = x.shape[axis] - (sum(sizes) + 1)
        if axis == 0 or sum(sizes) != x.shape[axis]:
            raise self.fail(node, f"split sizes {sizes} along axis {axis} of {x.shape}")
        src = self.materialise(x, node["name"])
        outs, start = [], 0
        for i, size in enumerate(sizes):
            shape = tuple(size if d == axis else s for d, s in enumerate(x.shape))
            outs.append(self.emit("SLICE", [src], shape, f"{node['name']}:{i}", axis=axis, begin=start, end=start + size))
            start += size
        return outs

    # views: no op unless a consumer needs the shape
    def op_Reshape(self, node, attr, args):
        x, shape = args
        if isinstance(shape, _Act):
            raise self.fail(node, "expects a constant shape")
        target = [int(s) for s in np.asarray(shape).reshape(-1)]
        if -1 in target:
            known = int(np.prod([s for s in target if s != -1]))
            target[target.index(-1)] = int(np.prod(x.shape)) // max(known, 1)
        if int(np.prod(target)) != int(np.prod(x.shape)):
            raise self.fail(node, f"cannot reshape {x.shape} to {tuple(target)}")
        return [_Act(x.tid, tuple(target))]

    def op_ExpandDims(self, node, attr, args):
        x, axis = args
        shape = list(x.shape)
        axis = int(np.asarray(axis).reshape(-1)[0])
        shape.insert(axis % (len(shape) + 1), 1)
        return [_Act(x.tid, tuple(shape))]

    def op_Squeeze(self, node, attr, args):
        x = args[0]
        dims = [int(d) % len(x.shape) for d in attr.get("squeeze_dims", {}).get("list", {}).get("i", [])]
        shape = tuple(s for i, s in enumerate(x.shape) if (i not in dims if dims else s != 1))
        return [_Act(x.tid, shape)]

    def op_Unpack(self, node, attr, args):
        x = args[0]
        axis = int(attr.get("axis", {}).get("i", 0)) % len(x.shape)
        if x.shape[axis] != 1:
            raise self.fail(node, "unstacking more than one slice of an activation")
        return [_Act(x.tid, tuple(s for i, s in enumerate(x.shape) if i != axis))]

    def graph(self, outputs: Sequence[str]) -> Graph:
        out_ids = []
        for ref in outputs:
            key = _tensor_name(ref)
            value = self.values.get(key)
            if not isinstance(value, _Act):
                raise TfjsError(f"{self.path}: output {ref!r} is a constant, not a network output")
            tid = self.materialise(value, ref)
            if tid in out_ids or tid in self.inputs:
                tid = self.emit("RESHAPE", [tid], value.shape, ref + "/copy").tid
            self.names[tid] = ref
            out_ids.append(tid)
        used = {t for op in self.ops for t in op.inputs}
        constants = {t: v for t, v in self.constants.items() if t in used}
        return Graph(tuple(self.ops), dict(self.shapes), constants, tuple(self.inputs), tuple(out_ids),
                     dict(self.names))


def _shape_of(value: Any) -> tuple[int, ...]:
    return value.shape if isinstance(value, _Act) else np.shape(value)


def _strided_slice(attr: dict, x: np.ndarray, begin: np.ndarray, end: np.ndarray, strides: np.ndarray) -> np.ndarray:
    """TensorFlow's StridedSlice with its masks (ellipsis, new-axis, shrink-axis), on constants."""
    mask = {k: int(attr.get(f"{k}_mask", {}).get("i", 0)) for k in ("begin", "end", "ellipsis", "new_axis", "shrink_axis")}
    index: list[Any] = []
    dims = len(begin)
    for i in range(dims):
        bit = 1 << i
        if mask["ellipsis"] & bit:
            index.append(Ellipsis)
        elif mask["new_axis"] & bit:
            index.append(None)
        elif mask["shrink_axis"] & bit:
            index.append(int(begin[i]))
        else:
            b = None if mask["begin"] & bit else int(begin[i])
            e = None if mask["end"] & bit else int(end[i])
            index.append(slice(b, e, int(strides[i])))
    return np.asarray(np.asarray(x)[tuple(index)])


def _sparse_to_dense(attr: dict, indices, shape, values, default) -> np.ndarray:
    dims = np.asarray(shape).reshape(-1)
    out = np.full(dims, default, dtype=np.asarray(values).dtype)
    idx = np.asarray(indices).reshape(-1, len(dims)) if np.ndim(indices) > 1 or len(dims) > 1 else \
        np.asarray(indices).reshape(-1, 1)
    if len(idx):
        out[tuple(idx.T)] = values
    return out


def _dtype(attr: dict, key: str) -> Any:
    name = attr.get(key, {}).get("type", "DT_FLOAT")
    return {"DT_FLOAT": np.float32, "DT_INT32": np.int32, "DT_BOOL": np.bool_, "DT_INT64": np.int64}.get(name, np.float32)


_FOLD: dict[str, Callable[..., Any]] = {
    "Identity": lambda a, x: x,
    "Cast": lambda a, x: np.asarray(x).astype(_dtype(a, "DstT")),
    "Size": lambda a, x: np.int32(np.size(x)),
    "StridedSlice": _strided_slice,
    "Pack": lambda a, *xs: np.stack(xs, axis=int(a.get("axis", {}).get("i", 0))),
    "Unpack": lambda a, x: list(np.moveaxis(np.asarray(x), int(a.get("axis", {}).get("i", 0)), 0)),
    "ConcatV2": lambda a, *xs: np.concatenate([np.atleast_1d(x) for x in xs[:-1]], axis=int(xs[-1])),
    "Reshape": lambda a, x, s: np.reshape(x, np.asarray(s).reshape(-1)),
    "ExpandDims": lambda a, x, d: np.expand_dims(x, int(np.asarray(d).reshape(-1)[0])),
    "Squeeze": lambda a, x: np.squeeze(x, tuple(int(d) for d in a.get("squeeze_dims", {}).get("list", {}).get("i", []))
                                       or None),
    "Transpose": lambda a, x, p: np.transpose(x, np.asarray(p).reshape(-1)),
    "Add": lambda a, x, y: np.add(x, y), "AddV2": lambda a, x, y: np.add(x, y),
    "Sub": lambda a, x, y: np.subtract(x, y), "Mul": lambda a, x, y: np.multiply(x, y),
    "RealDiv": lambda a, x, y: np.divide(x, y), "FloorDiv": lambda a, x, y: np.floor_divide(x, y),
    "FloorMod": lambda a, x, y: np.mod(x, y), "Maximum": lambda a, x, y: np.maximum(x, y),
    "Minimum": lambda a, x, y: np.minimum(x, y), "Neg": lambda a, x: np.negative(x),
    "Range": lambda a, s, e, d: np.arange(s, e, d),
    "Fill": lambda a, s, v: np.full(np.asarray(s).reshape(-1), v),
    "Prod": lambda a, x, ax: np.prod(x, axis=tuple(np.asarray(ax).reshape(-1)),
                                     keepdims=bool(a.get("keep_dims", {}).get("b", False))),
    "GatherV2": lambda a, x, i, ax: np.take(x, i, axis=int(ax)),
    "Where": lambda a, x: np.argwhere(x).astype(np.int64),
    "SparseToDense": _sparse_to_dense,
    "Equal": lambda a, x, y: np.equal(x, y), "NotEqual": lambda a, x, y: np.not_equal(x, y),
    "Greater": lambda a, x, y: np.greater(x, y), "Less": lambda a, x, y: np.less(x, y),
    "ZerosLike": lambda a, x: np.zeros_like(x), "OnesLike": lambda a, x: np.ones_like(x),
}


def parse(path: str | Path, outputs: Sequence[str], input_shape: tuple[int, ...] | None = None, *,
          nchw: bool = False, mean: Sequence[float] | None = None, scale: Sequence[float] | None = None) -> Graph:
    """Read a TF.js graph model into a :class:`Graph` computing ``outputs`` (TF tensor names, e.g.
    ``"StatefulPartitionedCall/Sigmoid"``) for an input of ``input_shape`` (the placeholder's shape,
    default: as declared). The graph's input is an NHWC image: with ``nchw`` the placeholder is NCHW
    and a transpose is put in front; ``mean`` and ``scale`` (per channel) normalise it in the graph."""
    path = Path(path)
    model, weights = load(path)
    reader = _Reader(path, model, weights)
    reader.run(outputs, tuple(input_shape) if input_shape else None, nchw, mean, scale)
    if len(reader.inputs) != 1:
        raise TfjsError(f"{path}: {len(reader.inputs)} inputs feed {list(outputs)}; one expected")
    return reader.graph(outputs)
