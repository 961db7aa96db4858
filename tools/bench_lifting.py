"""2D -> 3D lifting accuracy and speed on held-out mocap subjects (CMU's test split, or ``--mocap DIR``).

Each test pose is seen by ``--views`` seeded random perspective cameras (azimuth all round,
elevation -20..+40 degrees in steps of 5, focal 500-2000 px, 150-600 px tall), and lifted
clean, with Gaussian 2D noise of 2% of the person's height, and with 2 random joints missing.
MPJPE (prediction scaled to the true size first) and PA-MPJPE in mm over the 14 LSP joints for:
the mixture prior (known pitch, searching the default elevations, or wrongly assuming a level
camera), a single Gaussian (K=1,
the paper's baseline; same basis size and 2D noise, trained on the same frames), 1-nearest
neighbour (Chen & Ramanan) and an MLP (Martinez et al.) trained on the same training frames.
Speed: poses/s on one core (OMP/OpenBLAS threads = 1) at batches 1, 16, 1024 and single-pose
latency p50/p99, with known pitch and with the elevation search. Every lift is given its camera's
focal length and principal point (the perspective correction of ``Lifter.lift``, on in the runtime
by ``[lifting] perspective``) unless ``--weak-perspective``.

Real photos (``--part real``): the Human3.6M and MPI-INF-3DHP frames of ../shared/data/images/annotated
(cameras and camera-frame 3D; ``realtime.pose2d.annotated3d`` writes the joint correspondence down),
lifted from their ground-truth 2D and from each 2D model's own detections (``--models``, the
whole 2D pipeline: person detector, crop, keypoint network), with the camera pitch searched or, where
the extrinsics give it (Human3.6M), known. PA-MPJPE and MPJPE (pelvis-aligned, camera frame, the
prior's own metric size: no rescaling) in mm per frame over ``annotated3d.EVAL_JOINTS``.

Stream speed (``--part stream``): the real keypoints of PoseEstimator2D on the first ``--frames`` of
the demo video (missing joints, varied confidences; also the inputs of the 2D stage's 3D feedback
lifter), lifted frame by frame from a cold cache as a runtime worker would, ms per frame.

    OMP_NUM_THREADS=1 OPENBLAS_NUM_THREADS=1 python tools/bench_lifting.py [--part all|mocap|real|stream] [--json]
"""
from __future__ import annotations

import os

os.environ.setdefault("OMP_NUM_THREADS", "1")
os.environ.setdefault("OPENBLAS_NUM_THREADS", "1")

import argparse  # noqa: E402
import dataclasses  # noqa: E402
import itertools  # noqa: E402
import json  # noqa: E402
import sys  # noqa: E402
import time  # noqa: E402
from pathlib import Path  # noqa: E402

import cv2  # noqa: E402
import numpy as np  # noqa: E402

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))

from realtime.lifting import Lifter as _Lifter, LiftingSetup, PosePrior  # noqa: E402
from realtime.lifting.augment import seated  # noqa: E402
from realtime.lifting.baselines import MLPLifter, NearestNeighbourLifter  # noqa: E402
from realtime.lifting.camera import Camera  # noqa: E402
from realtime.pose2d.annotated3d import EVAL_JOINTS, Frame3D, load_annotated3d  # noqa: E402
from realtime.lifting.evaluation import (add_noise, drop_joints, held_out, mpjpe, pa_mpjpe,  # noqa: E402
                                         prior_for_scoring, random_views)
from realtime.mocap import load_dataset  # noqa: E402
from realtime.mocap.categories import CATEGORIES, category  # noqa: E402
from realtime.skeleton import JOINTS3D as JOINTS3D_NAMES, LSP14, level_to_camera  # noqa: E402

#: ``--roll-above-deg``, ``--elevations-deg``, ``--evidence``: every lifter of this run (the Lifter's own default unless given).
LIFTER_OPTIONS: dict = {}


def Lifter(prior, **kw) -> _Lifter:  # noqa: N802 - the class, with this run's options
    return _Lifter(prior, **LIFTER_OPTIONS, **kw)


#: ``--weak-perspective`` clears it: lifts then get no camera, as with ``[lifting] perspective = false``.
PERSPECTIVE = {"on": True}


def lens(focal_px, centre_px) -> dict:
    """``Lifter.lift``'s perspective arguments for this run (none with ``--weak-perspective``)."""
    return {"focal_px": focal_px, "centre_px": centre_px} if PERSPECTIVE["on"] else {}

CACHE = REPO / "engines" / "cache"
DEMO_VIDEO = REPO.parent / "shared" / "data" / "video" / "deepstream_Retail02_short.mp4"
ANNOTATED = REPO.parent / "shared" / "data" / "images" / "annotated"
#: The synthetic category of the mocap part: this many test poses sat down (``augment.seated``), one view each.
SITTING, SITTING_POSES = "sitting (synthetic)", 600
#: 2D models run end to end on the real frames by default (the first is the default model).
REAL_MODELS = ("movenet-lightning", "movenet-thunder", "blazepose-full", "blazepose-heavy", "efficientpose", "cpm")


