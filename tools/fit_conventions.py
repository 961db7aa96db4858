"""Fit the keypoint conventions (realtime/lifting/conventions.py) of the 3D datasets and the 2D models.

* A dataset's convention (Human3.6M, MPI-INF-3DHP: where its skeleton puts hips, shoulders, neck,
  head top): its annotated frames' proportions against the mocap training poses'.
* A 2D model's: its keypoints on the annotated frames (whole pipeline, ``bench_lifting.pipeline_keypoints``,
  cached) against the frames' 3D ground truth projected by their cameras and mapped back to mocap
  joints through the dataset's convention, by least squares in 2D.

``--frames`` picks the frames fitted on (``all``, ``h36m``, ``mpi_inf_3dhp``); the table printed is
``realtime.lifting.conventions.FITTED``'s format.

    python tools/fit_conventions.py [--frames all] [--models movenet-lightning ...]
"""
from __future__ import annotations

import os

os.environ.setdefault("OMP_NUM_THREADS", "1")
os.environ.setdefault("OPENBLAS_NUM_THREADS", "1")

import argparse  # noqa: E402
import json  # noqa: E402
import sys  # noqa: E402
from pathlib import Path  # noqa: E402

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))
sys.path.insert(0, str(REPO / "tools"))

from bench_lifting import ANNOTATED, CACHE, REAL_MODELS, pipeline_keypoints  # noqa: E402
from realtime.pose2d.annotated3d import dataset_convention, load_annotated3d, model_convention  # noqa: E402
from realtime.lifting.conventions import parameters_of  # noqa: E402
from realtime.mocap import load_dataset  # noqa: E402


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--mocap", type=Path, default=REPO.parent / "shared" / "data" / "mocap" / "cmu")
    p.add_argument("--annotated", type=Path, default=ANNOTATED)
    p.add_argument("--frames", choices=("all", "h36m", "mpi_inf_3dhp"), default="all")
    p.add_argument("--models", nargs="*", default=list(REAL_MODELS))
    p.add_argument("--backend", default="onnxruntime")
    p.add_argument("--json", action="store_true")
    args = p.parse_args(argv)
    mocap = load_dataset(args.mocap, fps=10.0, split="train", progress=False).joints()
    every = load_annotated3d(args.annotated)
    frames = [f for f in every if args.frames in ("all", f.dataset)]
    # the datasets' conventions come from all their frames: a fold's model fit needs its own dataset's
    datasets = {d: dataset_convention([f for f in every if f.dataset == d], mocap, d)
                for d in sorted({f.dataset for f in frames})}
    table = {name: parameters_of(c) for name, c in datasets.items()}
    index = [every.index(f) for f in frames]
    for model in args.models:
        kp, conf = pipeline_keypoints(every, model, args.backend, CACHE)
        table[model] = parameters_of(model_convention(frames, kp[index], conf[index], datasets, model))
    if args.json:
        print(json.dumps(table))
        return 0
    print(f"# python tools/fit_conventions.py --frames {args.frames}  ({len(frames)} frames, "
          f"{len(mocap)} mocap training poses)")
    for name, params in table.items():
        print(f'    "{name}": dict(' + ", ".join(f"{k}={v:.3f}" for k, v in params.items()) + "),")
    return 0


if __name__ == "__main__":
    sys.exit(main())
