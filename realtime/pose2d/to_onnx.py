"""Emit ONNX from the TFLite IR.

Layout: the model's input and outputs keep TFLite's contract (NHWC image in, NHWC belief maps out)
so every backend is fed and read the same way; inside, 4-D activations are NCHW, as ONNX Conv wants,
with one Transpose at each boundary. The batch dimension is dynamic ("N"). Opset 18 (Resize with axes).
"""
from __future__ import annotations

import os
from pathlib import Path

import numpy as np
import onnx
from onnx import TensorProto, helper, numpy_helper

from realtime.pose2d.tflite_ir import Graph, Op

OPSET = 18
#: Pinned so files load in onnxruntime releases older than the onnx package that wrote them.
IR_VERSION = 9
NHWC_TO_NCHW = (0, 3, 1, 2)
NCHW_TO_NHWC = (0, 2, 3, 1)
#: TFLite NHWC axis -> NCHW axis for 4-D tensors.
AXIS_NCHW = {0: 0, 1: 2, 2: 3, 3: 1}


def physical_constant(value: np.ndarray, rank: int) -> np.ndarray:
    """A constant operand of an op on ``rank``-D activations, in the activations' physical layout:
    against 4-D (NHWC in the IR, NCHW inside) it is broadcast to 4-D and transposed; otherwise as is."""
    if rank != 4 or value.ndim == 0:
        return value
    return value.reshape((1,) * (4 - value.ndim) + value.shape).transpose(NHWC_TO_NCHW)


def physical_perm(perm: tuple[int, ...]) -> list[int]:
    """The transpose of physical (NCHW) data that equals ``perm`` on the logical (NHWC) 4-D tensor."""
    if len(perm) != 4:
        return list(perm)
    return [int(v) for v in np.array(NCHW_TO_NHWC)[list(perm)][list(NHWC_TO_NCHW)]]


_BINARY = {"ADD": "Add", "SUB": "Sub", "MUL": "Mul", "DIV": "Div", "MAXIMUM": "Max", "MINIMUM": "Min"}


