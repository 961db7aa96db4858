#!/usr/bin/env python3
"""Inference speed of the 2D backends side by side, in one run: crops/s and p50/p95 latency per batch.

    python tools/bench_backends.py                      # CPU: onnxruntime vs LiteRT (1 thread), torch CPU fp32
    python tools/bench_backends.py --json               # one JSON object instead of the table
    python tools/bench_backends.py --backends torch,torch-eager,tensorrt --frame-people 4   # on a GPU

    python tools/bench_backends.py --threads 2 --backends onnxruntime,onnxruntime-intra --batches 1,2,3,4

Backends: onnxruntime, onnxruntime-intra (``[pose2d] ort_split_batch = false``: with --threads > 1, each
layer's work is shared out instead of the batch being cut into parts, one per thread),
litert (the upstream .tflite in LiteRT, the reference), torch-cpu (fp32 eager),
torch (CUDA, [pose2d] precision, CUDA graphs), torch-eager (CUDA, no graphs), tensorrt.
The keypoint networks run at each --batches size, the detectors at batch 1 only.
Inputs are real photos resized to the model's input (never zeros). Each cell: warm-up calls, then
timed calls until --repeats or --max-seconds, interleaved across backends so all see the same
machine load; latency percentiles are over those calls and
crops/s = batch / median latency. --frame-people N also times PoseEstimator2D.estimate on a real
photo with at least N people, detector included (the stateless still-image call).
--profile: where ONNX Runtime spends each model's time, per operator type (its own profiler, one
call at batch 1 after warm-up, ``--repeats`` calls): what to optimise in a converted graph.

    python tools/bench_backends.py --profile --models nanodet,movenet-lightning
"""
from __future__ import annotations

import argparse
import dataclasses
import json
import platform
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable

import numpy as np
from tqdm import tqdm

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from realtime.config import REPO_ROOT, Pose2DConfig, load_config  # noqa: E402

CPU_BACKENDS = ("onnxruntime", "litert", "torch-cpu")
GPU_BACKENDS = ("torch", "torch-eager", "tensorrt", "onnxruntime")
SINGLE_BATCH_MODELS = ("movenet-multipose", "nanodet", "centernet", "blazepose-detector")
#: Done-when targets from issue 3.
ORT_VS_LITERT_MAX = 1.5
TORCH_GPU_MIN_CROPS_S = 2000.0
FRAME_MAX_MS = 5.0


@dataclass
class Cell:
    model: str
    backend: str
    batch: int
    precision: str = ""
    p50_ms: float = float("nan")
    p95_ms: float = float("nan")
    crops_s: float = float("nan")
    calls: int = 0
    error: str = ""

    def row(self) -> list[str]:
        if self.error:
            return [self.model, self.backend, self.precision, str(self.batch), "-", "-", "-", self.error]
        return [self.model, self.backend, self.precision, str(self.batch), f"{self.p50_ms:.2f}",
                f"{self.p95_ms:.2f}", f"{self.crops_s:.0f}", ""]


@dataclass
class Report:
    device: str
    versions: dict[str, str]
    threads: int
    cells: list[Cell] = field(default_factory=list)
    frame: dict[str, Any] = field(default_factory=dict)
    checks: dict[str, Any] = field(default_factory=dict)


def shared_dir() -> Path:
    import os

    return Path(os.environ.get("REALTIME_SHARED", REPO_ROOT.parent / "shared"))


def photos() -> list[np.ndarray]:
    """Real photos (BGR) from ../shared; random images only where none are present."""
    import cv2

    images = [cv2.imread(str(p)) for p in sorted((shared_dir() / "data/images/photos").glob("*"))]
    images = [im for im in images if im is not None]
    if images:
        return images
    rng = np.random.default_rng(0)
    return [rng.integers(0, 256, (480, 640, 3), dtype=np.uint8) for _ in range(4)]


def crops(shape: tuple[int, int, int], n: int, images: list[np.ndarray]) -> np.ndarray:
    """``n`` crops of the model's input size, RGB 0..255 float32, cycling through the photos."""
    import cv2

    h, w, _ = shape
    out = [cv2.resize(images[i % len(images)], (w, h))[:, :, ::-1] for i in range(n)]
    return np.ascontiguousarray(np.stack(out), dtype=np.float32)


def time_round_robin(fns: list[Callable[[], Any]], warmup: int, repeats: int, max_seconds: float,
                     ) -> list[np.ndarray]:
    """Per-call wall times in ms for each function, calls interleaved (A B C A B C ...) so that all
    see the same machine load; each call returns host arrays, so it includes its GPU sync."""
    for fn in fns:
        for _ in range(warmup):
            fn()
    times: list[list[float]] = [[] for _ in fns]
    start = time.perf_counter()
    while len(times[0]) < repeats and (len(times[0]) < 3 or time.perf_counter() - start < max_seconds * len(fns)):
        for fn, t in zip(fns, times):
            t0 = time.perf_counter()
            fn()
            t.append((time.perf_counter() - t0) * 1e3)
    return [np.asarray(t) for t in times]


