"""2D accuracy and latency: our keypoint models against the upstream networks run in LiteRT.

Accuracy uses the annotated images in ../shared/data/images/annotated with ground-truth boxes (the
box of each person's annotated joints), so the detector does not enter it: PCK at 0.2 of the box
diagonal and mean pixel error, per LSP-14 joint and overall. Every model sees the same crops through
the same PoseEstimator2D code; only the network and its backend differ, which makes "our CPM in ONNX
Runtime" vs "upstream CPM in LiteRT" a parity check of the converted model. MoveNet has no neck or
head top, so it is scored on the 12 limb joints ("body12") only.

Latency: full frames through PoseEstimator2D (detector included) with 1, 4 and 10 people, made by
tiling a real photo of one person, and the detector alone.

``--refine``: the paper's 3D -> 2D feedback (realtime/pose2d/refine.py) on the CPM's maps of the same
ground-truth crops, for several fusion weights, in the paper's form (one lift of all joints) and
leave-one-out. The 16 people are split by source: the weight is chosen on one half (LSP + MPII, or
Human3.6M + MPI-INF-3DHP) and reported on the other, both ways round. Also the CPM's input channel
order (RGB vs BGR) on the same crops, and the demo video: people per frame and per-person cost with
and without the feedback (``--video-frames``; ``--draw DIR`` writes a few frames with keypoints).

``--video N``: only the real-time check on the first N frames of the 1080p demo video with the default
configuration on ONNX Runtime (1 thread): ``estimate()`` p50/p95 per frame, each phase's p50, detector
runs, people per frame and their mean score and keypoint confidence; ``--video-repeats R`` runs the
frames R times back to back and reports the median run (another process may share the CPU).

    python tools/bench_2d.py [--json] [--shared ../shared] [--repeats 20] [--refine [--video-frames 150]]
    python tools/bench_2d.py --video 300 [--video-repeats 3] [--pose2d detect_every=5 ...] [--json]
"""
from __future__ import annotations

import argparse
import dataclasses
import json
import math
import os
import sys
import time
import tomllib
from dataclasses import dataclass
from pathlib import Path

import cv2
import numpy as np

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))

from realtime.capture import video_frames  # noqa: E402
from realtime.config import Config, Pose2DConfig  # noqa: E402
from realtime.pose2d.crops import box_crop, warp  # noqa: E402
from realtime.pose2d.estimator import MODELS, PoseEstimator2D  # noqa: E402
from realtime.pose2d.detector import PersonDetector  # noqa: E402
from realtime.pose2d.decode import decode_belief_maps, map_to_crop  # noqa: E402
from realtime.pose2d.images import load_image  # noqa: E402
from realtime.pose2d.landmarks import coco_to_lsp14  # noqa: E402
from realtime.pose2d.refine import BeliefRefiner  # noqa: E402
from realtime.skeleton import LIMBS2D, LSP14  # noqa: E402

PCK_ALPHA = 0.2
BODY12 = [i for i, n in enumerate(LSP14) if n not in ("head_top", "neck")]

#: Each dataset's joint index for each LSP-14 joint (None: the dataset has no such joint).
LSP_ORDER = ("r_ankle", "r_knee", "r_hip", "l_hip", "l_knee", "l_ankle", "r_wrist", "r_elbow", "r_shoulder",
             "l_shoulder", "l_elbow", "l_wrist", "neck", "head_top")
MPII = {"head_top": 9, "neck": 8, "r_shoulder": 12, "r_elbow": 11, "r_wrist": 10, "l_shoulder": 13,
        "l_elbow": 14, "l_wrist": 15, "r_hip": 2, "r_knee": 1, "r_ankle": 0, "l_hip": 3, "l_knee": 4, "l_ankle": 5}
#: Human3.6M's 17 joints (mmpose body3d order); its "neck" is nearer the nose than LSP's upper neck.
H36M = {"head_top": 10, "neck": None, "r_shoulder": 14, "r_elbow": 15, "r_wrist": 16, "l_shoulder": 11,
        "l_elbow": 12, "l_wrist": 13, "r_hip": 1, "r_knee": 2, "r_ankle": 3, "l_hip": 4, "l_knee": 5, "l_ankle": 6}
#: MPI-INF-3DHP's 17 test joints begin with LSP-14 in LSP-14 order.
MPI_INF_3DHP = {name: i for i, name in enumerate(LSP14)}


