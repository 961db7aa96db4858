"""2D -> 3D lifting accuracy and speed on held-out (test-split) CMU subjects.

Each test pose is seen by ``--views`` seeded random perspective cameras (azimuth all round,
elevation -20..+40 degrees in steps of 5, focal 500-2000 px, 150-600 px tall), and lifted
clean, with Gaussian 2D noise of 2% of the person's height, and with 2 random joints missing.
MPJPE (prediction scaled to the true size first) and PA-MPJPE in mm over the 14 LSP joints for:
the mixture prior (known pitch, searching the default elevations, or wrongly assuming a level
camera), a single Gaussian (K=1,
the paper's baseline; same basis size and 2D noise, trained on the same frames), 1-nearest
neighbour (Chen & Ramanan) and an MLP (Martinez et al.) trained on the same training frames.
Speed: poses/s on one core (OMP/OpenBLAS threads = 1) at batches 1, 16, 1024 and single-pose
latency p50/p99, with known pitch and with the elevation search.

    OMP_NUM_THREADS=1 OPENBLAS_NUM_THREADS=1 python tools/bench_lifting.py [--json]
"""
from __future__ import annotations

import os

os.environ.setdefault("OMP_NUM_THREADS", "1")
os.environ.setdefault("OPENBLAS_NUM_THREADS", "1")

import argparse  # noqa: E402
import json  # noqa: E402
import sys  # noqa: E402
import time  # noqa: E402
from pathlib import Path  # noqa: E402

import numpy as np  # noqa: E402

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))

from realtime.lifting import Lifter, PosePrior  # noqa: E402
from realtime.lifting.baselines import MLPLifter, NearestNeighbourLifter  # noqa: E402
from realtime.lifting.evaluation import add_noise, drop_joints, mpjpe, pa_mpjpe, random_views  # noqa: E402
from realtime.mocap import load_dataset  # noqa: E402

CACHE = REPO / "engines" / "cache"


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
            joints[sel] = lifter.lift(views.keypoints2d[sel], views.confidence[sel]).joints3d
        return joints


def speed(lifter: Lifter, views, batches=(1, 16, 1024), budget_s: float = 3.0) -> dict:
    out = {}
    for batch in batches:
        kp, conf = views.keypoints2d[:batch], views.confidence[:batch]
        lifter.lift(kp, conf)
        times = []
        start = time.perf_counter()
        while time.perf_counter() - start < budget_s or len(times) < 5:
            t = time.perf_counter()
            lifter.lift(kp, conf)
            times.append(time.perf_counter() - t)
        times = np.array(times)
        out[f"batch{batch}_poses_per_s"] = float(batch / np.median(times))
        if batch == 1:
            out["latency_p50_ms"] = float(np.percentile(times, 50) * 1000)
            out["latency_p99_ms"] = float(np.percentile(times, 99) * 1000)
    return out


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--mocap", type=Path, default=REPO.parent / "shared" / "data" / "mocap" / "cmu")
    p.add_argument("--prior", type=Path, default=None, help="pose prior (default: the committed one)")
    p.add_argument("--fps", type=float, default=10.0)
    p.add_argument("--views", type=int, default=2, help="random cameras per test pose")
    p.add_argument("--mlp-steps", type=int, default=800, help="MLP training steps of 256 random views")
    p.add_argument("--no-cache", action="store_true", help="retrain the baselines instead of engines/cache/")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--json", action="store_true")
    args = p.parse_args(argv)
    log = (lambda *a: print(*a, file=sys.stderr)) if args.json else print
    progress = not args.json

    prior = PosePrior.load(args.prior)
    train = load_dataset(args.mocap, fps=args.fps, split="train", progress=progress).joints()
    test_ds = load_dataset(args.mocap, fps=args.fps, split="test", progress=progress)
    test = test_ds.joints()
    log(f"prior K={prior.n_components} J={prior.n_basis}; train {len(train)} poses, "
        f"test {len(test)} poses (subjects {' '.join(test_ds.subjects)}) x {args.views} views")

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

    rng = np.random.default_rng(args.seed)
    views = random_views(np.repeat(test, args.views, axis=0), rng, elevation_step=5.0)
    conditions = {"clean": views, "noise2pct": add_noise(views, 0.02, rng), "missing2": drop_joints(views, 2, rng)}
    searching = Lifter(prior)
    level = Lifter(prior, camera_pitch_deg=0.0)
    methods = {
        "mixture (known pitch)": KnownPitch(prior).lift,
        "mixture (elevation search)": lambda v: searching.lift(v.keypoints2d, v.confidence).joints3d,
        "mixture (pitch assumed 0)": lambda v: level.lift(v.keypoints2d, v.confidence).joints3d,
        "single Gaussian (known pitch)": KnownPitch(single).lift,
        "nearest neighbour": lambda v: nn.lift(v.keypoints2d, v.confidence),
        "MLP (Martinez)": lambda v: mlp.lift(v.keypoints2d, v.confidence),
    }
    accuracy: dict[str, dict[str, dict[str, float]]] = {}
    for name, method in methods.items():
        accuracy[name] = {}
        for cond, v in conditions.items():
            pred = method(v)
            ok = np.isfinite(pred).all((1, 2))
            accuracy[name][cond] = {"mpjpe_mm": float(mpjpe(pred[ok], v.truth[ok]).mean() * 1000),
                                    "pa_mpjpe_mm": float(pa_mpjpe(pred[ok], v.truth[ok]).mean() * 1000),
                                    "valid": float(ok.mean())}
        log(f"  {name}: done")

    pitch = float(np.median(views.elevation_deg))
    timing = {"known pitch": speed(Lifter(prior, camera_pitch_deg=pitch), views),
              "elevation search": speed(searching, views),
              "known pitch, 2 joints missing": speed(Lifter(prior, camera_pitch_deg=pitch),
                                                     conditions["missing2"], batches=(1, 1024))}

    result = {"prior": {"components": prior.n_components, "basis": prior.n_basis, "noise2d": prior.noise2d,
                        "rotations": 80, "elevations_searched": list(searching._phi[::80] * 180 / np.pi)},
              "test_subjects": test_ds.subjects, "test_poses": len(test), "views_per_pose": args.views,
              "accuracy": accuracy, "speed": timing,
              "threads": {k: os.environ.get(k) for k in ("OMP_NUM_THREADS", "OPENBLAS_NUM_THREADS")}}
    if args.json:
        print(json.dumps(result))
        return 0
    print(f"\nAccuracy on {len(views.truth)} views of {len(test)} test poses (mm; MPJPE / PA-MPJPE)")
    print(f"{'method':<32}" + "".join(f"{c:>20}" for c in conditions))
    for name, rows in accuracy.items():
        print(f"{name:<32}" + "".join(f"{r['mpjpe_mm']:>10.1f} /{r['pa_mpjpe_mm']:>7.1f}" for r in rows.values()))
    print("\nSpeed, one core (poses/s; single-pose latency ms)")
    print(f"{'mode':<32}{'batch 1':>10}{'batch 16':>10}{'batch 1024':>12}{'p50 ms':>8}{'p99 ms':>8}")
    for mode, t in timing.items():
        print(f"{mode:<32}{t['batch1_poses_per_s']:>10.0f}{t.get('batch16_poses_per_s', float('nan')):>10.0f}"
              f"{t['batch1024_poses_per_s']:>12.0f}{t['latency_p50_ms']:>8.2f}{t['latency_p99_ms']:>8.2f}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
