"""Tracking and filtering benchmark on synthetic multi-person scenes built from held-out mocap.

    .venv/bin/python tools/bench_tracking.py [--json] [--people 2 4 6 8] [--sequences 6] [--frames 200]
    .venv/bin/python tools/bench_tracking.py --split val --tune   # choose One Euro settings (val subjects)
    .venv/bin/python tools/bench_tracking.py --timing             # tracker time per update only
    .venv/bin/python tools/bench_tracking.py --overlay-video out/ids.mp4 [--video PATH]

Reports, per number of people, IDF1 / MOTA / id switches per 100 frames (realtime.tracking.metrics,
ground truth = people with at least half their keypoints visible, matched at box IoU >= 0.5); the 3D
jitter (mean |x[t+1] - 2 x[t] + x[t-1]| of the root-relative joints, m/s^2) and MPJPE against the
true motion before and after filtering; and the tracker's time per update for 1, 10 and 50 people.
The 3D signal is the real lifter (realtime.lifting) on the noisy 2D when a trained prior loads,
else the true 3D with lifter-like noise (``--signal`` chooses; the output says which).
"""
from __future__ import annotations

import argparse
import json
import math
import sys
import time
from collections import defaultdict
from dataclasses import dataclass, field, replace
from pathlib import Path

import numpy as np
from tqdm import tqdm

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from realtime.config import FilterConfig, TrackingConfig, load_config  # noqa: E402
from realtime.transport.schema import Person  # noqa: E402
from realtime.tracking import TrackFilter, Tracker  # noqa: E402
from realtime.tracking.metrics import MotAccumulator  # noqa: E402
from realtime.tracking.scenes import PELVIS, Noise, Scene, make_scene  # noqa: E402

SHARED = Path(__file__).resolve().parent.parent.parent / "shared"
FPS = 30.0


def walking_clips(root: Path, split: str, min_frames: int = 90, min_speed: float = 0.4) -> list[np.ndarray]:
    """Clips of the split's subjects (30 fps) whose pelvis travels at walking pace."""
    from realtime.mocap import load_dataset
    ds = load_dataset(root, fps=FPS, split=split, progress=False)
    clips = []
    for clip in ds.clips:
        j = clip.joints
        if len(j) < min_frames:
            continue
        travel = np.linalg.norm(j[-1, PELVIS, [0, 2]] - j[0, PELVIS, [0, 2]]) * FPS / len(j)
        if travel >= min_speed:
            clips.append(j)
    if len(clips) < 2:
        raise SystemExit(f"{root}: fewer than 2 walking clips in the {split!r} split ({len(ds.clips)} clips)")
    return clips


# ------------------------------------------------------------------------------------------ 3D signal

@dataclass
class Samples:
    """3D estimates of tracked people, keyed by (true person, track id) so each series is one person."""
    raw: dict = field(default_factory=lambda: defaultdict(dict))     # key -> frame -> (joints, root)
    truth: dict = field(default_factory=lambda: defaultdict(dict))


class NoisySignal:
    """True 3D plus lifter-like errors: 30 mm per joint coordinate, 3 % scale (depth) and 2.5 cm root."""
    name = "true 3D + noise (30 mm joints, 3% root scale)"

    def __init__(self, rng: np.random.Generator) -> None:
        self.rng = rng

    def __call__(self, scene: Scene, dets: list[dict], src: list[int], t: int) -> list:
        out = []
        for p in src:
            if p < 0:
                out.append(None)
                continue
            joints, root = _truth(scene, p, t)
            joints = joints + self.rng.normal(0, 0.03, joints.shape)
            root = root * (1 + self.rng.normal(0, 0.03)) + np.r_[self.rng.normal(0, 0.025, 2), 0.0]
            out.append((joints, root, None))
        return out


class LifterSignal:
    """The real lifter on the noisy 2D; root placed from its scale and translation like the runtime."""
    name = "lifter on noisy 2D"

    def __init__(self, lifter) -> None:
        self.lifter = lifter
        self.prior = lifter.prior
        self.name = f"lifter on noisy 2D (prior fitted on {self.prior.info.get('final') or 'its own subjects'})"

    def __call__(self, scene: Scene, dets: list[dict], src: list[int], t: int) -> list:
        if not dets:
            return []
        kp = np.stack([d.keypoints2d for d in dets])
        conf = np.stack([d.confidence for d in dets])
        res = self.lifter.lift(kp, conf)
        cam = scene.camera
        out = []
        for i in range(len(dets)):
            if not res.valid[i] or src[i] < 0:
                out.append(None)
                continue
            s = res.scale[i]
            u, v = res.translation[i]
            root = np.array([(u - cam.width / 2) / s, -(v - cam.height / 2) / s, -cam.focal / s])
            out.append((res.joints3d[i], root, None))
        return out