@dataclass(frozen=True)
class Sample:
    dataset: str
    image: Path
    keypoints: np.ndarray   # (14, 2)
    valid: np.ndarray       # (14,) bool

    @property
    def box(self) -> np.ndarray:
        p = self.keypoints[self.valid]
        return np.concatenate([p.min(axis=0), p.max(axis=0)])


def _mapped(joints: np.ndarray, visible: np.ndarray, mapping: dict[str, int | None]) -> tuple[np.ndarray, np.ndarray]:
    kp = np.zeros((14, 2))
    valid = np.zeros(14, bool)
    for j, name in enumerate(LSP14):
        k = mapping[name]
        if k is not None:
            kp[j] = joints[k]
            valid[j] = bool(visible[k])
    return kp, valid


def load_annotated(root: Path) -> list[Sample]:
    """Every annotated person in the mmpose test-data files under ``root``, in LSP-14."""
    import scipy.io

    samples = []
    lsp = scipy.io.loadmat(root / "lsp" / "joints_lsp2000.mat")["joints"]
    lsp_map = {name: LSP_ORDER.index(name) for name in LSP14}
    for image in sorted((root / "lsp").glob("im*.jpg")):
        j = lsp[:, :, int(image.stem[2:]) - 1].T
        samples.append(Sample("lsp", image, *_mapped(j[:, :2], np.ones(14), lsp_map)))
    for entry in json.loads((root / "mpii" / "test_mpii.json").read_text()):
        samples.append(Sample("mpii", root / "mpii" / entry["image"],
                              *_mapped(np.array(entry["joints"]), np.array(entry["joints_vis"]), MPII)))
    for name, files, mapping in (("h36m", ["h36m/test_h36m_body3d.npz"], H36M),
                                 ("mpi_inf_3dhp", ["mpi_inf_3dhp/test_3dhp_test.npz",
                                                   "mpi_inf_3dhp/test_3dhp_train.npz"], MPI_INF_3DHP)):
        for f in files:
            z = np.load(root / f)
            base = (root / f).parent
            for img, part in zip(z["imgname"], z["part"]):
                samples.append(Sample(name, base / str(img), *_mapped(part[:, :2], part[:, 2] > 0, mapping)))
    return samples


def score(samples: list[Sample], predictions: list[np.ndarray], joints: list[int]) -> dict:
    """PCK@0.2 of the box diagonal and mean pixel error, per joint and overall, over ``joints``."""
    hits = np.zeros(14)
    errors = np.zeros(14)
    counts = np.zeros(14)
    for s, pred in zip(samples, predictions):
        diag = float(np.hypot(*(s.box[2:] - s.box[:2])))
        err = np.linalg.norm(pred - s.keypoints, axis=1)
        use = s.valid & np.isin(np.arange(14), joints)
        hits[use] += err[use] <= PCK_ALPHA * diag
        errors[use] += err[use]
        counts[use] += 1
    with np.errstate(invalid="ignore"):
        per_joint = {LSP14[j]: {"pck": 100 * hits[j] / counts[j], "error_px": errors[j] / counts[j]}
                     for j in joints if counts[j]}
    n = counts[joints].sum()
    return {"pck": 100 * hits[joints].sum() / n, "error_px": errors[joints].sum() / n, "joints": int(n),
            "per_joint": per_joint}


class LiteRTModel:
    """An upstream tflite file run in LiteRT behind the Backend interface (one image at a time)."""

    name = "litert"

    def __init__(self, path: Path, threads: int = 1):
        from ai_edge_litert.interpreter import Interpreter

        self.model = path.stem
        self.interpreter = Interpreter(model_path=str(path), num_threads=threads)
        self.interpreter.allocate_tensors()
        self._input = self.interpreter.get_input_details()[0]
        self._outputs = self.interpreter.get_output_details()
        self.input_shape = tuple(int(v) for v in self._input["shape"][1:])
        self.output_names = [o["name"] for o in self._outputs]

    def infer(self, batch: np.ndarray) -> dict[str, np.ndarray]:
        results: dict[str, list[np.ndarray]] = {n: [] for n in self.output_names}
        for x in batch:
            self.interpreter.set_tensor(self._input["index"], x[None].astype(self._input["dtype"]))
            self.interpreter.invoke()
            for o in self._outputs:
                results[o["name"]].append(self.interpreter.get_tensor(o["index"])[0].copy())
        return {k: np.stack(v) for k, v in results.items()}

    def close(self) -> None:
        pass


