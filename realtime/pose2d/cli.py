"""``realtime estimate FILE [FILE ...]``: every person's 2D (and, with a pose prior, 3D) pose in still
images (IMAGE mode: each photo on its own) or in video files (VIDEO mode: people followed from frame
to frame, given track ids, smoothed: ``realtime.estimate_video``; one JSON line per frame).

A bad file gets one error line and the others still run; the exit status is 1 if any file failed.
"""
from __future__ import annotations

import argparse
import dataclasses
import json
import sys
from pathlib import Path
from typing import Any


def add_arguments(p: argparse.ArgumentParser) -> None:
    from realtime.config import Pose2DConfig

    choices = {f.name: f.metadata["choices"] for f in dataclasses.fields(Pose2DConfig)}
    p.add_argument("images", nargs="+", metavar="FILE", help="image files (jpg, png, ...) or directories of them; "
                   "or video files (mp4, mov, ...), not both in one call")
    p.add_argument("--json", action="store_true", help="print one JSON object instead of text (videos: one JSON "
                   "line per video, then one per frame)")
    p.add_argument("--model", choices=choices["photo_model"],
                   help="2D keypoint network (default: [pose2d] photo_model for images, [pose2d] model for videos)")
    p.add_argument("--detector", choices=choices["detector"], help="person detector (default: [pose2d] detector)")
    p.add_argument("--backend", choices=choices["backend"], help="inference backend (default: [pose2d] backend)")
    p.add_argument("--config", help="config.toml to read (default: the repository's)")
    p.add_argument("--no-3d", action="store_true", help="skip 3D lifting even when a pose prior is available")
    p.add_argument("--draw", metavar="OUT", help="write each image with its people drawn: a file for one "
                   "image (OUT.jpg/.png), a directory for several; for a video, OUT.mp4 (a directory for several)")
    p.add_argument("--frames", type=int, default=0, metavar="N", help="videos: at most N frames of each (default: all)")
    p.add_argument("--draw-3d", metavar="OUT", help="write each image's 3D poses: OUT.html (interactive, "
                   "self-contained) or OUT.png/.jpg (a rendered view); a directory for several images (PNGs)")


