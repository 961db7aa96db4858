"""Train the 3D pose prior (mixture of PPCA) on mocap and choose its size on validation subjects.

The mocap: CMU's files, or BVH of other rigs (Mixamo, Biped, Unreal, Xsens, DAZ names; docs/mocap.md,
"Other BVH sources"), split by performer; ``--subjects`` / ``--val-subjects`` name the sets where the
fixed split (a hash for subjects it does not list) does not suit a folder.

Every (components, basis, balance) setting given is fitted on the training subjects; each is scored
on the validation subjects by its log-likelihood and by lifting: val poses (up to ``--val-poses``
per activity category, ``realtime.mocap.categories``) seen by seeded random cameras (known pitch)
are lifted clean, with 2D noise of 2% of the height, and with 2 joints missing, for each 2D noise
level of the lifter (``--noise2d``). The score is the mean over categories of the mean PA-MPJPE over
the three conditions, so walking (most of the data) does not decide alone. ``--balance N`` caps
each category's training poses at N (a random subset), so walking does not dominate the fit either.
``--augment-arms/-legs/-sitting F`` add F x as many training poses with recombined limbs or sat down
(``realtime.lifting.augment``; docs/lifting.md says what each did).
The best setting is saved -- refitted on training + validation subjects with ``--final train+val``
(its validation numbers are then the train-only model's), or on every subject under ``--mocap`` with
``--final all``: the shipped prior, as a model chosen on validation is refitted on all the data for
use. Test subjects are read only by ``--final all``; the held-out numbers (``tools/bench_lifting.py
--part mocap``) come from the ``train+val`` fit, which never saw them.

    python tools/train_prior.py --mocap ../shared/data/mocap/cmu --out engines/pose_prior.npz \\
        --components 3 5 --basis 8 12 16
"""
from __future__ import annotations

import os

os.environ.setdefault("OMP_NUM_THREADS", "1")
os.environ.setdefault("OPENBLAS_NUM_THREADS", "1")

import argparse  # noqa: E402
import itertools  # noqa: E402
import shlex  # noqa: E402
import sys  # noqa: E402
import time  # noqa: E402
from dataclasses import fields, replace  # noqa: E402
from pathlib import Path  # noqa: E402

import numpy as np  # noqa: E402

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))

from realtime.lifting import Lifter, PosePrior  # noqa: E402
from realtime.lifting.augment import recombine, seated  # noqa: E402
from realtime.lifting.evaluation import Views, add_noise, drop_joints, pa_mpjpe, random_views  # noqa: E402
from realtime.mocap import load_dataset  # noqa: E402
from realtime.mocap.categories import CATEGORIES, category  # noqa: E402
from realtime.mocap.dataset import DEFAULT_CACHE_DIR, Dataset  # noqa: E402

NOISE2D_GRID = (0.02, 0.03, 0.04, 0.05)
#: The synthetic validation category of ``--score-sitting``: val poses sat down.
SITTING = "sitting"


def lift_known_pitch(prior: PosePrior, views, noise2d: float) -> np.ndarray:
    """Lift views whose camera pitch (a multiple of 5 degrees) is known; one lifter per pitch, each
    lift given its camera as the runtime gives it (``[lifting] perspective``)."""
    joints = np.empty_like(views.truth)
    for pitch in np.unique(views.elevation_deg):
        sel = views.elevation_deg == pitch
        out = Lifter(prior, camera_pitch_deg=float(pitch), noise2d=noise2d).lift(
            views.keypoints2d[sel], views.confidence[sel], focal_px=views.focal_px[sel], centre_px=views.centre_px)
        joints[sel] = out.joints3d
    return joints


#: Categories with fewer validation poses than this are not scored on their own.
MIN_CATEGORY_POSES = 100


def rest(args: argparse.Namespace, *used: Dataset) -> Dataset:
    """The clips under ``--mocap`` of subjects in none of the ``used`` datasets (``--final all``)."""
    seen = {s for d in used for s in d.subjects}
    whole = load_dataset(args.mocap, fps=args.fps, progress=not args.no_progress, cache_dir=args.cache)
    return Dataset([c for c in whole.clips if c.subject not in seen], whole.skipped)


def categories_of(ds) -> np.ndarray:
    """The activity category of every pose of a dataset (its clip's)."""
    return np.concatenate([[category(c.description)] * c.frames for c in ds.clips] + [np.array([], str)])


