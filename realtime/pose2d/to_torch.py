"""Build a ``torch.nn.Module`` from the TFLite IR (the same IR the ONNX emitter reads).

NCHW inside, NHWC at the boundary (the tflite contract), so the input permute yields a channels-last
tensor for free. Shapes are static except the batch, and ``forward`` is a fixed sequence of steps with
no data-dependent Python branching: CUDA graph capture and ``torch.compile`` both work, and ``.half()``
casts every weight (index buffers stay integer).
The saved file holds the IR as plain containers and tensors, loadable with ``weights_only=True``
on a machine without the tflite package.
"""
from __future__ import annotations

import os
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

from realtime.pose2d.tflite_ir import Graph, Op
from realtime.pose2d.to_onnx import physical_constant, physical_perm

NHWC_TO_NCHW = (0, 3, 1, 2)
NCHW_TO_NHWC = (0, 2, 3, 1)
AXIS_NCHW = {0: 0, 1: 2, 2: 3, 3: 1}


def _activation(kind: str) -> nn.Module:
    return {"NONE": nn.Identity(), "RELU": nn.ReLU(), "RELU6": nn.ReLU6(), "TANH": nn.Tanh(),
            "RELU_N1_TO_1": nn.Hardtanh(-1.0, 1.0)}[kind]


def _padding(pads: tuple[int, int, int, int]) -> tuple[int | tuple[int, int], tuple[int, int, int, int] | None]:
    """Symmetric pads go to the layer itself; asymmetric ones (TFLite SAME with stride) to an explicit F.pad."""
    top, left, bottom, right = pads
    if top == bottom and left == right:
        return (top, left), None
    return 0, (left, right, top, bottom)


def _const(array: np.ndarray, rank: int) -> torch.Tensor:
    return torch.from_numpy(np.ascontiguousarray(physical_constant(array, rank), dtype=np.float32))


class Conv(nn.Module):
    def __init__(self, op: Op, graph: Graph):
        super().__init__()
        w = graph.constants[op.inputs[1]]
        depthwise = op.type == "DEPTHWISE_CONV_2D"
        weight = w.transpose(3, 0, 1, 2) if depthwise else w.transpose(0, 3, 1, 2)
        padding, self.pad = _padding(op.attrs["pads"])
        groups = graph.shapes[op.inputs[0]][3] if depthwise else op.attrs.get("groups", 1)
        self.conv = nn.Conv2d(groups * weight.shape[1], weight.shape[0], weight.shape[2:], stride=op.attrs["stride"],
                              padding=padding, dilation=op.attrs["dilation"], groups=groups,
                              bias=len(op.inputs) > 2)
        with torch.no_grad():
            self.conv.weight.copy_(torch.from_numpy(np.ascontiguousarray(weight)))
            if self.conv.bias is not None:
                self.conv.bias.copy_(torch.from_numpy(graph.constants[op.inputs[2]]))
        self.act = _activation(op.attrs["activation"])

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if self.pad is not None:
            x = F.pad(x, self.pad)
        return self.act(self.conv(x))


class MaxPool(nn.Module):
    def __init__(self, op: Op, graph: Graph):
        super().__init__()
        padding, self.pad = _padding(op.attrs["pads"])
        self.pool = nn.MaxPool2d(op.attrs["kernel"], op.attrs["stride"], padding)
        self.act = _activation(op.attrs["activation"])

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if self.pad is not None:
            x = F.pad(x, self.pad, value=float("-inf"))
        return self.act(self.pool(x))


class TransposeConv(nn.Module):
    """TFLite/TF transposed convolution: the full ConvTranspose2d output cropped by (top, left) to the
    output shape (SAME cuts the odd extra row after, which ConvTranspose2d's symmetric padding cannot)."""

    def __init__(self, op: Op, graph: Graph):
        super().__init__()
        w = graph.constants[op.inputs[1]]                  # (out, H, W, in)
        weight = w.transpose(3, 0, 1, 2)                   # (in, out, H, W)
        self.conv = nn.ConvTranspose2d(weight.shape[0], weight.shape[1], weight.shape[2:], stride=op.attrs["stride"],
                                       bias=False)
        with torch.no_grad():
            self.conv.weight.copy_(torch.from_numpy(np.ascontiguousarray(weight)))
        _, self.h, self.w, _ = graph.shapes[op.outputs[0]]
        self.top, self.left = op.attrs["pads"][:2]

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.conv(x)[:, :, self.top:self.top + self.h, self.left:self.left + self.w]


_BINARY = {"ADD": torch.add, "SUB": torch.sub, "MUL": torch.mul, "DIV": torch.div, "MAXIMUM": torch.maximum,
           "MINIMUM": torch.minimum}


class Binary(nn.Module):
    def __init__(self, op: Op, graph: Graph):
        super().__init__()
        self.fn = _BINARY[op.type]
        self.act = _activation(op.attrs.get("activation", "NONE"))

    def forward(self, a: torch.Tensor, b: torch.Tensor) -> torch.Tensor:
        return self.act(self.fn(a, b))


