"""The int8 calibration table of a CPU network: its activation ranges on real inputs.

``realtime/pose2d/int8.py`` quantises a converted model with this table (``engines/int8_<model>.json``,
committed, package data through the link ``realtime/data/int8_<model>.json``); this tool is how the
table is made, and must be rerun when the model's converter changes (the table records the float32
build it was measured on). The inputs are what the network gets at run time, through the project's
own preprocessing: the detector's regions of the shared photos (``../shared/data/images/photos``)
and of the shop video's second half (frames 300-600, every third; the benchmarks follow its first
280 frames). The annotated photos the 2D benchmarks score stay out of it.

    python tools/calibrate_int8.py [--model nanodet] [--samples 150]
"""
from __future__ import annotations

import argparse
import sys
from dataclasses import replace
from pathlib import Path

import numpy as np

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))

from realtime.capture.source import video_frames  # noqa: E402
from realtime.config import Config  # noqa: E402
from realtime.pose2d import PoseEstimator2D, VideoFollower, load_image  # noqa: E402
from realtime.pose2d.int8 import CALIBRATED, calibrate, save_table  # noqa: E402
from realtime.pose2d.models import INPUT_NAME, model_path, stamp  # noqa: E402
from realtime.networks import REGISTRY  # noqa: E402

SHARED = REPO.parent / "shared"
PHOTOS = SHARED / "data" / "images" / "photos"
VIDEO = SHARED / "data" / "video" / "deepstream_Retail02_short.mp4"


def detector_inputs(model: str) -> list[np.ndarray]:
    """The batches the detector network gets while the float32 pipeline runs on the photos (whole
    image and tiles) and follows people through the video (its regions in turn)."""
    config = replace(Config().pose2d, backend="onnxruntime", detector=model, cpu_int8=False, detector_async=False)
    seen: list[np.ndarray] = []
    with PoseEstimator2D.create(config=config) as est:
        run = est.detector.backend.infer
        est.detector.backend.infer = lambda batch: (seen.append(np.array(batch)), run(batch))[1]
        for path in sorted(PHOTOS.iterdir()):
            if path.suffix.lower() in (".jpg", ".png"):
                est.estimate(load_image(path))
        with VideoFollower(est) as video:
            for i, frame in enumerate(video_frames(VIDEO, 600)):
                if i >= 300 and i % 3 == 0:
                    video.estimate(frame)
    return seen


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--model", default="nanodet", choices=CALIBRATED)
    p.add_argument("--samples", type=int, default=150,
                   help="network inputs used, spread evenly over all seen (the histograms grow with them)")
    args = p.parse_args(argv)
    for need in (PHOTOS, VIDEO):
        if not need.exists():
            print(f"error: {need} is missing (the shared data beside the checkout)", file=sys.stderr)
            return 2
    batches = np.concatenate(detector_inputs(args.model))
    picked = batches[np.linspace(0, len(batches) - 1, min(args.samples, len(batches))).astype(int)]
    print(f"{args.model}: {len(batches)} network inputs seen, {len(picked)} used", file=sys.stderr)
    config = replace(Config().pose2d, cpu_int8=False)
    ranges = calibrate(model_path(args.model, "onnx", config), [picked], INPUT_NAME)
    out = REPO / "engines" / f"int8_{args.model}.json"
    save_table(out, args.model, stamp(REGISTRY[args.model]), ranges,
               f"tools/calibrate_int8.py --model {args.model} --samples {args.samples}: {len(picked)} of "
               f"{len(batches)} detector inputs (shared photos, {VIDEO.name} frames 300-600)")
    link = REPO / "realtime" / "data" / out.name
    if not link.exists():
        link.symlink_to(Path("..") / ".." / "engines" / out.name)
    print(f"{out}: {len(ranges)} tensors", file=sys.stderr)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
