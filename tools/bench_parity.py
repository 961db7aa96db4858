"""Converted models vs the upstream tflite: output parity and per-crop time, ONNX Runtime vs LiteRT, one thread each.

    python tools/bench_parity.py [--models cpm,blazepose-detector] [--repeats 50] [--json]

``measure(model, repeats)`` is importable by other benchmark tools (tools/bench_backends.py).
"""
from __future__ import annotations

import argparse
import json
import statistics
import sys
import time
from pathlib import Path

import cv2
import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from realtime.config import REPO_ROOT, Pose2DConfig  # noqa: E402
from realtime.pose2d.backends import create_backend  # noqa: E402
from realtime.pose2d.models import model_path, model_spec  # noqa: E402

PHOTOS = REPO_ROOT.parent / "shared" / "data" / "images" / "photos"


def photo_crops(name: str, count: int = 4) -> np.ndarray:
    """Real photos, centre-square cropped and resized to the model's input, normalised for it."""
    spec = model_spec(name)
    files = sorted(PHOTOS.glob("*.jpg"))[:count]
    if not files:
        raise SystemExit(f"no photos in {PHOTOS}")
    crops = []
    for f in files:
        bgr = cv2.imread(str(f))
        h, w = bgr.shape[:2]
        s = min(h, w)
        square = bgr[(h - s) // 2:(h - s) // 2 + s, (w - s) // 2:(w - s) // 2 + s, ::-1]
        crops.append(cv2.resize(square, spec.input_size[::-1], interpolation=cv2.INTER_AREA))
    return spec.normalise(np.stack(crops))


def _median_ms(fn, repeats: int) -> float:
    fn()
    times = []
    for _ in range(repeats):
        t = time.perf_counter()
        fn()
        times.append((time.perf_counter() - t) * 1e3)
    return statistics.median(times)


def _float64_module(name: str):
    """The same converted graph evaluated in float64 (torch), as a referee between two float32 runtimes."""
    try:
        import torch
    except ImportError:
        return None
    from realtime.pose2d.models import torch_module as load_module
    module = load_module(name).double()

    def run(x: np.ndarray) -> dict[str, np.ndarray]:
        with torch.inference_mode():
            outs = module(torch.from_numpy(x[None].astype(np.float64)))
        return {k: v.numpy() for k, v in zip(module.output_names, outs)}
    return run


def measure(name: str = "cpm", repeats: int = 50) -> dict:
    """Median ms per single crop for ONNX Runtime and LiteRT (1 thread each, same crop), and output differences.

    ``max_scaled_diff`` divides by the output's scale (max(1, max |LiteRT|)): segmentation logits reach ~2000.
    ``ort_vs_fp64`` / ``litert_vs_fp64``: each runtime's max |diff| to a float64 evaluation of the graph (needs torch),
    which tells a conversion error (ORT far off) from float32 rounding (both off by similar amounts).
    """
    from ai_edge_litert.interpreter import Interpreter
    spec = model_spec(name)
    crops = photo_crops(name)
    interpreter = Interpreter(model_path=str(model_path(name, "tflite")), num_threads=1)
    interpreter.allocate_tensors()
    index = interpreter.get_input_details()[0]["index"]
    outputs = {d["name"]: d["index"] for d in interpreter.get_output_details()}
    backend = create_backend(name, "onnxruntime", Pose2DConfig(ort_threads=1))

    def run_litert(x: np.ndarray) -> list[np.ndarray]:
        interpreter.set_tensor(index, x[None])
        interpreter.invoke()
        return [interpreter.get_tensor(outputs[t]) for t in spec.source_outputs]

    exact = _float64_module(name)
    max_diff = max_scaled = ort_vs_fp64 = litert_vs_fp64 = 0.0
    for x in crops:
        ours = backend.infer(x[None])
        refs = dict(zip(spec.outputs, run_litert(x)))
        for key, ref in refs.items():
            diff = float(np.abs(ours[key] - ref).max())
            max_diff = max(max_diff, diff)
            max_scaled = max(max_scaled, diff / max(1.0, float(np.abs(ref).max())))
        if exact is not None:
            for key, value in exact(x).items():
                ort_vs_fp64 = max(ort_vs_fp64, float(np.abs(ours[key] - value).max()))
                litert_vs_fp64 = max(litert_vs_fp64, float(np.abs(refs[key] - value).max()))
    one = crops[:1]
    ort_ms = _median_ms(lambda: backend.infer(one), repeats)
    litert_ms = _median_ms(lambda: run_litert(one[0]), repeats)
    backend.close()
    return {"model": name, "onnxruntime_ms": round(ort_ms, 3), "litert_ms": round(litert_ms, 3),
            "ratio": round(ort_ms / litert_ms, 3), "max_abs_diff": max_diff,
            "max_scaled_diff": max_scaled,
            "ort_vs_fp64": ort_vs_fp64 if exact else None, "litert_vs_fp64": litert_vs_fp64 if exact else None,
            "crops": len(crops),
            "repeats": repeats}


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--models", default="cpm")
    p.add_argument("--repeats", type=int, default=50)
    p.add_argument("--json", action="store_true", help="print one JSON object instead of a table")
    args = p.parse_args(argv)
    rows = [measure(m.strip(), args.repeats) for m in args.models.split(",") if m.strip()]
    if args.json:
        print(json.dumps({"bench": "parity", "threads": 1, "results": rows}))
        return 0
    print(f"{'model':16s} {'ORT ms':>8s} {'LiteRT ms':>10s} {'ORT/LiteRT':>10s} {'max |diff|':>11s} {'scaled':>9s} "
          f"{'ORT-fp64':>9s} {'LiteRT-fp64':>11s}")
    for r in rows:
        fp64 = (f"{r['ort_vs_fp64']:9.2e} {r['litert_vs_fp64']:11.2e}" if r["ort_vs_fp64"] is not None
                else f"{'-':>9s} {'-':>11s}")
        print(f"{r['model']:16s} {r['onnxruntime_ms']:8.2f} {r['litert_ms']:10.2f} {r['ratio']:10.2f} "
              f"{r['max_abs_diff']:11.2e} {r['max_scaled_diff']:9.2e} {fp64}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