class KnownPitch:
    """A lifter per camera pitch (multiples of 5 degrees), as a runtime with a calibrated camera would use."""

    def __init__(self, prior: PosePrior):
        self.prior = prior
        self.lifters: dict[float, Lifter] = {}

    def lift(self, views) -> np.ndarray:
        joints = np.empty_like(views.truth)
        for pitch in np.unique(views.elevation_deg):
            sel = views.elevation_deg == pitch
            lifter = self.lifters.setdefault(pitch, Lifter(self.prior, camera_pitch_deg=float(pitch)))
            joints[sel] = lifter.lift(views.keypoints2d[sel], views.confidence[sel],
                                      **lens(views.focal_px[sel], views.centre_px)).joints3d
        return joints


def speed(lifter: Lifter, views, batches=(1, 16, 1024), budget_s: float = 3.0, perspective: bool = False) -> dict:
    out = {}
    for batch in batches:
        take = np.arange(batch) % len(views.keypoints2d)        # a small test set repeated up to the batch
        kp, conf = views.keypoints2d[take], views.confidence[take]
        camera = {"focal_px": views.focal_px[take], "centre_px": views.centre_px} if perspective else {}
        lifter.lift(kp, conf, **camera)
        times = []
        start = time.perf_counter()
        while time.perf_counter() - start < budget_s or len(times) < 5:
            t = time.perf_counter()
            lifter.lift(kp, conf, **camera)
            times.append(time.perf_counter() - t)
        times = np.array(times)
        out[f"batch{batch}_poses_per_s"] = float(batch / np.median(times))
        if batch == 1:
            out["latency_p50_ms"] = float(np.percentile(times, 50) * 1000)
            out["latency_p99_ms"] = float(np.percentile(times, 99) * 1000)
    return out


def camera_pitch_deg(cam_info: Path) -> float:
    """Downward pitch of a camera from the 3x4 projection matrix in a DeepStream camInfo.yml (world z up).

    The third row of P = K [R | t] is the optical axis r3 (up to sign, chosen so depths are positive);
    the pitch is asin(-r3 . up). Read by hand: the file is a two-key YAML list that OpenCV cannot parse.
    """
    lines = cam_info.read_text().splitlines()
    start = next(i for i, line in enumerate(lines) if line.startswith("projectionMatrix_3x4:")) + 1
    p = np.array([float(line.split(maxsplit=1)[1]) for line in lines[start : start + 12]]).reshape(3, 4)
    r3 = p[2, :3] / np.linalg.norm(p[2, :3]) * np.sign(p[2, 3])
    return float(np.degrees(np.arcsin(-r3[2])))


class _Recording:
    """Stands in for the 2D feedback's lifter and keeps every input it is given."""

    def __init__(self, lifter: Lifter, calls: list):
        self.lifter, self.calls = lifter, calls

    def lift(self, keypoints2d: np.ndarray, confidence: np.ndarray, **lens):
        self.calls.append((np.array(keypoints2d, np.float64), np.array(confidence, np.float64)))
        return self.lifter.lift(keypoints2d, confidence, **lens)


def collect_stream(video: Path, n_frames: int, backend: str, out: Path | None) -> dict[str, list]:
    """Per frame: PoseEstimator2D's (kp, conf), and each (kp, conf) its 3D feedback lifted; cached in ``out``."""
    if out is not None and out.exists():
        with np.load(out) as f:
            return {name: [(f[f"{name}_kp"][f[f"{name}_at"] == i], f[f"{name}_conf"][f[f"{name}_at"] == i])
                           for i in range(int(f[f"{name}_n"]))] for name in ("people", "feedback")}
    from realtime.capture import video_frames
    from realtime.config import load_config
    from realtime.pose2d.estimator import PoseEstimator2D
    from realtime.pose2d.video import VideoFollower

    config = load_config().replace("pose2d", refine_3d=True)
    lifting = LiftingSetup.from_config(config.lifting)
    estimator = PoseEstimator2D.create(backend=backend, config=config.pose2d, lifting=lifting)
    feedback: list = []
    refiner = estimator.refiner()
    estimator._refiners[refiner.lifter.camera_pitch_deg] = dataclasses.replace(
        refiner, lifter=_Recording(refiner.lifter, feedback))
    people = []
    follower = VideoFollower(estimator)
    for image in video_frames(video, n_frames):
        found = follower.estimate(image)
        people.append((np.array([p.keypoints for p in found], np.float64).reshape(-1, 14, 2),
                       np.array([p.confidence for p in found], np.float64).reshape(-1, 14)))
    estimator.close()
    streams = {"people": people, "feedback": feedback}
    if out is not None:
        arrays = {}
        for name, frames in streams.items():
            arrays[f"{name}_kp"] = np.concatenate([kp for kp, _ in frames] + [np.zeros((0, 14, 2))])
            arrays[f"{name}_conf"] = np.concatenate([c for _, c in frames] + [np.zeros((0, 14))])
            arrays[f"{name}_at"] = np.repeat(np.arange(len(frames)), [len(kp) for kp, _ in frames])
            arrays[f"{name}_n"] = np.array(len(frames))
        np.savez(out, **arrays)
    return streams