def balanced(poses: np.ndarray, cats: np.ndarray, cap: int, seed: int) -> np.ndarray:
    """At most ``cap`` poses of each category (a seeded random subset); 0 = all poses."""
    if cap <= 0:
        return poses
    rng = np.random.default_rng(seed)
    keep = [np.sort(rng.choice(idx, cap, replace=False)) if len(idx) > cap else idx
            for idx in (np.flatnonzero(cats == c) for c in CATEGORIES)]
    return poses[np.concatenate(keep)]


def augmented(poses: np.ndarray, arms: float, legs: float, seed: int, sitting: float = 0.0) -> np.ndarray:
    """The poses plus ``arms`` x as many with recombined arms, ``legs`` x as many with recombined
    legs and ``sitting`` x as many sat down (realtime.lifting.augment), each drawn from the given poses."""
    rng = np.random.default_rng(seed + 1)
    extra = [recombine(poses, int(round(f * len(poses))), rng, limbs) for limbs, f in (("arms", arms), ("legs", legs))]
    if sitting:       # its own generator: the settings without it draw exactly as before
        extra.append(seated(poses, int(round(sitting * len(poses))), np.random.default_rng(seed + 2)))
    return np.concatenate([poses] + [e.astype(poses.dtype) for e in extra])


def validation_views(poses: np.ndarray, cats: np.ndarray, per_category: int, seed: int, sitting: bool = False):
    """Up to ``per_category`` poses of every category with enough of them, seen by random cameras
    (clean, 2% noise, 2 joints missing), and each view's category; with ``sitting`` also
    ``per_category`` of the poses sat down (``augment.seated``), category :data:`SITTING`."""
    rng = np.random.default_rng(seed)
    present = [c for c in CATEGORIES if (cats == c).any()]
    scored = [c for c in present if (cats == c).sum() >= MIN_CATEGORY_POSES] or present
    chosen = []
    for c in scored:
        idx = np.flatnonzero(cats == c)
        chosen.append(np.sort(rng.choice(idx, per_category, replace=False)) if len(idx) > per_category else idx)
    chosen = np.concatenate(chosen)
    views = random_views(poses[chosen], rng, elevation_step=5.0)
    out_cats = cats[chosen]
    if sitting:      # val poses sat down, from their own generator (the other views draw as before)
        sit_rng = np.random.default_rng(seed + 100)
        sat = random_views(seated(poses, per_category, sit_rng), sit_rng, elevation_step=5.0)
        views = replace(views, **{f.name: np.concatenate([getattr(views, f.name), getattr(sat, f.name)])
                                  for f in fields(Views) if f.name != "centre_px"})     # one image size
        out_cats = np.concatenate([out_cats, np.full(per_category, SITTING)])
    return ({"clean": views, "noise": add_noise(views, 0.02, rng), "missing2": drop_joints(views, 2, rng)},
            out_cats)