class Transpose(nn.Module):
    def __init__(self, op: Op, graph: Graph):
        super().__init__()
        self.perm = tuple(physical_perm(op.attrs["perm"]))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return x.permute(self.perm)


class Slice(nn.Module):
    def __init__(self, op: Op, graph: Graph):
        super().__init__()
        rank = len(graph.shapes[op.outputs[0]])
        self.axis = AXIS_NCHW[op.attrs["axis"]] if rank == 4 else op.attrs["axis"]
        self.begin, self.length = op.attrs["begin"], op.attrs["end"] - op.attrs["begin"]

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return x.narrow(self.axis, self.begin, self.length)


class Mean(nn.Module):
    def __init__(self, op: Op, graph: Graph):
        super().__init__()
        self.keepdim = bool(op.attrs["keepdims"])
        self.to_nhwc = len(graph.shapes[op.inputs[0]]) == 4 and not self.keepdim
        four = len(graph.shapes[op.inputs[0]]) == 4 and self.keepdim
        self.axes = tuple(AXIS_NCHW[a] if four else a for a in op.attrs["axes"])

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if self.to_nhwc:
            x = x.permute(NCHW_TO_NHWC)
        return x.mean(dim=self.axes, keepdim=self.keepdim)


class Concat(nn.Module):
    def __init__(self, op: Op, graph: Graph):
        super().__init__()
        rank = len(graph.shapes[op.outputs[0]])
        self.axis = AXIS_NCHW[op.attrs["axis"]] if rank == 4 else op.attrs["axis"]
        self.act = _activation(op.attrs["activation"])

    def forward(self, *xs: torch.Tensor) -> torch.Tensor:
        return self.act(torch.cat(xs, dim=self.axis))


def _lerp_table(n_in: int, n_out: int, align_corners: bool, half_pixel: bool) -> tuple[np.ndarray, ...]:
    """Source indices and weights of TFLite's bilinear resize along one axis."""
    if align_corners and n_out > 1:
        src = np.arange(n_out) * ((n_in - 1) / (n_out - 1))
    elif half_pixel:
        src = np.maximum((np.arange(n_out) + 0.5) * (n_in / n_out) - 0.5, 0.0)
    else:
        src = np.arange(n_out) * (n_in / n_out)
    lo = np.minimum(np.floor(src).astype(np.int64), n_in - 1)
    hi = np.minimum(lo + 1, n_in - 1)
    return lo, hi, (src - lo).astype(np.float32)


class ResizeBilinear(nn.Module):
    """Separable gather + lerp with precomputed tables: TFLite's asymmetric mode has no F.interpolate equivalent."""

    def __init__(self, op: Op, graph: Graph):
        super().__init__()
        _, h_in, w_in, _ = graph.shapes[op.inputs[0]]
        _, h_out, w_out, _ = graph.shapes[op.outputs[0]]
        modes = (op.attrs["align_corners"], op.attrs["half_pixel_centers"])
        for axis, (n_in, n_out) in (("y", (h_in, h_out)), ("x", (w_in, w_out))):
            lo, hi, frac = _lerp_table(n_in, n_out, *modes)
            self.register_buffer(f"{axis}_lo", torch.from_numpy(lo))
            self.register_buffer(f"{axis}_hi", torch.from_numpy(hi))
            shape = (-1, 1) if axis == "y" else (-1,)
            self.register_buffer(f"{axis}_frac", torch.from_numpy(frac.reshape(shape)))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        top, bottom = x.index_select(2, self.y_lo), x.index_select(2, self.y_hi)
        x = top + (bottom - top) * self.y_frac
        left, right = x.index_select(3, self.x_lo), x.index_select(3, self.x_hi)
        return left + (right - left) * self.x_frac


class Pad(nn.Module):
    def __init__(self, op: Op, graph: Graph):
        super().__init__()
        rows = [op.attrs["pads"][d] for d in NHWC_TO_NCHW] if len(op.attrs["pads"]) == 4 else list(op.attrs["pads"])
        self.pad = tuple(v for row in reversed(rows) for v in row)
        self.value = float(op.attrs.get("value", 0.0))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return F.pad(x, self.pad, value=self.value)


class DepthToSpace(nn.Module):
    """TensorFlow's DCR order (F.pixel_shuffle is CRD, so it would scramble channels)."""

    def __init__(self, op: Op, graph: Graph):
        super().__init__()
        _, self.h, self.w, c = graph.shapes[op.inputs[0]]
        self.r = op.attrs["block"]
        self.c = c // (self.r * self.r)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        r, c, h, w = self.r, self.c, self.h, self.w
        x = x.reshape(-1, r, r, c, h, w).permute(0, 3, 4, 1, 5, 2)
        return x.reshape(-1, c, h * r, w * r)