def _truth(scene: Scene, p: int, t: int) -> tuple[np.ndarray, np.ndarray]:
    """True root-relative joints in the camera's level frame (as the lifter outputs) and the camera-frame root."""
    cam = scene.joints_cam[p, t]
    pitch = math.radians(scene.camera.pitch_deg)
    c, s = math.cos(pitch), math.sin(pitch)
    level = cam @ np.array([[1, 0, 0], [0, c, s], [0, -s, c]]).T  # undo the camera's downward pitch
    return level - level[PELVIS], cam[PELVIS]


def make_signal(kind: str, rng: np.random.Generator, prior_path: Path | None = None, mocap: Path | None = None):
    if kind in ("auto", "lifter"):
        try:
            from realtime.lifting import Lifter, PosePrior
            from realtime.lifting.evaluation import prior_for_scoring
            prior = PosePrior.load(prior_path)
            if prior_path is None and mocap is not None:   # the shipped prior saw every shared subject
                prior = prior_for_scoring(mocap, prior)
        except Exception as e:  # noqa: BLE001 - any reason the prior is unusable means "no lifter"
            if kind == "lifter":
                raise SystemExit(f"--signal lifter: no usable pose prior ({e})")
            return NoisySignal(rng)
        return LifterSignal(Lifter(prior, camera_pitch_deg=None))
    return NoisySignal(rng)


# ------------------------------------------------------------------------------------------ evaluation

def track_scene(scene: Scene, tracker: Tracker, signal, acc: MotAccumulator, samples: Samples,
                tag: tuple = ()) -> None:
    """Track one scene, scoring into ``acc`` (ids prefixed by ``tag`` so scenes stay apart)."""
    noise = Noise()
    for t in range(scene.n_frames):
        dets, src = scene.detections[t], scene.sources[t]
        ids = tracker.update(t / scene.fps, dets)
        gt_ids, gt_boxes = scene.truth_boxes(t, noise.min_visible)
        hyp = [(tag + (i,), d.bbox) for i, d in zip(ids, dets) if i is not None]
        acc.update([tag + (g,) for g in gt_ids], gt_boxes, [h[0] for h in hyp],
                   np.array([h[1] for h in hyp]).reshape(-1, 4))
        for tid, p, est in zip(ids, src, signal(scene, dets, src, t)):
            if tid is None or p < 0 or est is None:
                continue
            samples.raw[(p, tid)][t] = est
            samples.truth[(p, tid)][t] = _truth(scene, p, t)


def filter_samples(samples: Samples, config: FilterConfig, fps: float) -> dict:
    """Run a TrackFilter over every series in time order (each key is one track id of one person)."""
    out: dict = defaultdict(dict)
    events = sorted((t, key) for key, series in samples.raw.items() for t in series)
    filt = TrackFilter(config)
    for t, key in events:
        joints, root, _ = samples.raw[key][t]
        out[key][t] = filt.update(key, t / fps, joints, root)
    return out


def score_3d(samples: Samples, series: dict, fps: float) -> dict:
    """MPJPE (mm), root error (mm) and jitter (m/s^2, root-relative joints and root) of one set of series."""
    err, root_err, jit, root_jit = [], [], [], []
    for key, frames in series.items():
        truth = samples.truth[key]
        for t, (joints, root, *_) in frames.items():
            tj, tr = truth[t]
            err.append(np.linalg.norm(joints - tj, axis=-1).mean())
            root_err.append(np.linalg.norm(root - tr))
            if t - 1 in frames and t + 1 in frames:
                a = frames[t + 1][0] - 2 * joints + frames[t - 1][0]
                jit.append(np.linalg.norm(a, axis=-1).mean() * fps**2)
                ar = frames[t + 1][1] - 2 * root + frames[t - 1][1]
                root_jit.append(np.linalg.norm(ar) * fps**2)
    return {"mpjpe_mm": 1000 * float(np.mean(err)), "root_error_mm": 1000 * float(np.mean(root_err)),
            "jitter": float(np.mean(jit)), "root_jitter": float(np.mean(root_jit))}