def tflite_path(models_dir: Path, model: str) -> Path:
    return {"cpm": models_dir / "cpm_pefm" / "model.tflite",
            "detector": models_dir / "blazepose" / "pose_detection.tflite",
            "movenet": models_dir / "movenet" / "lite-model_movenet_singlepose_lightning_tflite_int8_4.tflite",
            }.get(model) or models_dir / "blazepose" / f"pose_landmark_{model.split('-')[1]}.tflite"


def estimator_on(backend, detector_backend, model: str) -> PoseEstimator2D:
    return PoseEstimator2D(backend, PersonDetector(detector_backend), MODELS[model], Pose2DConfig(model=model))


def predict_movenet(net: LiteRTModel, image: np.ndarray, box: np.ndarray) -> np.ndarray:
    """MoveNet on the same square crop as the CPM; its (y, x) outputs are fractions of the crop."""
    crop = box_crop(box, 192, MODELS["cpm"].crop_scale)
    out = next(iter(net.infer(warp(image, [crop])).values()))[0, 0]
    points = crop.to_image(out[:, [1, 0]] * 192 - 0.5)
    kp, _ = coco_to_lsp14(points[None], out[None, :, 2])
    return kp[0]


def accuracy(samples: list[Sample], models_dir: Path, ours: list[str]) -> dict:
    images = {s.image: load_image(s.image) for s in samples}
    detector = LiteRTModel(tflite_path(models_dir, "detector"))
    runs: dict[str, object] = {}
    for model in ours:
        try:
            runs[f"{model} ort"] = PoseEstimator2D.create(
                backend="onnxruntime", model=model, config=Pose2DConfig(model=model, refine_3d=False))
        except (RuntimeError, ValueError, OSError) as e:  # a model not built here is reported, not fatal
            print(f"skipping {model} on onnxruntime: {e}", file=sys.stderr)
    if "cpm" in ours:
        runs["cpm ort + 3D feedback (default)"] = PoseEstimator2D.create(backend="onnxruntime", model="cpm")
    runs["cpm litert"] = estimator_on(LiteRTModel(tflite_path(models_dir, "cpm")), detector, "cpm")
    runs["blazepose-full litert"] = estimator_on(
        LiteRTModel(tflite_path(models_dir, "blazepose-full")), detector, "blazepose-full")
    movenet = LiteRTModel(tflite_path(models_dir, "movenet"))
    results = {}
    for name, est in runs.items():
        preds = [est.estimate_in_boxes(images[s.image], s.box[None])[0].keypoints for s in samples]
        results[name] = {"all14": score(samples, preds, list(range(14))), "body12": score(samples, preds, BODY12)}
    preds = [predict_movenet(movenet, images[s.image], s.box) for s in samples]
    results["movenet litert"] = {"body12": score(samples, preds, BODY12)}
    return results


#: Halves of the annotated people for choosing the fusion weight on one and reporting on the other.
SPLITS = {"lsp+mpii": ("lsp", "mpii"), "h36m+3dhp": ("h36m", "mpi_inf_3dhp")}
REFINE_WEIGHTS = (0.0, 0.1, 0.2, 0.3, 0.5, 0.7)


def cpm_maps(est: PoseEstimator2D, samples: list[Sample], images: dict, bgr: bool = True) -> tuple:
    """The CPM's belief maps of every sample's ground-truth crop (one batch), the crops and ms per crop."""
    crops = [box_crop(s.box, est.model.input_size, est.model.crop_scale) for s in samples]
    batch = np.concatenate([warp(images[s.image], [c]) for s, c in zip(samples, crops)])
    batch = est.model.normalise(batch) if bgr else batch
    est.keypoint_backend.infer(batch)
    t = time.perf_counter()
    (maps,) = est.keypoint_backend.infer(batch).values()
    return maps, crops, (time.perf_counter() - t) * 1e3 / len(samples)


def _scores(samples: list[Sample], crops: list, points: np.ndarray, size: int) -> dict:
    preds = [c.to_image(map_to_crop(p, 96, size)) for c, p in zip(crops, points)]
    out = {}
    for name, sources in {"all": tuple(d for v in SPLITS.values() for d in v), **SPLITS}.items():
        idx = [i for i, s in enumerate(samples) if s.dataset in sources]
        r = score([samples[i] for i in idx], [preds[i] for i in idx], list(range(14)))
        out[name] = {"pck": r["pck"], "error_px": r["error_px"]}
    return out