def stream_speed(frames: list, make_lifter, repeats: int, camera: dict | None = None) -> dict:
    """ms per frame lifting a stream from a cold cache; each statistic is the median over repeats.
    ``camera``: ``Lifter.lift``'s perspective arguments (none: weak perspective)."""
    runs = []
    for _ in range(repeats):
        lifter = make_lifter()
        times = []
        for kp, conf in frames:
            if len(kp):
                t = time.perf_counter()
                lifter.lift(kp, conf, **(camera or {}))
                times.append(time.perf_counter() - t)
        runs.append(np.array(times) * 1000)
    stat = lambda f: float(np.median([f(r) for r in runs]))  # noqa: E731
    return {"frames": len(runs[0]), "people_per_frame": float(np.mean([len(kp) for kp, _ in frames if len(kp)])),
            "p50_ms": stat(np.median), "p95_ms": stat(lambda r: np.percentile(r, 95)), "max_ms": stat(np.max),
            "mean_ms": stat(np.mean), "cache": lifter.cache_info()}


def stream_part(args, prior: PosePrior, log) -> dict:
    from realtime.config import load_config
    from realtime.pose2d.refine import ELEVATIONS_DEG, ROTATIONS

    t = time.perf_counter()
    streams = collect_stream(args.video, args.frames, args.backend, args.keypoints)
    log(f"stream: {len(streams['people'])} frames of 2D keypoints in {time.perf_counter() - t:.0f} s")
    config = load_config().lifting
    cam_info = args.video.with_name(args.video.name.replace("_short.mp4", "_camInfo.yml"))
    pitch = camera_pitch_deg(cam_info) if cam_info.exists() else None
    capture = cv2.VideoCapture(str(args.video))
    width, height = capture.get(cv2.CAP_PROP_FRAME_WIDTH), capture.get(cv2.CAP_PROP_FRAME_HEIGHT)
    capture.release()
    camera = lens(Camera().focal_for(int(width)), (width / 2, height / 2))   # as the runtime lifts them
    modes = {
        "default config (80 rotations x 5 elevations)": (streams["people"],
                                                         lambda: LiftingSetup(prior, config).lifter(None)),
        f"demo pitch {pitch or 0.0:.1f} deg (80 rotations)": (streams["people"],
                                                       lambda: Lifter(prior, camera_pitch_deg=pitch)),
        "standalone light feedback lifter (24 rotations x 1)": (streams["feedback"],
                                                  lambda: Lifter(prior, rotations=ROTATIONS,
                                                                 elevations_deg=ELEVATIONS_DEG)),
    }
    return {"video": str(args.video), "camera_pitch_deg": pitch,
            "perspective": bool(camera),
            "modes": {name: stream_speed(frames, make, args.repeats, None if "feedback" in name else camera)
                      for name, (frames, make) in modes.items()
                      if frames and not (pitch is None and "pitch" in name)}}


def pipeline_keypoints(frames: list[Frame3D], model: str, backend: str, cache: Path | None
                       ) -> tuple[np.ndarray, np.ndarray]:
    """Each frame's person as the whole 2D pipeline finds them (default detector, ``model``):
    (N,14,2) px and (N,14) confidences, NaN where no detection matches the annotated person.
    Cached in ``cache`` when given, keyed by model, the frames' names and the 2D stage's code and settings."""
    import hashlib

    from realtime.config import load_config
    from realtime.pose2d import PoseEstimator2D
    from realtime.pose2d.evaluation import match

    config = load_config().replace("pose2d", model=model, refine_3d=False).pose2d
    # the 2D stage's code and settings: a cache written by other code or settings is not read
    code = sorted((REPO / "realtime" / "pose2d").rglob("*.py")) + [REPO / "realtime" / n
                                                                  for n in ("networks.py", "skeleton.py")]
    stamp = hashlib.sha256(repr(config).encode() + b"".join(f.read_bytes() for f in code)).hexdigest()[:16]
    names = [f.name for f in frames]
    file = None if cache is None else cache / f"real2d_{model}_{backend}.npz"
    if file is not None and file.exists():
        with np.load(file) as z:
            if [str(n) for n in z["names"]] == names and "stamp" in z and str(z["stamp"]) == stamp:
                return z["keypoints"], z["confidence"]
    kp = np.full((len(frames), 14, 2), np.nan)
    conf = np.zeros((len(frames), 14))
    with PoseEstimator2D.create(backend=backend, config=config) as estimator:
        for i, frame in enumerate(frames):
            people = estimator.estimate(str(frame.image))
            hit = match(frame.sample(), np.array([p.bbox for p in people]).reshape(-1, 4))
            if hit is not None:
                kp[i], conf[i] = people[hit].keypoints2d, people[hit].confidence
    if file is not None:
        file.parent.mkdir(parents=True, exist_ok=True)
        np.savez(file, names=np.array(names), keypoints=kp, confidence=conf, stamp=np.array(stamp))
    return kp, conf