def run(args: argparse.Namespace) -> int:
    from realtime.capture.source import VIDEO_SUFFIXES
    from realtime.config import ConfigError, load_config
    from realtime.pose2d import ImageError, PoseEstimator2D, load_image
    from realtime.viewer.state import person_json

    videos = [f for f in args.images if Path(f).suffix.lower() in VIDEO_SUFFIXES]
    if videos and len(videos) < len(args.images):
        print("error: give still images or videos, not both: a video's frames are printed as they come, "
              "one line each", file=sys.stderr)
        return 2
    if args.frames < 0:
        print(f"error: --frames {args.frames}: give a number of frames, or 0 for all", file=sys.stderr)
        return 2
    try:
        config = load_config(args.config)
        chosen = {"photo_model": args.model, "backend": args.backend, "detector": args.detector}
        if videos:
            chosen["model"] = args.model
        config = config.replace("pose2d", **{k: v for k, v in chosen.items() if v})
        if videos:
            return _run_videos(args, videos, config)
        estimator3d, lift_note = (None, "disabled (--no-3d)") if args.no_3d else _estimator3d(config)
        stage2d = (estimator3d.pose2d if estimator3d is not None
                   else PoseEstimator2D.create(config=config.pose2d.for_photos()))
    except BrokenPipeError:
        raise                   # the reader went away: realtime.cli ends quietly
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
        camera = estimator3d.camera_of(path) if estimator3d is not None else None   # a file's EXIF focal length
        people = estimator.estimate(image) if estimator3d is None else estimator3d.estimate(image, camera)
        if args.draw:
            _draw(args.draw, path, image, people, len(images))
        entries = [_entry(p, with_3d=estimator3d is not None) for p in people]
        if args.draw_3d:  # as the viewer draws people, each labelled with its index in this photo
            lifted = [dict(person_json(p), id=i) for i, p in enumerate(people)
                      if p.joints3d is not None and p.root is not None]
            _draw_3d(args.draw_3d, path, lifted, len(images))
        results.append({"image": path, "width": image.shape[1], "height": image.shape[0],
                        **({} if camera is None else {"focal_px": round(camera.focal_for(image.shape[1]), 1)}),
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


def _run_videos(args: argparse.Namespace, videos: list[str], config: Any) -> int:
    """Each video through ``realtime.video`` (the video network and follower, lifting, tracking):
    a line a frame as it comes, so a long video shows progress and a pipe can read it live."""
    from realtime.capture import SourceError
    from realtime.capture.source import timed_frames
    from realtime.lifting import LiftingSetup
    from realtime.pose2d import ImageError
    from realtime.video import VideoEstimator3D

    lifting = LiftingSetup.from_config(config.lifting)
    failed = 0
    for path in videos:
        try:
            frames = timed_frames(path, args.frames)
        except SourceError as e:
            print(f"error: {e}", file=sys.stderr)
            failed += 1
            continue
        writer = None
        with VideoEstimator3D(config, lifting=lifting, offline=True) as video:
            stage = video.pose2d
            header = {"video": path, "model": stage.model, "detector": stage.config.detector,
                      "backend": stage.backend, "lifting": "on"}
            print(json.dumps(header) if args.json else
                  f"{path}: model {stage.model}, detector {stage.config.detector} on {stage.backend}; 3D lifting on",
                  flush=True)
            count, bad = 0, 0
            try:
                for n, (t, frame) in enumerate(frames):
                    try:
                        people = video.estimate(frame, t)
                    except ImageError as e:     # one bad frame is counted, never ends the video
                        bad += 1
                        print(f"error: {path} frame {n}: {e}", file=sys.stderr)
                        continue
                    count += 1
                    if args.draw:
                        writer = writer or _video_writer(args.draw, path, frame, len(videos))
                        writer.write(draw_tracked(frame, people))
                    _print_frame(path, n, t, people, args.json, not args.no_3d)
            finally:
                if writer is not None:
                    writer.release()
        if not args.json:
            print(f"{path}: {count} frames" + (f", {bad} unreadable" if bad else ""))
        failed += bool(bad) or count == 0
    return 1 if failed else 0


def _print_frame(path: str, n: int, t: float, people: list, as_json: bool, with_3d: bool) -> None:
    if as_json:
        entries = [dict(_entry(p, with_3d), id=int(p.track_id)) for p in people]
        print(json.dumps({"video": path, "frame": n, "t": round(t, 4), "people": entries}), flush=True)
        return
    ids = ", ".join(f"{p.track_id}" if p.track_id >= 0 else "new" for p in people)
    print(f"  frame {n} ({t:.2f} s): {len(people)} {'person' if len(people) == 1 else 'people'}"
          + (f" (ids {ids})" if people else ""), flush=True)


def draw_tracked(frame: Any, people: list) -> Any:
    """A video frame with its people drawn, each labelled and coloured by track id (so a person keeps
    their colour; "new" before the tracker confirms them)."""
    from realtime.pose2d.draw import draw_people

    return draw_people(frame, people, [f"id {p.track_id}" if p.track_id >= 0 else "new" for p in people],
                       keys=[max(int(p.track_id), 0) for p in people])


def _video_writer(out: str, path: str, frame: Any, count: int) -> Any:
    import cv2

    target = _target(out, path, count, "_drawn.mp4")
    cap = cv2.VideoCapture(path)
    fps = cap.get(cv2.CAP_PROP_FPS) or 30.0
    cap.release()
    writer = cv2.VideoWriter(str(target), cv2.VideoWriter_fourcc(*"mp4v"), fps, (frame.shape[1], frame.shape[0]))
    if not writer.isOpened():
        raise OSError(f"{target}: could not write a video there (use .mp4 or .avi)")
    return writer


def _expand(paths: list[str]) -> list[str]:
    """The image files named, a directory standing for the images directly inside it (by name)."""
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
        # the camera pitch it was lifted at: R_x(pitch_deg) turns joints3d and root into camera axes
        entry["pitch_deg"] = None if p.pitch_deg is None else round(float(p.pitch_deg), 3)
    return entry


def _target(out: str, path: str, count: int, name: str) -> Path:
    """Where one image's picture goes: ``out`` itself for one image, ``out/<image stem><name>`` for
    several (or when ``out`` is a directory); its directory is made."""
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