def evaluate(clips: list[np.ndarray], people: list[int], sequences: int, frames: int, seed: int,
             signal_kind: str, tracking_config: TrackingConfig, progress: bool = True,
             prior_path: Path | None = None, mocap: Path | None = None):
    rng = np.random.default_rng(seed)
    signal = make_signal(signal_kind, rng, prior_path, mocap)
    rows, all_samples = [], Samples()
    for n in people:
        acc = MotAccumulator()
        t0 = time.perf_counter()
        for s in tqdm(range(sequences), desc=f"{n} people", unit="sequence", disable=None, leave=False):
            scene = make_scene(clips, n, frames, np.random.default_rng([seed, n, s]), fps=FPS)
            samples = Samples()
            track_scene(scene, Tracker(tracking_config), signal, acc, samples, tag=(s,))
            for key in samples.raw:      # keys must stay apart across sequences
                all_samples.raw[(n, s) + key] = samples.raw[key]
                all_samples.truth[(n, s) + key] = samples.truth[key]
        sc = acc.scores()
        rows.append({"people": n, "sequences": sequences, "frames": sc.frames, "gt": sc.gt,
                     "idf1": sc.idf1, "mota": sc.mota, "id_switches": sc.id_switches,
                     "switches_per_100_frames": sc.switches_per_100_frames,
                     "false_positives": sc.false_positives, "misses": sc.misses})
        if progress:
            print(f"  {n} people: {time.perf_counter() - t0:.1f} s", file=sys.stderr)
    return rows, all_samples, signal


def filtering_report(samples: Samples, config: FilterConfig) -> dict:
    """Scores of the truth, the raw signal, and the filtered signal."""
    return {"truth": score_3d(samples, samples.truth, FPS),
            "raw": score_3d(samples, samples.raw, FPS),
            "joints": score_3d(samples, filter_samples(samples, config, FPS), FPS)}


def tune(samples: Samples, base: FilterConfig) -> tuple[FilterConfig, list[dict]]:
    """Grid search, joints and root apart (their filters are independent): among settings that at
    least halve the jitter without raising the error, the least jitter within 1 mm (joints) or
    10 mm (root) of the lowest error."""
    raw = score_3d(samples, samples.raw, FPS)
    grid = []
    for mc in (0.25, 0.5, 1.0, 2.0, 4.0):
        for beta in (0.0, 0.5, 1.0, 2.0, 5.0, 10.0):
            grid.append({"part": "joints", "min_cutoff": mc, "beta": beta, "root_min_cutoff": base.root_min_cutoff,
                         "root_beta": base.root_beta})
    for mc in (0.1, 0.25, 0.5, 1.0, 2.0):
        for beta in (0.0, 0.25, 0.5, 1.0, 2.0):
            grid.append({"part": "root", "min_cutoff": base.min_cutoff, "beta": base.beta, "root_min_cutoff": mc,
                         "root_beta": beta})
    for g in grid:
        cfg = replace(base, **{k: v for k, v in g.items() if k != "part"})
        g |= score_3d(samples, filter_samples(samples, cfg, FPS), FPS)

    def best(part: str, jitter: str, error: str, tolerance: float) -> dict:
        rows = [g for g in grid if g["part"] == part]
        ok = [g for g in rows if g[jitter] <= 0.5 * raw[jitter] and g[error] <= raw[error]] or rows
        lowest = min(g[error] for g in ok)
        return min((g for g in ok if g[error] <= lowest + tolerance), key=lambda g: g[jitter])
    j = best("joints", "jitter", "mpjpe_mm", 1.0)
    r = best("root", "root_jitter", "root_error_mm", 10.0)
    return replace(base, min_cutoff=j["min_cutoff"], beta=j["beta"], root_min_cutoff=r["root_min_cutoff"],
                   root_beta=r["root_beta"]), grid


# ------------------------------------------------------------------------------------------ timing

