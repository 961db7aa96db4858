"""Int8 versions of converted models for the CPU backend: calibrated once, rebuilt anywhere.

Why: on a CPU with int8 dot-product instructions (AVX-512 VNNI, AVX-VNNI) a convolution in int8
costs about half its float32 time, and the person detector is the largest network a video frame
runs (a 416x416 region, ~50 ms on one core). Only the detector is quantised: measured on the shared
photos, MoveNet in int8 lost keypoint accuracy under blur and low light (docs/benchmarks.md) while
NanoDet kept its people.

How: ONNX Runtime's static quantisation (``onnxruntime.quantization``, QDQ, per-channel int8
weights, uint8 activations, convolutions only) needs each activation's range. The ranges come from
real inputs (the shared photos and video frames, through the project's own preprocessing) once, by
``tools/calibrate_int8.py``, which writes a small calibration table (``engines/int8_<model>.json``,
package data, committed like the pose prior). Building the int8 model then needs only the float32
ONNX and the table, no images: ``realtime models build`` makes ``<engines>/models/<name>-int8.onnx``
on any machine. The table records the stamp of the float32 model it was measured on: tensor names
belong to one converter version, so a table for another build is an error naming the tool to rerun.
"""
from __future__ import annotations

import hashlib
import importlib.resources
import inspect
import json
import logging
import tempfile
from pathlib import Path
from typing import Iterable

import numpy as np

#: Networks with a committed calibration table (the detector: see the module docstring).
CALIBRATED = ("nanodet",)
#: Activation ranges: this percentile of each tensor's absolute values over the calibration inputs
#: (the max would let one outlier stretch the range of every other input).
PERCENTILE = 99.999
#: The operators quantised.
OPS = ("Conv",)


class Int8Error(RuntimeError):
    """No int8 model can be made: no table, a table for another build, or an ONNX Runtime too old."""


def table_path(name: str) -> Path:
    """The committed calibration table of model ``name`` (package data; in a checkout a link to
    ``engines/int8_<name>.json``, where ``tools/calibrate_int8.py`` writes it)."""
    return Path(str(importlib.resources.files("realtime").joinpath("data", f"int8_{name}.json")))


def has_table(name: str) -> bool:
    return name in CALIBRATED and table_path(name).is_file()


def calibrate(onnx_path: Path, inputs: Iterable[np.ndarray], input_name: str) -> dict[str, list[float]]:
    """Each convolution input's and output's range (lowest, highest) over ``inputs`` (batches as the
    backend gets them): ONNX Runtime's histogram calibrator at :data:`PERCENTILE`."""
    from onnxruntime.quantization import CalibrationDataReader, CalibrationMethod, create_calibrator

    class Reader(CalibrationDataReader):
        def __init__(self) -> None:
            self.batches = ({input_name: b[i:i + 1]} for b in inputs for i in range(len(b)))

        def get_next(self):
            return next(self.batches, None)

    with tempfile.TemporaryDirectory() as tmp:
        calibrator = create_calibrator(Path(onnx_path), list(OPS), str(Path(tmp) / "augmented.onnx"),
                                       CalibrationMethod.Percentile,
                                       extra_options={"CalibPercentile": PERCENTILE})
        calibrator.collect_data(Reader())
        ranges = calibrator.compute_data()
    return {k: [float(np.asarray(v.range_value[0])), float(np.asarray(v.range_value[1]))]
            for k, v in sorted(ranges.items())}


def save_table(path: Path, name: str, stamp: dict[str, str], ranges: dict[str, list[float]], made_from: str) -> None:
    path.write_text(json.dumps({"model": name, "stamp": stamp, "method": f"percentile {PERCENTILE}",
                                "made_from": made_from, "ops": list(OPS), "ranges": ranges}, indent=1) + "\n")


def table_sha256(name: str) -> str:
    return hashlib.sha256(table_path(name).read_bytes()).hexdigest()