def lift_frames(prior: PosePrior, frames: list[Frame3D], kp: np.ndarray, conf: np.ndarray, use_pitch: bool,
                lifters: dict, conventions: list | None = None) -> tuple[np.ndarray, np.ndarray]:
    """Lift each frame (one person) with the pitch searched, or its camera's where known and ``use_pitch``,
    and each frame's keypoint convention (None = the mocap joints):
    (N,16,3) joints in the camera's axes (NaN: no pose) and (N,) the elevation used."""
    joints = np.full((len(frames), 16, 3), np.nan)
    elevation = np.full(len(frames), np.nan)
    for i, frame in enumerate(frames):
        if not np.isfinite(kp[i]).all():
            continue
        pitch = frame.pitch_deg if use_pitch else None
        convention = None if conventions is None else conventions[i]
        key = (pitch, None if convention is None else convention.matrix.tobytes())
        if key not in lifters:
            lifters[key] = Lifter(prior, camera_pitch_deg=pitch, convention=convention)
        out = lifters[key].lift(kp[i : i + 1], conf[i : i + 1], **lens(np.mean(frame.focal_px), frame.centre_px))
        if out.valid[0]:
            joints[i] = level_to_camera(out.joints3d, out.elevation_deg)[0]
            elevation[i] = out.elevation_deg[0]
    return joints, elevation


def cross_fitted_conventions(frames: list[Frame3D], inputs: dict, mocap: np.ndarray) -> tuple[list, dict]:
    """Conventions never fitted on the frame they are used on: each frame's dataset convention from
    the other frames of its dataset (leave one out), each 2D model's from the other dataset's frames."""
    from realtime.pose2d.annotated3d import dataset_convention, model_convention

    own = [dataset_convention([g for g in frames if g.dataset == f.dataset and g is not f], mocap, f.dataset)
           for f in frames]
    names = sorted({f.dataset for f in frames})
    whole = {d: dataset_convention([f for f in frames if f.dataset == d], mocap, d) for d in names}
    models: dict[str, list] = {}
    for model, (kp, conf) in inputs.items():
        if model == "ground-truth 2D":
            models[model] = own
            continue
        fitted = {}
        for d in names:
            other = [i for i, f in enumerate(frames) if f.dataset != d]
            fitted[d] = model_convention([frames[i] for i in other], kp[other], conf[other], whole, model)
        models[model] = [fitted[f.dataset] for f in frames]
    return own, models


def _mean_interval(values: np.ndarray, resamples: int = 2000) -> list[float] | None:
    """A 95 % bootstrap interval of the mean over frames (seeded): with 8 frames one frame's luck moves
    the mean by several mm, and the interval says how much a difference between rows can mean."""
    values = values[np.isfinite(values)]
    if len(values) < 2:
        return None
    means = np.random.default_rng(0).choice(values, (resamples, len(values))).mean(1)
    return [float(v) for v in np.percentile(means, [2.5, 97.5])]


def _real_row(joints: np.ndarray, truth: np.ndarray, elevation: np.ndarray | None = None) -> dict:
    """One row of the real-frame table: (N,16,3) predictions (NaN: none) against the (N,16,3) truth."""
    ok = np.isfinite(joints).all((1, 2))
    pa, mp = np.full((2, len(joints)), np.nan)
    pa[ok] = pa_mpjpe(joints[ok], truth[ok], EVAL_JOINTS) * 1000
    mp[ok] = mpjpe(joints[ok], truth[ok], EVAL_JOINTS, rescale=False) * 1000
    return {"pa_mpjpe_mm": pa.tolist(), "mpjpe_mm": mp.tolist(),
            "elevation_deg": [None] * len(joints) if elevation is None else elevation.tolist(),
            "found": int(ok.sum()), "pa_mpjpe_mean_mm": float(np.nanmean(pa)) if ok.any() else None,
            "pa_mpjpe_ci95_mm": _mean_interval(pa),
            "mpjpe_mean_mm": float(np.nanmean(mp)) if ok.any() else None}