class _Emitter:
    def __init__(self, graph: Graph):
        self.g = graph
        self.nodes: list[onnx.NodeProto] = []
        self.inits: list[onnx.TensorProto] = []
        self.count = 0

    def fresh(self, hint: str) -> str:
        self.count += 1
        return f"{hint}_{self.count}"

    def const(self, array: np.ndarray, hint: str) -> str:
        name = self.fresh(hint)
        self.inits.append(numpy_helper.from_array(np.ascontiguousarray(array), name))
        return name

    def node(self, op: str, inputs: list[str], output: str | None = None, **attrs) -> str:
        output = output or self.fresh(op.lower())
        self.nodes.append(helper.make_node(op, inputs, [output], name=self.fresh("n"), **attrs))
        return output

    def activation(self, x: str, kind: str, out: str) -> str:
        if kind == "NONE":
            return self.node("Identity", [x], out)
        if kind == "RELU":
            return self.node("Relu", [x], out)
        if kind == "TANH":
            return self.node("Tanh", [x], out)
        lo, hi = {"RELU6": (0.0, 6.0), "RELU_N1_TO_1": (-1.0, 1.0)}[kind]
        return self.node("Clip", [x, self.const(np.float32(lo), "lo"), self.const(np.float32(hi), "hi")], out)

    def operand(self, tid: int, rank: int = 4) -> str:
        """A tensor as stored inside the ONNX graph: constants laid out like the ``rank``-D activations
        they meet (see :func:`physical_constant`)."""
        if tid not in self.g.constants:
            return f"t{tid}"
        return self.const(physical_constant(self.g.constants[tid], rank), "c")

    def emit(self, op: Op) -> None:
        g, a = self.g, op.attrs
        out = f"t{op.outputs[0]}"
        rank = len(g.shapes[op.outputs[0]])
        x = self.operand(op.inputs[0], rank)
        if op.type in ("CONV_2D", "DEPTHWISE_CONV_2D"):
            w = g.constants[op.inputs[1]]
            if op.type == "CONV_2D":
                weight, group = w.transpose(0, 3, 1, 2), a.get("groups", 1)
            else:
                weight, group = w.transpose(3, 0, 1, 2), g.shapes[op.inputs[0]][3]
            ins = [x, self.const(weight, "w")]
            if len(op.inputs) > 2:
                ins.append(self.const(g.constants[op.inputs[2]], "b"))
            top, left, bottom, right = a["pads"]
            y = self.node("Conv", ins, kernel_shape=list(weight.shape[2:]), strides=list(a["stride"]),
                          dilations=list(a["dilation"]), pads=[top, left, bottom, right], group=group)
            self.activation(y, a["activation"], out)
        elif op.type == "MAX_POOL_2D":
            top, left, bottom, right = a["pads"]
            y = self.node("MaxPool", [x], kernel_shape=list(a["kernel"]), strides=list(a["stride"]),
                          pads=[top, left, bottom, right])
            self.activation(y, a["activation"], out)
        elif op.type == "TRANSPOSE_CONV":
            w = g.constants[op.inputs[1]]                      # (out, H, W, in)
            weight = w.transpose(3, 0, 1, 2)                   # ConvTranspose: (in, out, H, W)
            y = self.node("ConvTranspose", [x, self.const(weight, "w")], kernel_shape=list(weight.shape[2:]),
                          strides=list(a["stride"]))
            top, left, _, _ = a["pads"]
            _, h, w_out, _ = g.shapes[op.outputs[0]]
            self.node("Slice", [y, self.const(np.array([top, left], np.int64), "begin"),
                                self.const(np.array([top + h, left + w_out], np.int64), "end"),
                                self.const(np.array([2, 3], np.int64), "axes")], out)
        elif op.type in _BINARY:
            y = self.node(_BINARY[op.type], [x, self.operand(op.inputs[1], rank)])
            self.activation(y, a.get("activation", "NONE"), out)
        elif op.type in ("RELU", "RELU6", "TANH"):
            self.activation(x, op.type, out)
        elif op.type == "LEAKY_RELU":
            self.node("LeakyRelu", [x], out, alpha=a["alpha"])
        elif op.type == "TRANSPOSE":
            self.node("Transpose", [x], out, perm=physical_perm(a["perm"]))
        elif op.type == "SLICE":
            axis = AXIS_NCHW[a["axis"]] if rank == 4 else a["axis"]
            self.node("Slice", [x, self.const(np.array([a["begin"]], np.int64), "begin"),
                                self.const(np.array([a["end"]], np.int64), "end"),
                                self.const(np.array([axis], np.int64), "axes")], out)
        elif op.type == "MEAN":
            axes = list(a["axes"])
            if len(g.shapes[op.inputs[0]]) == 4 and a["keepdims"]:
                axes = [AXIS_NCHW[v] for v in axes]
            elif len(g.shapes[op.inputs[0]]) == 4:
                x = self.node("Transpose", [x], perm=list(NCHW_TO_NHWC))
            self.node("ReduceMean", [x, self.const(np.array(axes, np.int64), "axes")], out,
                      keepdims=int(a["keepdims"]))
        elif op.type == "LOGISTIC":
            self.node("Sigmoid", [x], out)
        elif op.type == "CONCATENATION":
            rank = len(g.shapes[op.outputs[0]])
            axis = AXIS_NCHW[a["axis"]] if rank == 4 else a["axis"]
            y = self.node("Concat", [self.operand(i, rank) for i in op.inputs], axis=axis)
            self.activation(y, a["activation"], out)
        elif op.type == "RESIZE_BILINEAR":
            mode = ("align_corners" if a["align_corners"] else
                    "half_pixel" if a["half_pixel_centers"] else "asymmetric")
            size = np.array(g.shapes[op.outputs[0]][1:3], dtype=np.int64)
            self.node("Resize", [x, "", "", self.const(size, "size")], out, mode="linear",
                      coordinate_transformation_mode=mode, axes=[2, 3])
        elif op.type == "PAD":
            rows = [a["pads"][d] for d in NHWC_TO_NCHW] if len(a["pads"]) == 4 else list(a["pads"])
            pads = np.array([r[0] for r in rows] + [r[1] for r in rows], dtype=np.int64)
            value = self.const(np.array(a.get("value", 0.0), np.float32), "value")
            self.node("Pad", [x, self.const(pads, "pads"), value], out, mode="constant")
        elif op.type == "DEPTH_TO_SPACE":
            self.node("DepthToSpace", [x], out, blocksize=a["block"], mode="DCR")
        elif op.type == "RESHAPE":
            in_rank, out_shape = len(g.shapes[op.inputs[0]]), g.shapes[op.outputs[0]]
            if in_rank == 4:
                x = self.node("Transpose", [x], perm=list(NCHW_TO_NHWC))
            target = self.const(np.array((-1, *out_shape[1:]), dtype=np.int64), "shape")
            if len(out_shape) == 4:
                y = self.node("Reshape", [x, target])
                self.node("Transpose", [y], out, perm=list(NHWC_TO_NCHW))
            else:
                self.node("Reshape", [x, target], out)
        else:
            raise ValueError(f"no ONNX emitter for {op.type}")


def to_onnx(graph: Graph, input_name: str, output_names: list[str], metadata: dict[str, str] | None = None,
            doc: str = "") -> onnx.ModelProto:
    """Build an ONNX model (NHWC boundary, dynamic batch "N") computing ``graph``."""
    if len(graph.inputs) != 1 or len(output_names) != len(graph.outputs):
        raise ValueError(f"expected 1 input and {len(graph.outputs)} output names, got {output_names}")
    e = _Emitter(graph)
    src = graph.inputs[0]
    e.node("Transpose", [input_name], f"t{src}", perm=list(NHWC_TO_NCHW))
    for op in graph.ops:
        e.emit(op)
    outputs = []
    for tid, name in zip(graph.outputs, output_names):
        shape = graph.shapes[tid]
        perm = {"perm": list(NCHW_TO_NHWC)} if len(shape) == 4 else {}
        e.node("Transpose" if perm else "Identity", [f"t{tid}"], name, **perm)
        outputs.append(helper.make_tensor_value_info(name, TensorProto.FLOAT, ["N", *shape[1:]]))
    inputs = [helper.make_tensor_value_info(input_name, TensorProto.FLOAT, ["N", *graph.shapes[src][1:]])]
    model = helper.make_model(helper.make_graph(e.nodes, "tflite_ir", inputs, outputs, e.inits, doc_string=doc),
                              opset_imports=[helper.make_opsetid("", OPSET)], producer_name="realtime",
                              ir_version=IR_VERSION)
    helper.set_model_props(model, metadata or {})
    onnx.checker.check_model(model)
    return model


def save(graph: Graph, path: str | Path, input_name: str, output_names: list[str],
         metadata: dict[str, str] | None = None, doc: str = "") -> Path:
    """Write the ONNX file atomically (a half-written model never appears under the final name)."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f"{path.name}.{os.getpid()}.tmp")
    onnx.save(to_onnx(graph, input_name, output_names, metadata, doc), tmp)
    tmp.replace(path)
    return path
