"""``realtime estimate IMAGE [IMAGE ...]``: every person's 2D (and, with a pose prior, 3D) pose in still images.

A bad file gets one error line and the others still run; the exit status is 1 if any image failed.
"""
from __future__ import annotations

import argparse
import dataclasses
import json
import sys
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from pathlib import Path


def add_arguments(p: argparse.ArgumentParser) -> None:
    from realtime.config import Pose2DConfig

    choices = {f.name: f.metadata["choices"] for f in dataclasses.fields(Pose2DConfig)}
    p.add_argument("images", nargs="+", metavar="IMAGE", help="image files (jpg, png, ...), or directories of them")
    p.add_argument("--json", action="store_true", help="print one JSON object instead of text")
    p.add_argument("--model", choices=choices["photo_model"],
                   help="2D keypoint network (default: [pose2d] photo_model)")
    p.add_argument("--detector", choices=choices["detector"], help="person detector (default: [pose2d] detector)")
    p.add_argument("--backend", choices=choices["backend"], help="inference backend (default: [pose2d] backend)")
    p.add_argument("--config", help="config.toml to read (default: the repository's)")
    p.add_argument("--no-3d", action="store_true", help="skip 3D lifting even when a pose prior is available")
    p.add_argument("--draw", metavar="OUT", help="write each image with its people drawn: a file for one "
                   "image (OUT.jpg/.png), a directory for several")
    p.add_argument("--draw-3d", metavar="OUT", help="write each image's 3D poses: OUT.html (interactive, "
                   "self-contained) or OUT.png/.jpg (a rendered view); a directory for several images (PNGs)")


def run(args: argparse.Namespace) -> int:
    from realtime.config import ConfigError, load_config
    from realtime.pose2d import ImageError, PoseEstimator2D, load_image
    from realtime.viewer.state import person_json

    try:
        config = load_config(args.config)
        chosen = {"photo_model": args.model, "backend": args.backend, "detector": args.detector}
        config = config.replace("pose2d", **{k: v for k, v in chosen.items() if v})
        estimator3d, lift_note = (None, "disabled (--no-3d)") if args.no_3d else _estimator3d(config)
        stage2d = (estimator3d.pose2d if estimator3d is not None
                   else PoseEstimator2D.create(config=config.pose2d.for_photos()))
    except (ConfigError, RuntimeError, ValueError, OSError) as e:
        print(f"error: {e}", file=sys.stderr)
        return 2
    estimator = estimator3d or stage2d
    if args.draw_3d and estimator3d is None:
        print(f"error: --draw-3d: 3D lifting is {lift_note}", file=sys.stderr)
        return 2
    results, failed = [], 0
    images = _expand(args.images)
    if not images:
        print(f"error: no images (jpg, png, ...) in {', '.join(args.images)}", file=sys.stderr)
        return 1
    for path in images:
        try:
            image = load_image(path)
        except ImageError as e:
            print(f"error: {e}", file=sys.stderr)
            results.append({"image": path, "error": str(e)})
            failed += 1
            continue
        people = estimator.estimate(image)
        if args.draw:
            _draw(args.draw, path, image, people, len(images))
        entries = [_entry(p, with_3d=estimator3d is not None) for p in people]
        if args.draw_3d:  # as the viewer draws people, each labelled with its index in this photo
            lifted = [dict(person_json(p), id=i) for i, p in enumerate(people)
                      if p.joints3d is not None and p.root is not None]
            _draw_3d(args.draw_3d, path, lifted, len(images))
        results.append({"image": path, "width": image.shape[1], "height": image.shape[0],
                        "people": entries, "timings_ms": {k: round(v, 2) for k, v in stage2d.last_timings.items()}})
    summary = {"model": stage2d.model, "detector": stage2d.config.detector, "backend": stage2d.backend,
               "lifting": lift_note,
               "images": results}
    if args.json:
        print(json.dumps(summary))
    else:
        _print_text(summary)
    estimator.close()
    return 1 if failed else 0