def real_part(args, prior: PosePrior, log) -> dict:
    """3D error on the annotated real frames, from their ground-truth 2D and from each 2D model."""
    frames = load_annotated3d(args.annotated)
    truth = np.stack([f.joints3d for f in frames])
    inputs = {"ground-truth 2D": (np.stack([f.keypoints2d for f in frames]),
                                  np.stack([f.visible2d for f in frames]).astype(np.float64))}
    for model in args.models:
        t = time.perf_counter()
        inputs[model] = pipeline_keypoints(frames, model, args.backend, None if args.no_cache else CACHE)
        log(f"real: {model} 2D keypoints in {time.perf_counter() - t:.1f} s")
    lifters: dict = {}
    rows = {}
    variants = [("", None, None)]
    if args.conventions:
        mocap = load_dataset(args.mocap, fps=args.fps, split="train", progress=False).joints()
        own, models = cross_fitted_conventions(frames, inputs, mocap)
        variants.append((", conventions", own, models))
    for name, (kp, conf) in inputs.items():
        for (label, own, models), (mode, use_pitch) in itertools.product(
                variants, (("pitch searched", False), ("known pitch (Human3.6M)", True))):
            joints, elevation = lift_frames(prior, frames, kp, conf, use_pitch, lifters,
                                            None if models is None else models[name])
            if own is not None:                       # the lifted mocap joints where the dataset puts its own
                joints = np.stack([c.apply(j) for c, j in zip(own, joints)])
            rows[f"{name}, {mode}{label}"] = _real_row(joints, truth, elevation)
    # what the choice between the lifter's solutions costs: the best of them (an oracle), and their
    # posterior mean (each weighted by exp(-energy)), the pitch searched
    lifter = Lifter(prior)
    for name, (kp, conf) in inputs.items():
        best, mean = np.full((2, len(frames), 16, 3), np.nan)
        for i in np.flatnonzero(np.isfinite(kp).all((1, 2))):
            joints, energy, elevation = lifter.hypotheses(kp[i], conf[i])
            joints = level_to_camera(joints, elevation)
            ok = np.isfinite(energy) & np.isfinite(joints).all((1, 2))
            if ok.any():
                joints, energy = joints[ok], energy[ok]
                best[i] = joints[np.argmin(pa_mpjpe(joints, np.repeat(truth[i : i + 1], len(joints), 0), EVAL_JOINTS))]
                weights = np.exp(energy.min() - energy)
                mean[i] = np.einsum("h,hlx->lx", weights / weights.sum(), joints)
        rows[f"{name}, the best of the lifter's solutions (oracle)"] = _real_row(best, truth)
        rows[f"{name}, the posterior mean of its solutions"] = _real_row(mean, truth)
    # the prior's own reach: its closest pose to each frame's 3D truth (no 2D, no depth ambiguity)
    rows["the prior's closest pose to the 3D truth (no lift)"] = _real_row(prior.reconstruct(truth), truth)
    result = {"frames": [f.name for f in frames], "datasets": [f.dataset for f in frames],
              "joints": [JOINTS3D_NAMES[j] for j in EVAL_JOINTS], "rows": rows}
    if not args.json:
        print(f"\nReal frames ({len(frames)}): PA-MPJPE / MPJPE mm per frame "
              f"({', '.join(f.name.split('.')[0] for f in frames)}); the mean's PA-MPJPE with its 95 % "
              "bootstrap interval over the frames in brackets")
        for name, r in rows.items():
            cells = " ".join("   --  " if np.isnan(a) else f"{a:3.0f}/{m:3.0f}"
                             for a, m in zip(r["pa_mpjpe_mm"], r["mpjpe_mm"]))
            ci = r["pa_mpjpe_ci95_mm"]
            mean = "--" if r["pa_mpjpe_mean_mm"] is None else (
                f"{r['pa_mpjpe_mean_mm']:.1f}" + (f" [{ci[0]:.0f}-{ci[1]:.0f}]" if ci else "") + f" / {r['mpjpe_mean_mm']:.1f}")
            print(f"{name:<64}{cells}  mean {mean} ({r['found']}/{len(frames)})")
    return result


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--mocap", type=Path, default=REPO.parent / "shared" / "data" / "mocap" / "cmu",
                   help="mocap folder scored (its subjects the prior was not trained on: on the shared CMU "
                        "folder its test split, a folder of other subjects whole)")
    p.add_argument("--train-mocap", type=Path, default=REPO.parent / "shared" / "data" / "mocap" / "cmu",
                   help="mocap folder whose train split trains the baselines")
    p.add_argument("--prior", type=Path, default=None,
                   help="pose prior (default: the shipped one; the mocap part scores the shared CMU set's test "
                        "subjects with engines/pose_prior_heldout.npz, which never saw them)")
    p.add_argument("--fps", type=float, default=10.0)
    p.add_argument("--views", type=int, default=2, help="random cameras per test pose")
    p.add_argument("--mlp-steps", type=int, default=800, help="MLP training steps of 256 random views")
    p.add_argument("--no-cache", action="store_true", help="retrain the baselines instead of engines/cache/")
    p.add_argument("--no-baselines", action="store_true", help="mocap part: the mixture prior only")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--part", choices=("all", "mocap", "real", "stream"), default="all")
    p.add_argument("--annotated", type=Path, default=ANNOTATED, help="the annotated images (real part)")
    p.add_argument("--models", nargs="*", default=list(REAL_MODELS), help="2D models run end to end (real part)")
    p.add_argument("--conventions", action="store_true",
                   help="real part: also with keypoint conventions fitted on the other frames (cross-fitted)")
    p.add_argument("--video", type=Path, default=DEMO_VIDEO, help="video for the stream speed")
    p.add_argument("--frames", type=int, default=100, help="frames of the video for the stream speed")
    p.add_argument("--backend", default="onnxruntime", help="2D backend collecting the stream's keypoints")
    p.add_argument("--keypoints", type=Path, default=None,
                   help="npz cache of the stream's 2D keypoints: read if it exists, else written")
    p.add_argument("--repeats", type=int, default=3, help="stream passes (statistics are their medians)")
    p.add_argument("--roll-above-deg", type=float, default=None,
                   help="lifters' roll_above_deg (180 = never turn; default: the Lifter's)")
    p.add_argument("--elevations-deg", type=float, nargs="+", default=None,
                   help="lifters' elevations searched when the pitch is unknown (default: the Lifter's)")
    p.add_argument("--evidence", action="store_true",
                   help="lifters choose by the evidence (coefficients integrated out), not the MAP fit")
    p.add_argument("--weak-perspective", action="store_true",
                   help="lifts without the camera's focal length (weak perspective only, as with "
                        "[lifting] perspective = false)")
    p.add_argument("--json", action="store_true")
    args = p.parse_args(argv)
    PERSPECTIVE["on"] = not args.weak_perspective
    if args.evidence:
        LIFTER_OPTIONS["evidence"] = True
    if args.roll_above_deg is not None:
        LIFTER_OPTIONS["roll_above_deg"] = args.roll_above_deg
    if args.elevations_deg is not None:
        LIFTER_OPTIONS["elevations_deg"] = args.elevations_deg
    log = (lambda *a: print(*a, file=sys.stderr)) if args.json else print
    prior = PosePrior.load(args.prior)
    result = {}
    if args.part in ("all", "mocap"):
        # the shipped prior has seen every subject of the shared CMU set: its held-out subjects are scored
        # with the same setting fitted without them (a folder of other subjects: the shipped prior itself)
        result = mocap_part(args, prior if args.prior is not None else prior_for_scoring(args.mocap, prior), log)
    if args.part in ("all", "real"):
        result["real"] = real_part(args, prior, log)
    if args.part in ("all", "stream"):
        result["stream"] = stream_part(args, prior, log)
    if args.json:
        print(json.dumps(result))
    elif "stream" in result:
        stream = result["stream"]
        print(f"\nStream: {stream['video']}, Lifter.lift ms per frame from a cold cache, one core")
        print(f"{'mode':<48}{'frames':>7}{'people':>7}{'p50':>7}{'p95':>7}{'max':>7}{'mean':>7}{'patterns':>9}")
        for mode, r in stream["modes"].items():
            print(f"{mode:<48}{r['frames']:>7}{r['people_per_frame']:>7.1f}{r['p50_ms']:>7.2f}{r['p95_ms']:>7.2f}"
                  f"{r['max_ms']:>7.1f}{r['mean_ms']:>7.2f}{r['cache']['misses']:>9}")
    return 0