class LiteRT:
    """The upstream .tflite in LiteRT: the reference the converted models are compared with."""

    name = "litert"

    def __init__(self, model: str, config: Pose2DConfig, threads: int) -> None:
        from ai_edge_litert.interpreter import Interpreter

        from realtime.pose2d import models

        self._it = Interpreter(str(models.model_path(model, kind="tflite", config=config)), num_threads=threads)
        self._it.allocate_tensors()
        self._in = self._it.get_input_details()[0]["index"]
        self._outs = [d["index"] for d in self._it.get_output_details()]
        self._batch = 1

    def infer(self, batch: np.ndarray) -> dict[int, np.ndarray]:
        if len(batch) != self._batch:
            self._it.resize_tensor_input(self._in, list(batch.shape))
            self._it.allocate_tensors()
            self._batch = len(batch)
        self._it.set_tensor(self._in, batch)
        self._it.invoke()
        return {i: self._it.get_tensor(i) for i in self._outs}

    def close(self) -> None:
        self._it = None


def open_backend(label: str, model: str, config: Pose2DConfig, threads: int) -> tuple[Any, str]:
    """A loaded backend for a bench label, and the precision it runs in."""
    if label == "litert":
        return LiteRT(model, config, threads), "fp32"
    if label in ("onnxruntime", "onnxruntime-intra"):
        from realtime.pose2d.backends import create_backend

        if label == "onnxruntime-intra":  # each layer's work shared out over the threads, batch whole
            config = dataclasses.replace(config, ort_split_batch=False)
        return create_backend(model, "onnxruntime", config), "fp32"
    if label == "torch-cpu":
        import torch

        from realtime.pose2d.backends.torch_cuda import TorchBackend

        torch.set_num_threads(threads)
        return TorchBackend(model, config, device="cpu"), "fp32"
    if label in ("torch", "torch-eager"):
        from realtime.pose2d.backends.torch_cuda import TorchBackend

        return TorchBackend(model, config, device="cuda", graphs=label == "torch"), config.precision
    if label == "tensorrt":
        from realtime.pose2d.backends.tensorrt import TensorRTBackend

        return TensorRTBackend(model, config), config.precision
    known = sorted(set(CPU_BACKENDS + GPU_BACKENDS + ("onnxruntime-intra",)))
    raise SystemExit(f"unknown backend {label!r} (known: {', '.join(known)})")


def _error(e: Exception) -> str:
    return f"{type(e).__name__}: {e}".splitlines()[0][:240]


def _progress(cell: Cell) -> None:
    """One line per finished cell on stderr, so a run cut short still shows what it measured."""
    print("  " + " ".join(cell.row()).strip(), file=sys.stderr, flush=True)


def bench_model(labels: list[str], model: str, batches: list[int], config: Pose2DConfig,
                args: argparse.Namespace, images: list[np.ndarray]) -> list[Cell]:
    """Every backend on ``model`` at each batch size; backends that fail to load or run get an error cell."""
    from realtime.pose2d import models

    if model in SINGLE_BATCH_MODELS:
        batches = [1]
    shape = tuple(models.model_spec(model).input_shape)
    cells: list[Cell] = []
    loaded: list[tuple[str, Any, str]] = []
    for label in labels:
        try:
            loaded.append((label, *open_backend(label, model, config, args.threads)))
        except Exception as e:  # one unavailable backend must not lose the others' numbers
            cells.append(Cell(model, label, batches[0], error=_error(e)))
            _progress(cells[-1])
    try:
        for b in tqdm(batches, desc=model, unit="batch size", disable=None, leave=False):
            x = models.model_spec(model).normalise(crops(shape, b, images))
            ok = []
            for label, backend, precision in loaded:
                try:
                    backend.infer(x)
                    ok.append((label, backend, precision))
                except Exception as e:
                    cells.append(Cell(model, label, b, precision, error=_error(e)))
                    _progress(cells[-1])
            times = time_round_robin([lambda be=be: be.infer(x) for _, be, _ in ok],
                                     args.warmup, args.repeats, args.max_seconds)
            for (label, _, precision), t in zip(ok, times):
                p50 = float(np.median(t))
                cells.append(Cell(model, label, b, precision, p50, float(np.percentile(t, 95)), b * 1e3 / p50, len(t)))
                _progress(cells[-1])
    finally:
        for _, backend, _ in loaded:
            backend.close()
    order = {label: i for i, label in enumerate(labels)}
    return sorted(cells, key=lambda c: (order[c.backend], c.batch))