def category_errors(prior: PosePrior, conditions: dict, cats: np.ndarray, noise2d: float) -> dict[str, dict[str, float]]:
    """PA-MPJPE (mm) per condition and category."""
    out = {}
    for name, views in conditions.items():
        joints = lift_known_pitch(prior, views, noise2d)
        ok = np.isfinite(joints).all((1, 2))                   # a lift with no plausible solution: left out
        err = np.full(len(joints), np.nan)
        err[ok] = pa_mpjpe(joints[ok], views.truth[ok]) * 1000
        out[name] = {c: float(np.nanmean(err[cats == c])) for c in (*CATEGORIES, SITTING) if (cats == c).any()}
    return out


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
    p.add_argument("--val-poses", type=int, default=400, help="validation poses lifted per category and condition")
    p.add_argument("--balance", type=int, nargs="+", default=[0],
                   help="training poses per category at most (0 = all); each value is a setting to choose from")
    p.add_argument("--augment-arms", type=float, nargs="+", default=[0.0],
                   help="add this many times the training poses with recombined arms "
                        "(realtime.lifting.augment); each value is a setting to choose from")
    p.add_argument("--augment-legs", type=float, nargs="+", default=[0.0],
                   help="the same with recombined legs")
    p.add_argument("--augment-sitting", type=float, nargs="+", default=[0.0],
                   help="the same with poses sat down (on a chair or the floor; no clip here sits)")
    p.add_argument("--score-sitting", action="store_true",
                   help="validation also scores a category of val poses sat down (augment.seated)")
    p.add_argument("--final", choices=("train", "train+val", "all"), default="train",
                   help="fit the chosen setting on these subjects for the saved prior (all: every subject "
                        "under --mocap, the test split too)")
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
    train_cats, val_cats = categories_of(train), categories_of(val)
    print(f"train: {len(train_poses)} poses from subjects {' '.join(train.subjects)}")
    print(f"val:   {len(val_poses)} poses from subjects {' '.join(val.subjects)}")
    conditions, view_cats = validation_views(val_poses, val_cats, args.val_poses, args.seed, args.score_sitting)
    scored = [c for c in (*CATEGORIES, SITTING) if (view_cats == c).any()]
    print("val views per category: " + ", ".join(f"{c} {int((view_cats == c).sum())}" for c in scored))

    command = "python tools/train_prior.py " + shlex.join(
        a.replace(str(REPO.parent), "..") if isinstance(a, str) else a for a in (argv or sys.argv[1:]))
    print(f"{'K':>3} {'J':>3} {'bal':>5} {'arms':>4} {'legs':>4} {'sit':>4} {'noise2d':>7} {'fit s':>6} {'loglik':>7} "
          + " ".join(f"{c[:8]:>8}" for c in scored) + " " + " ".join(f"{c[:8]:>8}" for c in conditions)
          + f" {'score':>6}")
    best: tuple[float, PosePrior, dict] | None = None
    for cap, arms, legs, sit in itertools.product(args.balance, args.augment_arms, args.augment_legs,
                                                  args.augment_sitting):
        poses = augmented(balanced(train_poses, train_cats, cap, args.seed), arms, legs, args.seed, sit)
        for k in args.components:
            for j in args.basis:
                start = time.perf_counter()
                prior = PosePrior.fit(poses, n_components=k, n_basis=j, seed=args.seed, progress=progress)
                fit_s = time.perf_counter() - start
                loglik = float(prior.log_likelihood(conditions["clean"].truth).mean())
                for noise2d in args.noise2d:
                    errors = category_errors(prior, conditions, view_cats, noise2d)
                    per_cat = {c: float(np.mean([errors[n][c] for n in conditions])) for c in scored}
                    per_cond = {n: float(np.mean(list(errors[n].values()))) for n in conditions}
                    score = float(np.mean(list(per_cat.values())))
                    print(f"{k:>3} {j:>3} {cap:>5} {arms:>4.1f} {legs:>4.1f} {sit:>4.2f} {noise2d:>7.3f} {fit_s:>6.1f} {loglik:>7.1f} "
                          + " ".join(f"{per_cat[c]:>8.1f}" for c in scored) + " "
                          + " ".join(f"{per_cond[n]:>8.1f}" for n in conditions) + f" {score:>6.1f}", flush=True)
                    if best is None or score < best[0]:
                        setting = dict(components=k, basis=j, balance=cap, augment_arms=arms, augment_legs=legs,
                                       augment_sitting=sit, noise2d=noise2d)
                        info = dict(command=command, **setting, fps=args.fps, seed=args.seed,
                                    subjects=train.subjects, val_subjects=val.subjects, n_val=len(val_poses),
                                    val_loglik=loglik, val_pa_mpjpe_mm=per_cond, val_category_pa_mpjpe_mm=per_cat,
                                    val_score_mm=score)
                        best = (score, prior.with_info(noise2d, info), setting)
    assert best is not None
    score, prior, setting = best
    print(f"val chose K={setting['components']} J={setting['basis']} balance={setting['balance']} "
          f"augment_arms={setting['augment_arms']} augment_legs={setting['augment_legs']} "
          f"augment_sitting={setting['augment_sitting']} noise2d={setting['noise2d']} (mean over categories {score:.1f} mm)")
    if args.final != "train":
        extra = [rest(args, train, val)] if args.final == "all" else []
        poses = augmented(balanced(np.concatenate([train_poses, val_poses, *(d.joints() for d in extra)]),
                                   np.concatenate([train_cats, val_cats, *(categories_of(d) for d in extra)]),
                                   setting["balance"], args.seed),
                          setting["augment_arms"], setting["augment_legs"], args.seed, setting["augment_sitting"])
        final = PosePrior.fit(poses, n_components=setting["components"], n_basis=setting["basis"], seed=args.seed,
                              progress=progress)
        subjects = sorted({s for d in (train, val, *extra) for s in d.subjects}, key=lambda s: (len(s), s))
        prior = final.with_info(setting["noise2d"], {**prior.info, "subjects": subjects, "final": args.final,
                                                     "n_train": len(poses)})
        print(f"refitted on {args.final}: {len(poses)} poses from subjects {' '.join(subjects)}")
    args.out.parent.mkdir(parents=True, exist_ok=True)
    prior.save(args.out)
    print(f"saved {args.out}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