def baselines(args, prior: PosePrior, train: np.ndarray, progress: bool, log):
    """The single Gaussian, MLP and nearest-neighbour lifters trained on the same frames (cached)."""
    CACHE.mkdir(parents=True, exist_ok=True)
    tag = f"fps{args.fps:g}_J{prior.n_basis}_seed{args.seed}"
    single_path = CACHE / f"prior_single_{tag}.npz"
    if single_path.exists() and not args.no_cache:
        single = PosePrior.load(single_path)
    else:
        t = time.perf_counter()
        single = PosePrior.fit(train, n_components=1, n_basis=prior.n_basis, seed=args.seed,
                               progress=progress).with_info(prior.noise2d, {})
        log(f"single Gaussian trained in {time.perf_counter() - t:.0f} s")
        single.save(single_path)
    mlp_path = CACHE / f"mlp_lifter_fps{args.fps:g}_steps{args.mlp_steps}_seed{args.seed}.pt"
    if mlp_path.exists() and not args.no_cache:
        mlp = MLPLifter.load(mlp_path)
    else:
        t = time.perf_counter()
        mlp = MLPLifter.fit(train, steps=args.mlp_steps, seed=args.seed, progress=progress)
        log(f"MLP trained in {time.perf_counter() - t:.0f} s")
        mlp.save(mlp_path)
    nn = NearestNeighbourLifter.fit(train, seed=args.seed)
    return single, mlp, nn