def bench_frame(label: str, people: int, config: Pose2DConfig, args: argparse.Namespace) -> dict[str, Any]:
    """Per-frame latency of PoseEstimator2D on a real photo with >= ``people`` people, detector included."""
    import cv2

    try:
        from realtime.pose2d import PoseEstimator2D
    except ImportError as e:
        return {"error": f"PoseEstimator2D is not importable: {e}"}
    path = Path(args.frame) if args.frame else shared_dir() / "data/images/photos/apink1.jpg"
    image = cv2.imread(str(path))
    if image is None:
        return {"error": f"{path}: cannot read the frame image"}
    backend = {"torch-eager": "torch", "torch-cpu": "onnxruntime", "litert": "onnxruntime", "onnxruntime-intra": "onnxruntime"}.get(label, label)
    try:
        est = PoseEstimator2D.create(backend=backend, config=config)
        frame, found = image, len(est.estimate(image))
        while found < people and frame.shape[1] < 4 * image.shape[1]:
            frame = np.concatenate([frame, image], axis=1)  # tile the photo until enough people are in view
            found = len(est.estimate(frame))

        def once() -> None:
            est.estimate(frame)

        t = time_round_robin([once], args.warmup, args.repeats, args.max_seconds)[0]
        timings = dict(est.last_timings)
    except Exception as e:
        return {"backend": backend, "error": _error(e)}
    return {"backend": backend, "image": path.name, "frame_size": [frame.shape[1], frame.shape[0]],
            "people": found, "p50_ms": float(np.median(t)), "p95_ms": float(np.percentile(t, 95)),
            "calls": len(t), "last_timings_ms": timings}


def environment() -> tuple[str, dict[str, str]]:
    versions = {"python": platform.python_version(), "numpy": np.__version__}
    for mod in ("onnxruntime", "torch", "tensorrt", "ai_edge_litert", "cv2"):
        try:
            versions[mod] = __import__(mod).__version__
        except Exception:
            continue
    device = f"CPU: {platform.processor() or platform.machine()}"
    try:
        import torch

        if torch.cuda.is_available():
            device = torch.cuda.get_device_name()
            versions["cuda"] = str(torch.version.cuda)
            versions["cudnn"] = str(torch.backends.cudnn.version())
    except ImportError:
        pass
    return device, versions


def checks(report: Report) -> dict[str, Any]:
    """The issue's done-when criteria that this run's numbers can answer."""
    by = {(c.model, c.backend, c.batch): c for c in report.cells if not c.error}
    out: dict[str, Any] = {}
    for b in sorted({c.batch for c in report.cells if c.model == "cpm"}):
        ort, lite = by.get(("cpm", "onnxruntime", b)), by.get(("cpm", "litert", b))
        if ort and lite:
            ratio = ort.p50_ms / lite.p50_ms
            out[f"cpm_ort_over_litert_b{b}"] = {"ratio": round(ratio, 3), "pass": ratio <= ORT_VS_LITERT_MAX}
    torch64 = by.get(("cpm", "torch", 64))
    if torch64:
        out["cpm_torch_crops_s_b64"] = {"crops_s": round(torch64.crops_s), "pass": torch64.crops_s >= TORCH_GPU_MIN_CROPS_S}
    if "p50_ms" in report.frame:
        out["frame_ms"] = {"people": report.frame["people"], "p50_ms": round(report.frame["p50_ms"], 2),
                           "pass": report.frame["p50_ms"] < FRAME_MAX_MS and report.frame["people"] >= 4}
    return out


def save(report: Report, out: str | None) -> str:
    """The report as one JSON object (checks updated), also written to ``out`` when given."""
    report.checks = checks(report)
    doc = json.dumps({"device": report.device, "versions": report.versions, "threads": report.threads,
                      "results": [_plain(c.__dict__) for c in report.cells], "frame": report.frame,
                      "checks": report.checks}, allow_nan=False, default=str)
    if out:
        Path(out).write_text(doc + "\n", encoding="utf-8")
    return doc


def _plain(d: dict[str, Any]) -> dict[str, Any]:
    return {k: (None if isinstance(v, float) and np.isnan(v) else v) for k, v in d.items()}


def table(report: Report) -> str:
    head = ["model", "backend", "prec", "batch", "p50 ms", "p95 ms", "crops/s", "note"]
    rows = [head] + [c.row() for c in report.cells]
    widths = [max(len(r[i]) for r in rows) for i in range(len(head))]
    lines = [f"device: {report.device}; threads (CPU backends): {report.threads}",
             "versions: " + ", ".join(f"{k} {v}" for k, v in report.versions.items()), ""]
    lines += ["  ".join(v.ljust(w) for v, w in zip(r, widths)).rstrip() for r in rows]
    if report.frame:
        lines += ["", "frame: " + json.dumps(report.frame)]
    for name, c in report.checks.items():
        lines.append(f"check {name}: {json.dumps(c)}")
    return "\n".join(lines)