def _expand(paths: list[str]) -> list[str]:
    """The image files named, a directory standing for the images directly inside it (by name)."""
    from pathlib import Path

    from realtime.capture.source import IMAGE_SUFFIXES

    out = []
    for path in paths:
        p = Path(path)
        if p.is_dir():
            out += sorted(str(q) for q in p.iterdir() if q.suffix.lower() in IMAGE_SUFFIXES and q.is_file())
        else:
            out.append(path)
    return out


def _estimator3d(config: Any) -> tuple[Any, str]:
    """The still-image 3D estimator (``realtime.photo``) when a trained prior is present; else None and why not."""
    from realtime.lifting import LiftingSetup
    from realtime.photo import PoseEstimator3D

    try:
        lifting = LiftingSetup.from_config(config.lifting)
    except (OSError, ValueError) as e:  # no usable prior: 2D only, said in the output
        return None, f"unavailable ({e})"
    return PoseEstimator3D(config, lifting=lifting), "on"


def _entry(p: Any, with_3d: bool) -> dict:
    """A person as JSON: box, score, each LSP-14 joint by name as [x, y, confidence] and, with 3D
    lifting on, each 3D joint by name in metres and the root (None: too few visible joints to lift)."""
    from realtime.skeleton import JOINTS3D, LSP14

    entry = {"bbox": [round(float(v), 2) for v in p.bbox], "score": round(float(p.score), 4),
             "keypoints": {name: [round(float(x), 2), round(float(y), 2), round(float(c), 4)]
                           for name, (x, y), c in zip(LSP14, p.keypoints2d, p.confidence)}}
    if with_3d:
        entry["joints3d"] = (None if p.joints3d is None else
                             {name: [round(float(v), 4) for v in xyz] for name, xyz in zip(JOINTS3D, p.joints3d)})
        # where the person stands: the pelvis in the camera's level frame (metres; docs/protocol.md)
        entry["root"] = None if p.root is None else [round(float(v), 4) for v in p.root]
    return entry


def _target(out: str, path: str, count: int, name: str) -> "Path":
    """Where one image's picture goes: ``out`` itself for one image, ``out/<image stem><name>`` for
    several (or when ``out`` is a directory); its directory is made."""
    from pathlib import Path

    target = Path(out)
    if count > 1 or target.is_dir():
        target.mkdir(parents=True, exist_ok=True)
        return target / (Path(path).stem + name)
    target.parent.mkdir(parents=True, exist_ok=True)
    return target


def _draw(out: str, path: str, image: Any, people: list, count: int) -> None:
    import cv2

    from realtime.pose2d.draw import draw_people

    target = _target(out, path, count, ".jpg")
    if not cv2.imwrite(str(target), draw_people(image, people)):
        raise OSError(f"{target}: could not write the drawn image (unknown extension?)")


def _draw_3d(out: str, path: str, people: list[dict], count: int) -> None:
    from pathlib import Path

    import cv2

    from realtime.viewer.poses3d import render, write_html

    target = _target(out, path, count, "_3d.png")
    if target.suffix.lower() in (".html", ".htm"):
        write_html(people, target, Path(path).name)
    elif not cv2.imwrite(str(target), render(people)):
        raise OSError(f"{target}: could not write the 3D picture (use .html, .png or .jpg)")


def _print_text(summary: dict) -> None:
    print(f"model {summary['model']}, detector {summary['detector']} on {summary['backend']}; "
          f"3D lifting {summary['lifting']}")
    for r in summary["images"]:
        if "error" in r:
            print(f"{r['image']}: error: {r['error']}")
            continue
        n = len(r["people"])
        print(f"{r['image']}: {r['width']}x{r['height']}, {n} {'person' if n == 1 else 'people'}")
        for i, p in enumerate(r["people"]):
            box = ", ".join(f"{v:.0f}" for v in p["bbox"])
            print(f"  person {i}: score {p['score']:.2f}, box ({box})")
            for name, (x, y, c) in p["keypoints"].items():
                xyz = ""
                if p.get("joints3d"):
                    xyz = "  3D " + " ".join(f"{v:+.3f}" for v in p["joints3d"][name]) + " m"
                print(f"    {name:11s} {x:8.1f} {y:8.1f}  conf {c:.2f}{xyz}")
            if "joints3d" in p and p["joints3d"] is None:
                print("    3D: too few visible joints")