def _timed_refine(refiner: BeliefRefiner, maps: np.ndarray, crops: list, threshold: float, samples: list[Sample],
                  size: int) -> dict:
    """Scores, and ms per person on a fresh lifter (setting up each missing-joint pattern) and again."""
    times = []
    for _ in range(2):
        t = time.perf_counter()
        out = refiner.refine(maps, crops, threshold)
        times.append((time.perf_counter() - t) * 1e3 / len(maps))
    return {"ms_per_person_first": times[0], "ms_per_person": times[1], **_scores(samples, crops, out.keypoints, size)}


def refine_study(samples: list[Sample], images: dict) -> dict:
    """CPM alone vs CPM + 3D feedback on the annotated people, weight chosen on the other half."""
    est = PoseEstimator2D.create(backend="onnxruntime", config=Pose2DConfig(refine_3d=False))
    threshold = est.config.keypoint_threshold
    maps, crops, cnn_ms = cpm_maps(est, samples, images)
    size = est.model.input_size
    channels = {}
    for name, bgr in (("rgb", False), ("bgr", True)):
        m, _, _ = cpm_maps(est, samples, images, bgr=bgr)
        points, conf = decode_belief_maps(m, threshold)
        channels[name] = {**_scores(samples, crops, points, size)["all"], "mean_confidence": float(conf.mean()),
                          "peaks": decode_belief_maps(m)[1].mean(axis=1)}
    higher = int((channels["bgr"].pop("peaks") > channels["rgb"].pop("peaks")).sum())
    runs = {}
    for mode in ("paper", "leave-one-out"):
        for w in REFINE_WEIGHTS:
            refiner = BeliefRefiner.create(weight=w, leave_one_out=mode == "leave-one-out")
            runs[f"{mode} w={w}"] = {"mode": mode, "weight": w,
                                     **_timed_refine(refiner, maps, crops, threshold, samples, size)}
    from realtime.lifting import Lifter, PosePrior

    full = BeliefRefiner(Lifter(PosePrior.load()), weight=0.3)     # the lifter's default 80 rotations x 5 elevations
    runs["paper w=0.3, 80x5 views"] = {"mode": "paper, full lifter", "weight": 0.3,
                                       **_timed_refine(full, maps, crops, threshold, samples, size)}
    chosen = {}
    for pick, report in (("lsp+mpii", "h36m+3dhp"), ("h36m+3dhp", "lsp+mpii")):
        for mode in ("paper", "leave-one-out"):
            cands = [k for k, v in runs.items() if v["mode"] == mode]
            best = max(cands, key=lambda k: (runs[k][pick]["pck"], -runs[k][pick]["error_px"]))
            chosen[f"{mode}: chosen on {pick}, reported on {report}"] = {
                "weight": runs[best]["weight"], "cpm_alone": runs[f"{mode} w=0.0"][report],
                "refined": runs[best][report]}
    return {"cnn_ms_per_crop": cnn_ms, "channels": {**channels, "bgr_higher_peaks": higher, "people": len(samples)},
            "runs": runs, "chosen": chosen}