def profile_ops(model: str, config: Pose2DConfig, threads: int, repeats: int, images: list[np.ndarray]) -> dict:
    """ONNX Runtime's own profile of ``model`` at batch 1: ms per call by operator type, largest first."""
    import tempfile

    import onnxruntime as ort

    from realtime.networks import REGISTRY
    from realtime.pose2d.models import INPUT_NAME, model_path

    spec = REGISTRY[model]
    options = ort.SessionOptions()
    options.intra_op_num_threads = threads
    options.graph_optimization_level = ort.GraphOptimizationLevel.ORT_ENABLE_ALL
    with tempfile.TemporaryDirectory() as tmp:
        options.enable_profiling = True
        options.profile_file_prefix = str(Path(tmp) / model)
        session = ort.InferenceSession(str(model_path(model, "onnx", config)), options,
                                       providers=["CPUExecutionProvider"])
        h, w = spec.input_size
        batch = spec.normalise(crops((h, w, 3), 1, images))
        warmup = 3
        for _ in range(warmup + repeats):
            session.run(None, {INPUT_NAME: batch})
        events = json.loads(Path(session.end_profiling()).read_text())
    runs = sorted(e["ts"] for e in events if e.get("cat") == "Session" and e.get("name") == "model_run")
    timed_from = runs[warmup]                         # the warm-up calls are not counted
    by_op: dict[str, float] = {}
    for e in events:
        if e.get("cat") == "Node" and e["name"].endswith("_kernel_time") and e["ts"] >= timed_from:
            op = e["args"]["op_name"]
            by_op[op] = by_op.get(op, 0.0) + e["dur"] / 1e3 / repeats
    ops = dict(sorted(by_op.items(), key=lambda kv: -kv[1]))
    return {"model": model, "threads": threads, "calls": repeats, "ms_per_call": sum(ops.values()), "ops_ms": ops}


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--json", action="store_true", help="print one JSON object instead of the table")
    p.add_argument("--backends", help="comma-separated (default: GPU set when CUDA is available, else CPU set)")
    p.add_argument("--models", default="movenet-lightning,movenet-multipose,cpm", help="comma-separated model names")
    p.add_argument("--batches", default="1,4,16,64", help="batch sizes for keypoint models")
    p.add_argument("--threads", type=int, default=1, help="threads for onnxruntime, LiteRT and torch CPU")
    p.add_argument("--warmup", type=int, default=3)
    p.add_argument("--repeats", type=int, default=50, help="at most this many timed calls per cell")
    p.add_argument("--max-seconds", type=float, default=2.0, help="stop a cell after this long (>= 3 calls)")
    p.add_argument("--frame-people", type=int, default=0, help="also time a whole frame with this many people")
    p.add_argument("--frame", help="image for --frame-people (default: ../shared photos/apink1.jpg)")
    p.add_argument("--config", help="config.toml to read [pose2d] from")
    p.add_argument("--out", help="also write the JSON object to this file")
    p.add_argument("--profile", action="store_true", help="ONNX Runtime's time per operator type of each model")
    args = p.parse_args(argv)
    if args.profile:
        config = load_config(args.config).replace("pose2d", ort_threads=args.threads).pose2d
        found = [profile_ops(m.strip(), config, args.threads, args.repeats, photos())
                 for m in args.models.split(",") if m.strip()]
        if args.json:
            print(json.dumps(found))
        for r in [] if args.json else found:
            print(f"{r['model']}: {r['ms_per_call']:.1f} ms a call (ONNX Runtime profiler, {r['threads']} thread(s), "
                  f"{r['calls']} calls)\n" + "\n".join(f"  {op:<20s} {ms:7.2f} ms" for op, ms in list(r["ops_ms"].items())[:10]))
        return 0

    device, versions = environment()
    if args.backends:
        labels = [b.strip() for b in args.backends.split(",") if b.strip()]
    else:
        labels = list(GPU_BACKENDS if "cuda" in versions else CPU_BACKENDS)
    batches = [int(b) for b in args.batches.split(",")]
    # TensorRT's optimisation profile must cover the largest batch measured (max_people is its max)
    config = load_config(args.config).replace("pose2d", ort_threads=args.threads,
                                              max_people=min(64, max(batches))).pose2d
    report = Report(device, versions, args.threads)
    images = photos()
    for model in [m.strip() for m in args.models.split(",") if m.strip()]:
        report.cells += bench_model(labels, model, batches, config, args, images)
        save(report, args.out)  # a run cut short by a time limit keeps what it measured
    if args.frame_people:
        report.frame = bench_frame(labels[0], args.frame_people, config, args)
    doc = save(report, args.out)
    print(doc if args.json else table(report))
    return 0


if __name__ == "__main__":
    sys.exit(main())