#: The keypoints a person framed from the chest up shows (a portrait, a webcam at a desk), as visible sets.
UPPER_BODY_SETS = {
    "all 14": LSP14,
    "upper body, 8 (no hips)": ("head_top", "neck", "r_shoulder", "l_shoulder", "r_elbow", "l_elbow", "r_wrist", "l_wrist"),
    "head, neck, shoulders, elbows (6)": ("head_top", "neck", "r_shoulder", "l_shoulder", "r_elbow", "l_elbow"),
    "head, neck, shoulders, a wrist (5)": ("head_top", "neck", "r_shoulder", "l_shoulder", "l_wrist"),
    "head, neck, shoulders (4)": ("head_top", "neck", "r_shoulder", "l_shoulder"),
}
_UPPER3D = tuple(JOINTS3D_NAMES.index(n) for n in ("r_shoulder", "l_shoulder", "r_elbow", "l_elbow", "r_wrist", "l_wrist",
                                             "thorax"))


def upper_body(prior: PosePrior, views) -> dict:
    """People framed from the chest up: each of :data:`UPPER_BODY_SETS` visible (pitch searched, with
    perspective), PA-MPJPE mm over the upper body's 3D joints (shoulders, elbows, wrists, thorax) and
    over the usual 14; against the prior's most weighted mean pose for everyone (no 2D at all), what a
    lift must beat to be worth reporting (``[lifting] min_visible_joints``)."""
    lifter = Lifter(prior, min_visible_joints=2)
    truth = level_to_camera(views.truth, views.elevation_deg)
    rows = {}
    for name, visible in UPPER_BODY_SETS.items():
        confidence = np.zeros_like(views.confidence)
        confidence[:, [LSP14.index(n) for n in visible]] = 1.0
        out = lifter.lift(views.keypoints2d, confidence, **lens(views.focal_px, views.centre_px))
        joints = level_to_camera(out.joints3d, out.elevation_deg)
        ok = out.valid
        rows[name] = {"visible": len(visible), "lifted": float(ok.mean()),
                      "pa_upper_mm": float(pa_mpjpe(joints[ok], truth[ok], _UPPER3D).mean() * 1000),
                      "pa_mm": float(pa_mpjpe(joints[ok], truth[ok]).mean() * 1000)}
    guess = np.repeat(prior.means[np.argmax(prior.weights)][None] * prior.metric_scale, len(truth), axis=0)
    rows["the prior's mean pose (no 2D)"] = {"visible": 0, "lifted": 1.0,
                                             "pa_upper_mm": float(pa_mpjpe(guess, truth, _UPPER3D).mean() * 1000),
                                             "pa_mm": float(pa_mpjpe(guess, truth).mean() * 1000)}
    return rows


