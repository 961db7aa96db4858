"""Train the 3D pose prior (mixture of PPCA) on CMU mocap and choose its size on validation subjects.

Every (components, basis) pair given is fitted on the training subjects; each is scored on the
validation subjects by its log-likelihood and by lifting: val poses seen by seeded random
cameras (known pitch) are lifted clean, with 2D noise of 2% of the height, and with 2 joints
missing, for each 2D noise level of the lifter (``--noise2d``). The pair and noise level with the
lowest mean PA-MPJPE over the three conditions is saved. Test subjects are never read.

    python tools/train_prior.py --mocap ../shared/data/mocap/cmu --out engines/pose_prior.npz \\
        --components 3 5 --basis 8 12 16
"""
from __future__ import annotations

import os

os.environ.setdefault("OMP_NUM_THREADS", "1")
os.environ.setdefault("OPENBLAS_NUM_THREADS", "1")

import argparse  # noqa: E402
import shlex  # noqa: E402
import sys  # noqa: E402
import time  # noqa: E402
from pathlib import Path  # noqa: E402

import numpy as np  # noqa: E402

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))

from realtime.lifting import Lifter, PosePrior  # noqa: E402
from realtime.lifting.evaluation import add_noise, drop_joints, pa_mpjpe, random_views  # noqa: E402
from realtime.mocap import load_dataset  # noqa: E402
from realtime.mocap.dataset import DEFAULT_CACHE_DIR  # noqa: E402

NOISE2D_GRID = (0.02, 0.03, 0.04, 0.05)


def lift_known_pitch(prior: PosePrior, views, noise2d: float) -> np.ndarray:
    """Lift views whose camera pitch (a multiple of 5 degrees) is known; one lifter per pitch."""
    joints = np.empty_like(views.truth)
    for pitch in np.unique(views.elevation_deg):
        sel = views.elevation_deg == pitch
        out = Lifter(prior, camera_pitch_deg=float(pitch), noise2d=noise2d).lift(
            views.keypoints2d[sel], views.confidence[sel])
        joints[sel] = out.joints3d
    return joints


def validation_views(poses: np.ndarray, count: int, seed: int):
    rng = np.random.default_rng(seed)
    if len(poses) > count:
        poses = poses[np.sort(rng.choice(len(poses), count, replace=False))]
    views = random_views(poses, rng, elevation_step=5.0)
    return {"clean": views, "noise": add_noise(views, 0.02, rng), "missing2": drop_joints(views, 2, rng)}


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--mocap", type=Path, default=REPO.parent / "shared" / "data" / "mocap" / "cmu")
    p.add_argument("--out", type=Path, default=REPO / "engines" / "pose_prior.npz")
    p.add_argument("--components", type=int, nargs="+", default=[3])
    p.add_argument("--basis", type=int, nargs="+", default=[12])
    p.add_argument("--noise2d", type=float, nargs="+", default=list(NOISE2D_GRID),
                   help="lifter 2D noise levels (model units) to choose from on validation")
    p.add_argument("--fps", type=float, default=10.0, help="subsample mocap to about this frame rate")
    p.add_argument("--subjects", nargs="+", help="training subjects (default: the 'train' split)")
    p.add_argument("--val-subjects", nargs="+", help="validation subjects (default: the 'val' split)")
    p.add_argument("--val-poses", type=int, default=2000, help="validation poses lifted per condition")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--no-progress", action="store_true")
    p.add_argument("--cache", type=Path, default=DEFAULT_CACHE_DIR,
                   help="where parsed mocap clips are kept between runs (default: %(default)s)")
    args = p.parse_args(argv)
    progress = not args.no_progress

    def load(subjects, split):
        ds = load_dataset(args.mocap, fps=args.fps, subjects=subjects, split=None if subjects else split,
                          progress=progress, cache_dir=args.cache)
        for path, reason in ds.skipped:
            print(f"skipped {path}: {reason}", file=sys.stderr)
        if not ds.clips:
            raise SystemExit(f"no {split} clips found under {args.mocap}")
        return ds

    train, val = load(args.subjects, "train"), load(args.val_subjects, "val")
    train_poses, val_poses = train.joints(), val.joints()
    print(f"train: {len(train_poses)} poses from subjects {' '.join(train.subjects)}")
    print(f"val:   {len(val_poses)} poses from subjects {' '.join(val.subjects)}")
    conditions = validation_views(val_poses, args.val_poses, args.seed)

    command = "python tools/train_prior.py " + shlex.join(
        a.replace(str(REPO.parent), "..") if isinstance(a, str) else a for a in (argv or sys.argv[1:]))
    print(f"{'K':>3} {'J':>3} {'noise2d':>7} {'fit s':>6} {'val loglik':>10} "
          + " ".join(f"{c + ' PA mm':>16}" for c in conditions) + f" {'mean':>6}")
    best: tuple[float, PosePrior, float] | None = None
    for k in args.components:
        for j in args.basis:
            start = time.perf_counter()
            prior = PosePrior.fit(train_poses, n_components=k, n_basis=j, seed=args.seed, progress=progress)
            fit_s = time.perf_counter() - start
            loglik = float(prior.log_likelihood(conditions["clean"].truth).mean())
            for noise2d in args.noise2d:
                errors = [float(pa_mpjpe(lift_known_pitch(prior, v, noise2d), v.truth).mean() * 1000)
                          for v in conditions.values()]
                score = float(np.mean(errors))
                print(f"{k:>3} {j:>3} {noise2d:>7.3f} {fit_s:>6.1f} {loglik:>10.2f} "
                      + " ".join(f"{e:>16.1f}" for e in errors) + f" {score:>6.1f}", flush=True)
                if best is None or score < best[0]:
                    info = dict(command=command, components=k, basis=j, noise2d=noise2d, fps=args.fps,
                                seed=args.seed, subjects=train.subjects, val_subjects=val.subjects,
                                n_val=len(val_poses), val_loglik=loglik,
                                val_pa_mpjpe_mm=dict(zip(conditions, errors)))
                    best = (score, prior.with_info(noise2d, info), noise2d)
    assert best is not None
    args.out.parent.mkdir(parents=True, exist_ok=True)
    best[1].save(args.out)
    chosen = best[1].info
    print(f"val chose K={chosen['components']} J={chosen['basis']} noise2d={chosen['noise2d']} "
          f"(mean PA-MPJPE {best[0]:.1f} mm); saved {args.out}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