def video_study(path: Path, frames: int, draw: Path | None) -> dict:
    """People per frame on the demo video with the default pipeline, with and without the feedback, and
    as the CPM was set up before (RGB input, person_score 0.2, no feedback)."""
    out = {}
    for name, refine in (("CPM RGB, score 0.2", None), ("CPM alone", False), ("CPM + 3D feedback", True)):
        config = Pose2DConfig(refine_3d=bool(refine), person_score=0.2 if refine is None else math.nan)
        est = PoseEstimator2D.create(backend="onnxruntime", config=config)
        if refine is None:
            est.model = dataclasses.replace(est.model, bgr=False)
        counts, scores, decode_ms = [], [], []
        for i, frame in enumerate(video_frames(path, frames)):
            people = est.estimate(frame)
            counts.append(len(people))
            scores += [p.score for p in people]
            if people:
                decode_ms.append(est.last_timings["decode"] / len(people))
            if draw is not None and i in (frames // 5, frames // 2, frames - 1):
                draw.mkdir(parents=True, exist_ok=True)
                cv2.imwrite(str(draw / f"video_{'refined' if refine else 'cpm'}_{i}.png"), drawn(frame, people))
        out[name] = {"frames": len(counts), "people_per_frame": float(np.mean(counts)),
                     "frames_without_people": int(np.sum(np.array(counts) == 0)),
                     "mean_score": float(np.mean(scores)) if scores else 0.0,
                     "decode_ms_per_person_p50": float(np.median(decode_ms)) if decode_ms else 0.0,
                     "detector_runs": est.detector_runs}
        est.close()
    return out


def realtime_study(path: Path, frames: int, repeats: int, overrides: dict | None = None) -> dict:
    """``estimate()`` on the first ``frames`` frames of a video with the default configuration, decoded
    beforehand so that only the 2D stage is timed; ``repeats`` passes (state reset in between), the
    median pass by p50 reported, each pass's p50/p95 listed."""
    video = list(video_frames(path, frames))
    config = Config().replace("pose2d", backend="onnxruntime", **(overrides or {})).pose2d
    est = PoseEstimator2D.create(config=config)
    passes = []
    for _ in range(repeats):
        est.reset()
        runs = est.detector_runs
        times, phases, counts, scores, confidences = [], [], [], [], []
        for frame in video:
            t = time.perf_counter()
            people = est.estimate(frame)
            times.append((time.perf_counter() - t) * 1e3)
            phases.append(est.last_timings)
            counts.append(len(people))
            scores += [p.score for p in people]
            confidences += [float(p.confidence.mean()) for p in people]
        passes.append({
            "ms_p50": float(np.median(times)), "ms_p95": float(np.percentile(times, 95)),
            "ms_mean": float(np.mean(times)), "ms_max": float(np.max(times)),
            **{f"{k}_ms_p50": float(np.median([p[k] for p in phases])) for k in phases[0]},
            **{f"{k}_ms_mean": float(np.mean([p[k] for p in phases])) for k in phases[0]},
            "detector_runs": est.detector_runs - runs, "people_per_frame": float(np.mean(counts)),
            "frames_without_people": int(np.sum(np.array(counts) == 0)),
            "mean_score": float(np.mean(scores)) if scores else 0.0,
            "mean_confidence": float(np.mean(confidences)) if confidences else 0.0})
    est.close()
    median = sorted(passes, key=lambda r: r["ms_p50"])[len(passes) // 2]
    return {"video": path.name, "frames": len(video), "repeats": repeats, "overrides": overrides or {}, **median,
            "passes_ms_p50": [r["ms_p50"] for r in passes], "passes_ms_p95": [r["ms_p95"] for r in passes]}


def realtime_table(result: dict) -> str:
    r = result["realtime"]
    phases = ("detect", "crop", "infer", "decode")
    return "\n".join([
        f"PoseEstimator2D.estimate on the first {r['frames']} frames of {r['video']}, "
        f"{' '.join(f'{k}={v}' for k, v in r['overrides'].items()) or 'default config'}, onnxruntime "
        f"1 thread; median of {r['repeats']} passes; {result['cpus']} CPUs, load average "
        f"{result['load_average_1min']:.1f} before, {result['load_average_1min_after']:.1f} after",
        f"estimate ms    p50 {r['ms_p50']:.1f}  p95 {r['ms_p95']:.1f}  mean {r['ms_mean']:.1f}  max {r['ms_max']:.1f}"
        f"   (per pass p50 {', '.join(f'{v:.1f}' for v in r['passes_ms_p50'])};"
        f" p95 {', '.join(f'{v:.1f}' for v in r['passes_ms_p95'])})",
        "phase ms p50   " + "  ".join(f"{k} {r[k + '_ms_p50']:.1f}" for k in phases),
        "phase ms mean  " + "  ".join(f"{k} {r[k + '_ms_mean']:.1f}" for k in phases),
        f"detector runs {r['detector_runs']} of {r['frames']} frames   people/frame {r['people_per_frame']:.2f}   "
        f"frames with nobody {r['frames_without_people']}   mean score {r['mean_score']:.3f}   "
        f"mean keypoint confidence {r['mean_confidence']:.3f}"])


def score_separation(path: Path, step: int = 30, seed: int = 0) -> dict:
    """The CPM's person score (mean confidence) on crops at the detector's people and on random crops
    of the same size away from them, every ``step`` frames of a video: what ``person_score`` separates."""
    from realtime.pose2d.estimator import _detection_box

    est = PoseEstimator2D.create(backend="onnxruntime", config=Pose2DConfig(refine_3d=False))
    rng = np.random.default_rng(seed)
    scores: dict[str, list[float]] = {"people": [], "background": []}
    for i, frame in enumerate(video_frames(path)):
        if i % step:
            continue
        boxes = [_detection_box(d) for d in est.detector.detect(frame)]
        h, w = frame.shape[:2]
        background = []
        while len(background) < 6:
            side = rng.uniform(250, 450)
            c = rng.uniform([side / 2, side / 2], [w - side / 2, h - side / 2])
            if all(not (b[0] - side / 2 < c[0] < b[2] + side / 2 and b[1] - side / 2 < c[1] < b[3] + side / 2)
                   for b in boxes):
                background.append(np.concatenate([c - side / 2, c + side / 2]))
        for name, found in (("people", boxes), ("background", background)):
            if found:
                scores[name] += [p.score for p in est.estimate_in_boxes(frame, np.array(found))]
    est.close()
    people, background = np.array(scores["people"]), np.array(scores["background"])
    return {"people": len(people), "background": len(background),
            "kept": {str(t): {"people": float((people >= t).mean()), "background": float((background >= t).mean())}
                     for t in (0.08, 0.1, 0.12, 0.15, 0.2)}}


def drawn(frame: np.ndarray, people: list) -> np.ndarray:
    """A half-size copy of the frame with each person's skeleton (grey: joints reported missing)."""
    image = frame.copy()
    for p in people:
        k = p.keypoints.astype(int)
        for a, b in LIMBS2D:
            if p.confidence[a] > 0 and p.confidence[b] > 0:
                cv2.line(image, tuple(k[a]), tuple(k[b]), (0, 255, 0), 3)
        for (x, y), c in zip(k, p.confidence):
            cv2.circle(image, (int(x), int(y)), 6, (0, 0, 255) if c > 0 else (128, 128, 128), -1)
        cv2.putText(image, f"{p.score:.2f}", tuple(p.bbox[:2].astype(int)), cv2.FONT_HERSHEY_SIMPLEX, 1.2,
                    (0, 255, 255), 3)
    return cv2.resize(image, (image.shape[1] // 2, image.shape[0] // 2))


def tiled_frame(person: np.ndarray, people: int) -> np.ndarray:
    """A frame with ``people`` copies of one person photo on a grid (for per-person cost)."""
    cols = int(np.ceil(np.sqrt(people)))
    rows = int(np.ceil(people / cols))
    h, w = person.shape[:2]
    frame = np.zeros((rows * h, cols * w, 3), np.uint8)
    for i in range(people):
        r, c = divmod(i, cols)
        frame[r * h:(r + 1) * h, c * w:(c + 1) * w] = person
    return frame


def _median_ms(fn, repeats: int) -> dict:
    times = []
    for _ in range(repeats + 2):
        t = time.perf_counter()
        fn()
        times.append((time.perf_counter() - t) * 1e3)
    return {"ms_p50": float(np.median(times[2:])), "ms_p95": float(np.percentile(times[2:], 95))}


def latency(person: np.ndarray, wide: np.ndarray | None, repeats: int, backend: str) -> dict:
    """Per-frame ms of PoseEstimator2D with 1, 4, 10 people: with the detector (every frame) and
    tracked (crops placed from the last frame); and the detector alone on the person photo and, with
    its tiles, on a wide 1080p frame."""
    out = {}
    h, w = person.shape[:2]
    for people in (1, 4, 10):
        frame = tiled_frame(person, people)
        for mode, every in (("detect", 1), ("tracked", 10_000)):
            est = PoseEstimator2D.create(backend=backend, config=Pose2DConfig(detect_every=every, max_people=16))
            cols = int(np.ceil(np.sqrt(people)))
            boxes = np.array([[c * w, r * h, (c + 1) * w, (r + 1) * h] for r, c in
                              (divmod(i, cols) for i in range(people))], float)
            est.seed(boxes)
            times, found, phases = [], [], []
            for _ in range(repeats + 2):
                t = time.perf_counter()
                found.append(len(est.estimate(frame)))
                times.append((time.perf_counter() - t) * 1e3)
                phases.append(est.last_timings)
            times, phases = times[2:], phases[2:]
            out[f"{people} people, {mode}"] = {
                "ms_p50": float(np.median(times)), "ms_p95": float(np.percentile(times, 95)),
                "people_found": int(np.median(found)),
                **{f"{k}_ms": float(np.median([p[k] for p in phases])) for k in phases[0]}}
            est.close()
    est = PoseEstimator2D.create(backend=backend)
    h, w = person.shape[:2]
    regions = len(est.detector.regions(w, h))
    out[f"detector, {w}x{h}, {regions} input"] = _median_ms(lambda: est.detector.detect(person), repeats)
    if wide is not None:
        h, w = wide.shape[:2]
        regions = len(est.detector.regions(w, h))
        out[f"detector, {w}x{h}, {regions} inputs"] = _median_ms(lambda: est.detector.detect(wide), repeats)
    est.close()
    return out


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--json", action="store_true", help="print one JSON object instead of tables")
    p.add_argument("--shared", type=Path, default=REPO.parent / "shared")
    p.add_argument("--models", default="cpm,blazepose-lite,blazepose-full,blazepose-heavy",
                   help="our models to score (comma-separated)")
    p.add_argument("--backend", default="onnxruntime", help="backend for the latency part")
    p.add_argument("--repeats", type=int, default=20)
    p.add_argument("--skip-latency", action="store_true")
    p.add_argument("--refine", action="store_true", help="only the 3D-feedback, channel-order and video study")
    p.add_argument("--video-frames", type=int, default=150, help="demo-video frames for --refine (0 = none)")
    p.add_argument("--draw", type=Path, help="with --refine: write a few drawn video frames here")
    p.add_argument("--video", type=int, default=0, metavar="N",
                   help="only the real-time check on the first N frames of the demo video")
    p.add_argument("--video-repeats", type=int, default=1, help="passes over the --video frames (median reported)")
    p.add_argument("--pose2d", action="append", default=[], metavar="KEY=VALUE",
                   help="with --video: a [pose2d] setting other than the default (TOML value), repeatable")
    args = p.parse_args(argv)
    if args.video:
        load = os.getloadavg()[0]
        overrides = {k: tomllib.loads(f"v = {v}")["v"] for k, v in (s.split("=", 1) for s in args.pose2d)}
        realtime = realtime_study(args.shared / "data" / "video" / "deepstream_Retail02_short.mp4", args.video,
                                  args.video_repeats, overrides)
        result = {"realtime": realtime, "cpus": os.cpu_count(), "load_average_1min": load,
                  "load_average_1min_after": os.getloadavg()[0]}
        print(json.dumps(result) if args.json else realtime_table(result))
        return 0
    samples = load_annotated(args.shared / "data" / "images" / "annotated")
    if args.refine:
        images = {s.image: load_image(s.image) for s in samples}
        result = {"samples": len(samples), "pck_alpha": PCK_ALPHA, "refine": refine_study(samples, images)}
        if args.video_frames:
            video = args.shared / "data" / "video" / "deepstream_Retail02_short.mp4"
            result["video"] = video_study(video, args.video_frames, args.draw)
            result["person_score"] = score_separation(video)
        result["cpus"] = os.cpu_count()
        result["load_average_1min"] = os.getloadavg()[0]
        print(json.dumps(result) if args.json else refine_tables(result))
        return 0
    result = {"samples": len(samples), "pck_alpha": PCK_ALPHA,
              "accuracy": accuracy(samples, args.shared / "models", args.models.split(","))}
    if not args.skip_latency:
        person = load_image(args.shared / "data" / "images" / "photos" / "p1.jpg")
        wide = next(video_frames(args.shared / "data" / "video" / "deepstream_Retail02_short.mp4", 1))
        result["latency_backend"] = args.backend
        result["latency"] = latency(person, wide, args.repeats, args.backend)
        result["cpus"] = os.cpu_count()
        result["load_average_1min"] = os.getloadavg()[0]
    if args.json:
        print(json.dumps(result))
    else:
        print_tables(result)
    return 0


def refine_tables(result: dict) -> str:
    r = result["refine"]
    lines = [f"3D feedback on the CPM's maps: {result['samples']} annotated people, ground-truth boxes, "
             f"PCK@{result['pck_alpha']}, 14 joints (BGR input, threshold as configured)",
             f"{'run':24s} {'ms/p 1st':>9s} {'ms/p 2nd':>9s} " + " ".join(f"{k + ' PCK':>15s} {'err px':>7s}" for k in
                                                        ("all", *SPLITS))]
    for name, v in r["runs"].items():
        lines.append(f"{name:24s} {v['ms_per_person_first']:9.2f} {v['ms_per_person']:9.2f} "
                     + " ".join(f"{v[k]['pck']:15.1f} {v[k]['error_px']:7.1f}" for k in ("all", *SPLITS)))
    lines.append(f"(the CPM itself: {r['cnn_ms_per_crop']:.2f} ms per crop in this batch, onnxruntime; "
                 f"{result['cpus']} CPUs, load average {result['load_average_1min']:.1f})")
    lines.append("\nWeight chosen on one half, reported on the other (PCK / err px)")
    for name, v in r["chosen"].items():
        a, b = v["cpm_alone"], v["refined"]
        lines.append(f"{name:58s} w={v['weight']:<4} CPM alone {a['pck']:5.1f} / {a['error_px']:5.1f}"
                     f"   refined {b['pck']:5.1f} / {b['error_px']:5.1f}")
    c = r["channels"]
    lines.append(f"\nCPM input channel order, same crops: RGB PCK {c['rgb']['pck']:.1f} err "
                 f"{c['rgb']['error_px']:.1f} "
                 f"mean conf {c['rgb']['mean_confidence']:.3f} | BGR PCK {c['bgr']['pck']:.1f} err "
                 f"{c['bgr']['error_px']:.1f} mean conf {c['bgr']['mean_confidence']:.3f} | higher mean peak with BGR "
                 f"for {c['bgr_higher_peaks']} of {c['people']} people")
    if "video" in result:
        lines.append("\nDemo video (deepstream_Retail02_short.mp4), default pipeline on onnxruntime")
        for name, v in result["video"].items():
            lines.append(f"{name:20s} frames {v['frames']}  people/frame {v['people_per_frame']:.2f}  "
                         f"frames with nobody {v['frames_without_people']}  mean score {v['mean_score']:.3f}  "
                         f"decode+refine ms/person p50 {v['decode_ms_per_person_p50']:.2f}  "
                         f"detector runs {v['detector_runs']}")
    if "person_score" in result:
        sep = result["person_score"]
        lines.append(f"\nCPM person score on the demo video: {sep['people']} crops at detections vs "
                     f"{sep['background']} random crops away from them; fraction kept at each person_score")
        for t, v in sep["kept"].items():
            lines.append(f"  person_score {t:5s} detections {v['people']:.2f}  background {v['background']:.2f}")
    return "\n".join(lines)


def print_tables(result: dict) -> None:
    acc = result["accuracy"]
    print(f"Accuracy on {result['samples']} annotated people, ground-truth boxes, "
          f"PCK@{result['pck_alpha']} of box diagonal")
    print("(ort = our converted model in ONNX Runtime; litert = the upstream tflite in LiteRT; same crops)")
    print(f"{'model':40s} {'PCK 14':>7s} {'err px':>7s} {'PCK 12':>7s} {'err px':>7s}")
    for name, r in acc.items():
        a14 = r.get("all14")
        c14 = f"{a14['pck']:7.1f} {a14['error_px']:7.1f}" if a14 else f"{'-':>7s} {'-':>7s}"
        print(f"{name:40s} {c14} {r['body12']['pck']:7.1f} {r['body12']['error_px']:7.1f}")
    print("\nPer joint PCK (14 or 12 joints)")
    names = list(acc)
    print(f"{'joint':12s} " + " ".join(f"{n:>21s}" for n in names))
    for joint in LSP14:
        row = []
        for n in names:
            per = (acc[n].get("all14") or acc[n]["body12"])["per_joint"]
            row.append(f"{per[joint]['pck']:21.1f}" if joint in per else f"{'-':>21s}")
        print(f"{joint:12s} " + " ".join(row))
    if "latency" in result:
        print(f"\nPer-frame latency, PoseEstimator2D on {result['latency_backend']} (ms); "
              f"{result['cpus']} CPUs, load average {result['load_average_1min']:.1f} while measuring")
        phases = ("detect", "crop", "infer", "decode")
        print(f"{'frame':32s} {'p50':>7s} {'p95':>7s} {'found':>6s} " + " ".join(f"{k:>7s}" for k in phases))
        for name, r in result["latency"].items():
            print(f"{name:32s} {r['ms_p50']:7.2f} {r['ms_p95']:7.2f} {r.get('people_found', ''):>6} "
                  + " ".join(f"{r[k + '_ms']:7.2f}" if k + "_ms" in r else f"{'':>7s}" for k in phases))


if __name__ == "__main__":
    sys.exit(main())