def mocap_part(args, prior: PosePrior, log) -> dict:
    """Accuracy on held-out mocap subjects and batch speed; prints its tables unless ``--json``."""
    progress = not args.json
    try:
        test_ds = held_out(args.mocap, prior, args.fps, progress)
    except (ValueError, OSError) as e:
        raise SystemExit(f"error: {e}") from None
    test = test_ds.joints()
    train = (load_dataset(args.train_mocap, fps=args.fps, split="train", progress=progress).joints()
             if not args.no_baselines else None)
    log(f"prior K={prior.n_components} J={prior.n_basis}; baselines' train {'--' if train is None else len(train)} "
        f"poses, test {len(test)} poses (subjects {' '.join(test_ds.subjects)}) x {args.views} views")

    if not args.no_baselines:
        single, mlp, nn = baselines(args, prior, train, progress, log)
    rng = np.random.default_rng(args.seed)
    cats = np.repeat(np.concatenate([[category(c.description)] * c.frames for c in test_ds.clips]), args.views)
    views = random_views(np.repeat(test, args.views, axis=0), rng, elevation_step=5.0)
    conditions = {"clean": views, "noise2pct": add_noise(views, 0.02, rng), "missing2": drop_joints(views, 2, rng)}
    # no clip here sits: test poses sat down (realtime.lifting.augment.seated, its own seeded draw) say
    # whether the prior holds seated people at all; reported as a category of their own, outside "all"
    sit_rng = np.random.default_rng(args.seed + 100)
    sitting = random_views(seated(test, min(SITTING_POSES, len(test)), sit_rng), sit_rng, elevation_step=5.0)
    sitting_conditions = {"clean": sitting, "noise2pct": add_noise(sitting, 0.02, sit_rng),
                          "missing2": drop_joints(sitting, 2, sit_rng)}
    searching = Lifter(prior)
    level = Lifter(prior, camera_pitch_deg=0.0)
    methods = {
        "mixture (known pitch)": KnownPitch(prior).lift,
        "mixture (elevation search)": lambda v: searching.lift(v.keypoints2d, v.confidence,
                                                               **lens(v.focal_px, v.centre_px)).joints3d,
        "mixture (pitch assumed 0)": lambda v: level.lift(v.keypoints2d, v.confidence,
                                                          **lens(v.focal_px, v.centre_px)).joints3d,
    }
    if not args.no_baselines:
        methods.update({"single Gaussian (known pitch)": KnownPitch(single).lift,
                        "nearest neighbour": lambda v: nn.lift(v.keypoints2d, v.confidence),
                        "MLP (Martinez)": lambda v: mlp.lift(v.keypoints2d, v.confidence)})
    accuracy: dict[str, dict[str, dict[str, float]]] = {}
    by_category: dict[str, dict[str, dict[str, float]]] = {}
    present = [c for c in CATEGORIES if (cats == c).any()]
    for name, method in methods.items():
        accuracy[name], by_category[name] = {}, {}
        for cond, v in conditions.items():
            pred = method(v)
            ok = np.isfinite(pred).all((1, 2))
            pa = np.full(len(pred), np.nan)
            pa[ok] = pa_mpjpe(pred[ok], v.truth[ok]) * 1000
            accuracy[name][cond] = {"mpjpe_mm": float(mpjpe(pred[ok], v.truth[ok]).mean() * 1000),
                                    "pa_mpjpe_mm": float(np.nanmean(pa)), "valid": float(ok.mean())}
            by_category[name][cond] = {c: float(np.nanmean(pa[cats == c])) for c in present}
            pred = method(sitting_conditions[cond])
            ok = np.isfinite(pred).all((1, 2))
            by_category[name][cond][SITTING] = float(pa_mpjpe(pred[ok], sitting_conditions[cond].truth[ok]).mean() * 1000)
        log(f"  {name}: done")

    upper = upper_body(prior, views)
    log("  upper body: done")
    pitch = float(np.median(views.elevation_deg))
    timing = {"known pitch": speed(Lifter(prior, camera_pitch_deg=pitch), views),
              "elevation search": speed(searching, views),
              "known pitch, 2 joints missing": speed(Lifter(prior, camera_pitch_deg=pitch),
                                                     conditions["missing2"], batches=(1, 1024))}
    if PERSPECTIVE["on"]:
        timing["known pitch, perspective"] = speed(Lifter(prior, camera_pitch_deg=pitch), views, perspective=True)

    result = {"prior": {"components": prior.n_components, "basis": prior.n_basis, "noise2d": prior.noise2d,
                        "final": prior.info.get("final"), "subjects": prior.info.get("subjects"),
                        "rotations": 80, "elevations_searched": list(searching._phi[::80] * 180 / np.pi)},
              "test_subjects": test_ds.subjects, "test_poses": len(test), "views_per_pose": args.views,
              "accuracy": accuracy, "pa_mpjpe_by_category_mm": by_category, "upper_body": upper,
              "category_views": {**{c: int((cats == c).sum()) for c in present}, SITTING: len(sitting.truth)},
              "speed": timing,
              "threads": {k: os.environ.get(k) for k in ("OMP_NUM_THREADS", "OPENBLAS_NUM_THREADS")}}
    if args.json:
        return result
    print(f"\nAccuracy on {len(views.truth)} views of {len(test)} test poses (mm; MPJPE / PA-MPJPE)")
    print(f"{'method':<32}" + "".join(f"{c:>20}" for c in conditions))
    for name, rows in accuracy.items():
        print(f"{name:<32}" + "".join(f"{r['mpjpe_mm']:>10.1f} /{r['pa_mpjpe_mm']:>7.1f}" for r in rows.values()))
    print("\nPA-MPJPE by category (mm; clean / 2% noise / 2 missing), views: "
          + ", ".join(f"{c} {int((cats == c).sum())}" for c in present) + f", {SITTING} {len(sitting.truth)}")
    print(f"{'method':<32}" + "".join(f"{c:>18}" for c in present) + f"{'sitting*':>18}")
    for name, rows in by_category.items():
        print(f"{name:<32}" + "".join(f"{rows['clean'][c]:>8.1f}/{rows['noise2pct'][c]:.0f}/{rows['missing2'][c]:.0f}"
                                      for c in [*present, SITTING]))
    print(f"* {SITTING}: test poses sat down by realtime.lifting.augment.seated (no clip here sits)")
    print("\nPeople framed from the chest up (clean views, pitch searched): PA-MPJPE mm over the upper body "
          "(shoulders, elbows, wrists, thorax) / all 14")
    for name, r in upper.items():
        print(f"{name:<40}{r['pa_upper_mm']:>8.1f} /{r['pa_mm']:>7.1f}")
    print("\nSpeed, one core (poses/s; single-pose latency ms)")
    print(f"{'mode':<32}{'batch 1':>10}{'batch 16':>10}{'batch 1024':>12}{'p50 ms':>8}{'p99 ms':>8}")
    for mode, t in timing.items():
        print(f"{mode:<32}{t['batch1_poses_per_s']:>10.0f}{t.get('batch16_poses_per_s', float('nan')):>10.0f}"
              f"{t['batch1024_poses_per_s']:>12.0f}{t['latency_p50_ms']:>8.2f}{t['latency_p99_ms']:>8.2f}")
    return result


if __name__ == "__main__":
    sys.exit(main())