class Reshape(nn.Module):
    """TFLite reshapes NHWC data: go to NHWC, reshape with the batch kept, and back to NCHW if 4-D."""

    def __init__(self, op: Op, graph: Graph):
        super().__init__()
        self.from_4d = len(graph.shapes[op.inputs[0]]) == 4
        self.shape = tuple(graph.shapes[op.outputs[0]][1:])

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if self.from_4d:
            x = x.permute(NCHW_TO_NHWC)
        x = x.reshape(-1, *self.shape)
        return x.permute(NHWC_TO_NCHW) if len(self.shape) == 3 else x


class Unary(nn.Module):
    def __init__(self, op: Op, graph: Graph):
        super().__init__()
        self.fn = {"RELU": nn.ReLU(), "RELU6": nn.ReLU6(), "LOGISTIC": nn.Sigmoid(), "TANH": nn.Tanh(),
                   "LEAKY_RELU": nn.LeakyReLU(op.attrs.get("alpha", 0.2))}[op.type]

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.fn(x)


_LAYERS: dict[str, type[nn.Module]] = {
    "CONV_2D": Conv, "DEPTHWISE_CONV_2D": Conv, "MAX_POOL_2D": MaxPool, "CONCATENATION": Concat,
    "RESIZE_BILINEAR": ResizeBilinear, "PAD": Pad, "DEPTH_TO_SPACE": DepthToSpace, "RESHAPE": Reshape,
    "RELU": Unary, "RELU6": Unary, "LOGISTIC": Unary, "TANH": Unary, "LEAKY_RELU": Unary,
    "TRANSPOSE_CONV": TransposeConv, "TRANSPOSE": Transpose, "SLICE": Slice, "MEAN": Mean,
    **{kind: Binary for kind in _BINARY},
}
#: Ops reading all their inputs as tensors; the others read only the first (the rest are weights or shapes).
_MULTI_INPUT = frozenset({"CONCATENATION", *_BINARY})


class TfliteModule(nn.Module):
    """The whole model: ``forward(image NHWC) -> tuple of outputs`` in ``output_names`` order (NHWC for 4-D)."""

    def __init__(self, graph: Graph, output_names: list[str]):
        super().__init__()
        if len(graph.inputs) != 1 or len(output_names) != len(graph.outputs):
            raise ValueError(f"expected 1 input and {len(graph.outputs)} output names, got {output_names}")
        self.output_names = list(output_names)
        self.layers = nn.ModuleList()
        self.wiring: list[tuple[tuple[str, ...], str]] = []
        self.input = f"t{graph.inputs[0]}"
        self.outputs = [(f"t{t}", len(graph.shapes[t]) == 4) for t in graph.outputs]
        consts: dict[str, torch.Tensor] = {}
        for op in graph.ops:
            self.layers.append(_LAYERS[op.type](op, graph))
            data = op.inputs if op.type in _MULTI_INPUT else op.inputs[:1]
            for t in data:
                if t in graph.constants:
                    consts[f"t{t}"] = _const(graph.constants[t], len(graph.shapes[op.outputs[0]]))
            self.wiring.append((tuple(f"t{t}" for t in data), f"t{op.outputs[0]}"))
        self.const_names = sorted(consts)
        for name in self.const_names:
            self.register_buffer(f"const_{name}", consts[name])

    def forward(self, image: torch.Tensor) -> tuple[torch.Tensor, ...]:
        env = {name: getattr(self, f"const_{name}") for name in self.const_names}
        env[self.input] = image.permute(NHWC_TO_NCHW)
        for layer, (ins, out) in zip(self.layers, self.wiring):
            env[out] = layer(*(env[i] for i in ins))
        return tuple(env[t].permute(NCHW_TO_NHWC) if is_4d else env[t] for t, is_4d in self.outputs)


def save(graph: Graph, path: str | Path, output_names: list[str], stamp: dict[str, str] | None = None) -> Path:
    """Write the IR (not a pickled module) so loading needs only torch and this file, with weights_only."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    data = graph.to_dict()
    data["constants"] = {k: torch.from_numpy(np.ascontiguousarray(v)) for k, v in data["constants"].items()}
    tmp = path.with_name(f"{path.name}.{os.getpid()}.tmp")
    torch.save({"graph": data, "output_names": list(output_names), "stamp": dict(stamp or {})}, tmp)
    tmp.replace(path)
    return path


def load(path: str | Path) -> TfliteModule:
    """The module saved by :func:`save`, in eval mode with gradients off, on the CPU in float32."""
    data = torch.load(Path(path), weights_only=True)
    graph_dict = dict(data["graph"])
    graph_dict["constants"] = {k: v.numpy() for k, v in graph_dict["constants"].items()}
    module = TfliteModule(Graph.from_dict(graph_dict), data["output_names"])
    return module.eval().requires_grad_(False)
