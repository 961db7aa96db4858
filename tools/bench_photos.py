"""The still-image API on a list of photos: time and peak memory of ``realtime.estimate(list)``.

A newcomer hands ``realtime.estimate`` a whole folder. Each run is a fresh process (peak memory is
per process), the shared photos repeated to ``N`` paths; it prints seconds, photos per second,
people found and the process's peak resident memory. ``--crowd``: each of the N photos is instead a
crowd, a 4 x 4 mosaic of the shared photos with several people (64 people, 30-150 px tall).

    python tools/bench_photos.py [--counts 8 40 120] [--photo-model movenet-lightning movenet-thunder]
                                 [--pose2d "flip_test=false" --pose2d ""] [--crowd] [--json]
"""
from __future__ import annotations

import argparse
import json
import subprocess
import sys
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))

from realtime.config import ConfigError, load_config, parse_setting  # noqa: E402

PHOTOS = REPO.parent / "shared" / "data" / "images" / "photos"

#: What each child process runs: estimate on N paths, then report.
_CHILD = """
import json, resource, sys, time
from pathlib import Path
sys.path.insert(0, {repo!r})
import realtime
from realtime.config import load_config
model = {model!r}                                 # [pose2d] photo_model for this run (None: the configured one)
overrides = {overrides!r}                         # other [pose2d] settings for this run
if model:
    overrides["photo_model"] = model
estimate = (realtime.PoseEstimator3D(load_config().replace("pose2d", **overrides)).estimate if overrides
            else realtime.estimate)
paths = sorted(str(p) for p in Path({photos!r}).iterdir() if p.suffix.lower() in (".jpg", ".png"))
if {crowd!r}:                                     # a 4 x 4 mosaic of the photos with several people
    import cv2, numpy as np
    tiles = [cv2.resize(cv2.imread(str(Path({photos!r}) / name)), (320, 240))
             for name in ("apink2.jpg", "p3.jpg", "ski.jpg", "handsup1.jpg")] * 4
    paths = [np.vstack([np.hstack(tiles[i:i + 4]) for i in range(0, 16, 4)])]
paths = (paths * ({n} // len(paths) + 1))[:{n}]
estimate(paths[:1])                               # networks loaded before the clock starts
t = time.perf_counter()
found = estimate(paths)
seconds = time.perf_counter() - t
print(json.dumps({{"photos": {n}, "seconds": seconds, "people": sum(map(len, found)),
                   "peak_rss_mb": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024}}))
"""


def run(n: int, photos: Path, model: str | None = None, crowd: bool = False, overrides: dict | None = None) -> dict:
    child = _CHILD.format(repo=str(REPO), photos=str(photos), n=n, model=model, crowd=crowd, overrides=overrides or {})
    out = subprocess.run([sys.executable, "-c", child],
                         capture_output=True, text=True, check=True)
    return json.loads(out.stdout.strip().splitlines()[-1])


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--counts", type=int, nargs="+", default=[8, 40, 120], help="list lengths, one process each")
    p.add_argument("--photos", type=Path, default=PHOTOS)
    p.add_argument("--photo-model", nargs="+", default=[None], metavar="MODEL",
                   help="[pose2d] photo_model of each run, side by side (default: the configured one)")
    p.add_argument("--pose2d", action="append", default=None, metavar="KEY=VALUE[,KEY=VALUE]",
                   help="[pose2d] settings of one run (TOML values; \"\" = the configured ones); repeat for runs "
                        "side by side")
    p.add_argument("--crowd", action="store_true", help="each photo a 4 x 4 mosaic of the shared photos (64 people)")
    p.add_argument("--json", action="store_true")
    args = p.parse_args(argv)
    try:
        variants = [dict(parse_setting(kv, "--pose2d") for kv in text.split(",") if kv) for text in (args.pose2d or [""])]
    except ConfigError as e:
        raise SystemExit(f"error: {e}") from None
    rows = [dict(run(n, args.photos, model, args.crowd, variant), model=model or load_config().pose2d.photo_model,
                 pose2d=variant)
            for model in args.photo_model for variant in variants for n in args.counts]
    if args.json:
        print(json.dumps({"rows": rows}))
        return 0
    print(f"{'photo_model':<20}{'[pose2d]':<20}{'photos':>7}{'seconds':>9}{'photos/s':>10}{'people':>8}{'peak MB':>9}")
    for r in rows:
        settings = ",".join(f"{k}={v}" for k, v in r["pose2d"].items()) or "-"
        print(f"{r['model']:<20}{settings:<20}{r['photos']:>7}{r['seconds']:>9.1f}{r['photos'] / r['seconds']:>10.2f}"
              f"{r['people']:>8}{r['peak_rss_mb']:>9.0f}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