def time_tracker(n_people: int, config: TrackingConfig, frames: int = 300, seed: int = 0) -> dict:
    """Microseconds per Tracker.update with ``n_people`` walkers in a grid (after confirmation).

    Wall time per update (median, p95) and the thread's CPU time per update over the whole run
    (what one core spends, less sensitive to other processes sharing the machine)."""
    rng = np.random.default_rng(seed)
    cols = int(math.ceil(math.sqrt(n_people * 2)))
    h = 600 / max(cols / 2, 1) * 0.8
    origin = np.array([[(i % cols + 0.5) * 1280 / cols, (i // cols + 1) * h * 1.1] for i in range(n_people)])
    template = rng.uniform([-0.15, -1.0], [0.15, 0.0], (14, 2)) * h
    velocity = rng.normal(0, 20, (n_people, 2))
    stream = []
    for t in range(frames):
        kp = template + origin[:, None] + velocity[:, None] * t / FPS + rng.normal(0, 0.02 * h, (n_people, 14, 2))
        conf = rng.uniform(0.5, 1, (n_people, 14))
        stream.append([Person(keypoints2d=k, confidence=c, score=float(c.mean()),
                              bbox=np.concatenate([k.min(0), k.max(0)]))
                       for k, c in zip(kp, conf)])
    tracker = Tracker(config)
    warm = 10
    for t in range(warm):
        tracker.update(t / FPS, stream[t])
    wall = []
    c0 = time.thread_time()
    for t in range(warm, frames):
        t0 = time.perf_counter()
        tracker.update(t / FPS, stream[t])
        wall.append(time.perf_counter() - t0)
    cpu = (time.thread_time() - c0) / len(wall)
    wall.sort()
    return {"people": n_people, "cpu_mean_us": 1e6 * cpu, "wall_median_us": 1e6 * wall[len(wall) // 2],
            "wall_p95_us": 1e6 * wall[int(0.95 * len(wall))], "tracks": len(tracker.active_ids)}


# ------------------------------------------------------------------------------------------ overlay

def write_overlay(video: Path, out: Path, max_frames: int, config) -> dict:
    """Run the real 2D estimator and the tracker on a video and draw each person's id and skeleton."""
    import cv2

    from realtime.pose2d import PoseEstimator2D, VideoFollower
    from realtime.skeleton import LIMBS2D

    cap = cv2.VideoCapture(str(video))
    if not cap.isOpened():
        raise SystemExit(f"{video}: cannot open video")
    fps = cap.get(cv2.CAP_PROP_FPS) or FPS
    estimator = PoseEstimator2D.create(config=config.pose2d)
    follower = VideoFollower(estimator)
    tracker = Tracker(config.tracking)
    writer, frames, seen = None, 0, set()
    try:
        while frames < max_frames:
            ok, image = cap.read()
            if not ok:
                break
            people = follower.estimate(image)
            ids = tracker.update(frames / fps, people)
            for person, tid in zip(people, ids):
                colour = (160, 160, 160) if tid is None else \
                    tuple(int(c) for c in np.random.default_rng(tid).integers(64, 256, 3))
                for a, b in LIMBS2D:
                    if person.confidence[a] > 0 and person.confidence[b] > 0:
                        cv2.line(image, tuple(map(int, person.keypoints[a])), tuple(map(int, person.keypoints[b])),
                                 colour, 2, cv2.LINE_AA)
                x0, y0, x1, y1 = map(int, person.bbox)
                cv2.rectangle(image, (x0, y0), (x1, y1), colour, 1)
                cv2.putText(image, "?" if tid is None else str(tid), (x0, max(y0 - 6, 12)),
                            cv2.FONT_HERSHEY_SIMPLEX, 0.8, colour, 2, cv2.LINE_AA)
                if tid is not None:
                    seen.add(tid)
            if writer is None:
                out.parent.mkdir(parents=True, exist_ok=True)
                writer = cv2.VideoWriter(str(out), cv2.VideoWriter_fourcc(*"mp4v"), fps,
                                         (image.shape[1], image.shape[0]))
            writer.write(image)
            frames += 1
    finally:
        cap.release()
        estimator.close()
        if writer is not None:
            writer.release()
    return {"video": str(video), "out": str(out), "frames": frames, "ids": len(seen),
            "backend": estimator.backend}


# ------------------------------------------------------------------------------------------ main

def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--mocap", type=Path, default=SHARED / "data" / "mocap" / "cmu")
    ap.add_argument("--split", default="test", choices=("train", "val", "test"))
    ap.add_argument("--people", type=int, nargs="+", default=[2, 4, 6, 8])
    ap.add_argument("--sequences", type=int, default=6, help="sequences per number of people")
    ap.add_argument("--frames", type=int, default=200, help="frames per sequence (30 fps)")
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--signal", default="auto", choices=("auto", "lifter", "noise"),
                    help="3D signal to filter: the real lifter (auto = when a prior loads) or true 3D + noise")
    ap.add_argument("--prior", type=Path, help="pose prior for the lifter (default: the shipped one, or on the shared "
                                               "CMU set, which it has seen, engines/pose_prior_heldout.npz)")
    ap.add_argument("--tune", action="store_true", help="grid-search One Euro settings (use --split val)")
    ap.add_argument("--overlay-video", type=Path,
                    help="instead of the benchmark: draw track ids on --video (real 2D estimator) into this file")
    ap.add_argument("--video", type=Path, default=SHARED / "data" / "video" / "deepstream_Retail02_short.mp4")
    ap.add_argument("--overlay-frames", type=int, default=300, help="frames of the video to overlay")
    ap.add_argument("--timing", action="store_true", help="only time the tracker (1, 10, 50 people)")
    ap.add_argument("--json", action="store_true", help="print one JSON object instead of tables")
    args = ap.parse_args(argv)

    cfg = load_config()
    if args.overlay_video:
        info = write_overlay(args.video, args.overlay_video, args.overlay_frames, cfg)
        print(json.dumps(info) if args.json else
              f"{info['out']}: {info['frames']} frames of {info['video']} ({info['backend']}), {info['ids']} ids")
        return 0
    if args.timing:
        timing = [time_tracker(n, cfg.tracking) for n in (1, 10, 50)]
        print(json.dumps({"timing": timing}) if args.json else _timing_table(timing))
        return 0
    clips = walking_clips(args.mocap, args.split)
    print(f"{len(clips)} walking clips from the {args.split} split", file=sys.stderr)
    rows, samples, signal = evaluate(clips, args.people, args.sequences, args.frames, args.seed,
                                          args.signal, cfg.tracking, prior_path=args.prior, mocap=args.mocap)
    result = {"split": args.split, "clips": len(clips), "signal": signal.name, "tracking": rows}
    if args.tune:
        best, grid = tune(samples, cfg.filter)
        result["tune"] = {"best": {k: getattr(best, k) for k in ("min_cutoff", "beta", "root_min_cutoff",
                                                                  "root_beta")}, "grid": grid}
        filter_cfg = best
    else:
        filter_cfg = cfg.filter
    result["filter"] = filtering_report(samples, filter_cfg)
    result["timing"] = [time_tracker(n, cfg.tracking) for n in (1, 10, 50)]

    if args.json:
        print(json.dumps(result, indent=None))
        return 0
    print(f"\nTracking ({args.split} split, {len(clips)} walking clips, {args.frames} frames x "
          f"{args.sequences} sequences each, 30 fps)")
    print(f"{'people':>6} {'IDF1':>6} {'MOTA':>6} {'IDsw':>5} {'IDsw/100f':>9} {'FP':>5} {'FN':>6} {'GT':>6}")
    for r in rows:
        print(f"{r['people']:>6} {r['idf1']:>6.3f} {r['mota']:>6.3f} {r['id_switches']:>5} "
              f"{r['switches_per_100_frames']:>9.2f} {r['false_positives']:>5} {r['misses']:>6} {r['gt']:>6}")
    f = result["filter"]
    print(f"\nFiltering ({signal.name}; One Euro min_cutoff={filter_cfg.min_cutoff} beta={filter_cfg.beta}, "
          f"root {filter_cfg.root_min_cutoff}/{filter_cfg.root_beta})")
    print(f"{'':>22} {'jitter m/s2':>11} {'root jitter':>11} {'MPJPE mm':>9} {'root err mm':>11}")
    for name, s in f.items():
        name = {"joints": "One Euro, joints"}.get(name, name)
        print(f"{name:>22} {s['jitter']:>11.2f} {s['root_jitter']:>11.2f} {s['mpjpe_mm']:>9.1f} "
              f"{s['root_error_mm']:>11.1f}")
    if args.tune:
        print(f"\nbest on {args.split}: {result['tune']['best']}")
    print("\n" + _timing_table(result["timing"]))
    return 0


def _timing_table(timing: list[dict]) -> str:
    lines = ["Tracker time per update (one thread)",
             f"{'people':>6} {'tracks':>6} {'CPU mean us':>11} {'wall median us':>14} {'wall p95 us':>11}"]
    lines += [f"{r['people']:>6} {r['tracks']:>6} {r['cpu_mean_us']:>11.0f} {r['wall_median_us']:>14.0f} "
              f"{r['wall_p95_us']:>11.0f}" for r in timing]
    return "\n".join(lines)


if __name__ == "__main__":
    sys.exit(main())