def quantize(name: str, fp32_path: Path, out_path: Path, stamp: dict[str, str]) -> Path:
    """``out_path``: the float32 ONNX ``fp32_path`` of model ``name`` quantised with its committed
    table; ``stamp`` is the float32 build's, which the table must have been measured on."""
    import onnx
    from onnxruntime.quantization import CalibrationMethod, QuantFormat, QuantType, quantize_static
    from onnxruntime.quantization.calibrate import TensorData, TensorsData, save_tensors_data

    if not has_table(name):
        raise Int8Error(f"{name}: no int8 calibration table ({table_path(name)}); int8 models exist for "
                        f"{', '.join(CALIBRATED)}")
    if "calibration_cache_path" not in inspect.signature(quantize_static).parameters:
        raise Int8Error("int8 models need onnxruntime >= 1.32 (quantize_static's calibration_cache_path)")
    try:
        table = json.loads(table_path(name).read_text())
        ranges = table["ranges"]
    except (OSError, ValueError, KeyError) as e:
        raise Int8Error(f"{table_path(name)}: not a calibration table ({e})") from None
    if table.get("stamp") != stamp:
        raise Int8Error(f"{table_path(name)}: measured on another build of {name} ({table.get('stamp')}, "
                        f"this one {stamp}): run tools/calibrate_int8.py")
    model = onnx.load(str(fp32_path))
    _full_rank_resize(model)
    data = TensorsData(CalibrationMethod.MinMax, {k: TensorData(lowest=np.float32(lo), highest=np.float32(hi))
                                                  for k, (lo, hi) in ranges.items()})
    out_path.parent.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory(dir=out_path.parent) as tmp:
        cache = Path(tmp) / "ranges.json"
        save_tensors_data(data, cache)
        staged = Path(tmp) / out_path.name
        root = logging.getLogger()
        level = root.level
        root.setLevel(logging.ERROR)    # the quantiser's advice to pre-process, on the root logger
        try:
            quantize_static(model, staged, None, quant_format=QuantFormat.QDQ, op_types_to_quantize=list(OPS),
                            per_channel=True, activation_type=QuantType.QUInt8, weight_type=QuantType.QInt8,
                            calibrate_method=CalibrationMethod.MinMax, calibration_cache_path=cache)
        finally:
            root.setLevel(level)
        quantized = onnx.load(str(staged))
        del quantized.metadata_props[:]
        for key, value in {**stamp, "int8_table_sha256": table_sha256(name)}.items():
            quantized.metadata_props.add(key=key, value=value)
        onnx.save(quantized, str(staged))
        staged.replace(out_path)
    return out_path


def _full_rank_resize(model) -> None:
    """Rewrite each ``Resize`` that names its ``axes`` and target ``sizes`` (what the converter emits
    for a 2x upsampling) as one with a scale for every axis: ONNX Runtime's layout optimisation of
    quantised graphs (NHWC for int8 convolutions) mis-reads the ``axes`` form ("Number of elements of
    input 'sizes' (0) does not match the number of axes"). Same results: only the spatial axes
    scale, by whole ratios."""
    from onnx import numpy_helper, shape_inference

    inferred = shape_inference.infer_shapes(model)
    shapes = {v.name: [d.dim_value for d in v.type.tensor_type.shape.dim]
              for v in [*inferred.graph.value_info, *inferred.graph.input]}
    constants = {i.name: i for i in model.graph.initializer}
    for node in model.graph.node:
        axes = [a for a in node.attribute if a.name == "axes"]
        if node.op_type != "Resize" or not axes or len(node.input) < 4 or node.input[3] not in constants:
            continue
        sizes = numpy_helper.to_array(constants[node.input[3]])
        shape = shapes[node.input[0]]
        scales = np.ones(len(shape), np.float32)
        for axis, size in zip(axes[0].ints, sizes):
            scales[axis] = size / shape[axis]
        name = f"{node.name}_scales"
        model.graph.initializer.append(numpy_helper.from_array(scales, name))
        node.input[:] = [node.input[0], "", name]
        node.attribute.remove(axes[0])
    used = {i for node in model.graph.node for i in node.input}
    for unused in [i for i in model.graph.initializer if i.name not in used]:
        model.graph.initializer.remove(unused)
