"""The 2D front end, measured: every detector x keypoint-network combination on the annotated photos.

Default (the table the default models were chosen by, docs/benchmarks.md): on the 16 annotated
people of ../shared/data/images/annotated, clean and degraded (Gaussian blur sigma 2 px, JPEG quality
20, low light with noise, people made small in a 3x larger frame), for each combination:

* person recall (IoU >= 0.5 of the final person boxes with the annotated joints' box),
* PCK@0.1 of the box diagonal over the 12 limb joints end to end (``PoseEstimator2D.estimate``,
  the stateless still-image API: the project's own detector; a missed person has every joint wrong),
* PCK@0.1 of the keypoint network on ground-truth boxes (no detector),
* CPU ms per photo (median, ONNX Runtime, ``--threads`` threads): the detector's time on the photo plus
  the rest of ``estimate`` (each detector runs once per photo; its detections are shared by the
  keypoint networks through ``PoseEstimator2D.people_in_detections``, the same code ``estimate`` runs);

then people per frame on the shared videos: each combination in ``--video-combos`` with the detector
on every frame (the proxy reference: the videos have no ground truth), and the default configuration
as it runs live (``VideoFollower``, detector spread over frames) and as a file is read offline
(``realtime.estimate_video``: ``file_detector_regions_per_frame``); ``--video-starts`` follows each
video from several first frames and averages (one start is at the mercy of a few people whose scores
hover at the threshold). Each row is also matched frame by frame to the reference (the combination
that finds the most people; boxes overlapping by IoU > ``MATCH_IOU``): the share of the reference's
people it reports and the people it reports that the reference does not, since a count alone rises
as much with boxes kept on nothing as with people found. ``--conditions ""`` skips the photos.

``--refine``: the paper's 3D feedback with the default network on ground-truth boxes, per fusion
weight, chosen on one half of the people and reported on the other (both ways round), clean and blurred.
``--video N``: only the real-time check of the default configuration on the first N frames of the
1080p demo video (``VideoFollower.estimate`` p50/p95 and each phase).
``--cut``: only people cut by the image's bottom edge (a webcam's head and shoulders): photos of one
person with only the top of each kept, as still images and as short clips (``cut_study``).

    python tools/bench_2d.py [--json] [--threads 1] [--video-frames 150] [--video-starts 0,40,80,130]
    python tools/bench_2d.py --refine [--json]
    python tools/bench_2d.py --cut [--json]
    python tools/bench_2d.py --video 300 [--video-repeats 3] [--pose2d detector_regions_per_frame=1.0 ...] [--json]
"""
from __future__ import annotations

import argparse
import json
import os
import sys
import time
from dataclasses import replace
from pathlib import Path

import numpy as np

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))

from realtime.boxes import iou_matrix  # noqa: E402
from realtime.capture import video_frames  # noqa: E402
from realtime.config import Config, ConfigError, Pose2DConfig, parse_setting  # noqa: E402
from realtime.pose2d import PoseEstimator2D, VideoFollower, load_image  # noqa: E402
from realtime.pose2d.backends import create_backend  # noqa: E402
from realtime.pose2d.detection import create_detector  # noqa: E402
from realtime.pose2d.evaluation import (BODY12, CONDITIONS, SPLITS, Sample, found, load_annotated, match,  # noqa: E402
                                        pck, small)
from realtime.networks import REGISTRY  # noqa: E402

KEYPOINTS = ("movenet-lightning", "movenet-thunder", "efficientpose", "cpm", "blazepose-full", "blazepose-heavy")
DETECTORS = ("movenet-multipose", "nanodet", "centernet", "blazepose-detector")
VIDEO_COMBOS = ("movenet-multipose+movenet-lightning", "movenet-multipose+movenet-thunder",
                "centernet+movenet-thunder", "nanodet+movenet-lightning")
CONDITION_NAMES = ("clean", "blur2", "jpeg20", "dark", "small", "turned")


def degraded(samples: list[Sample], images: dict, condition: str) -> tuple[list[Sample], dict]:
    """The samples and their images under ``condition`` (the ground truth moves with "small" and
    "turned": the photo turned a quarter clockwise, its people lying across it)."""
    if condition == "turned":
        turned = {p: np.ascontiguousarray(np.rot90(im, -1)) for p, im in images.items()}
        return [replace(s, keypoints=np.stack([images[s.image].shape[0] - 1 - s.keypoints[:, 1], s.keypoints[:, 0]], -1))
                for s in samples], turned
    if condition != "small":
        return samples, {p: CONDITIONS[condition](im) for p, im in images.items()}
    out_images, out_samples = {}, []
    for s in samples:
        frame, scale, offset = small(images[s.image])
        out_images[s.image] = frame
        out_samples.append(replace(s, keypoints=s.keypoints * scale + offset))
    return out_samples, out_images


def _config(threads: int, **kw) -> Pose2DConfig:
    return replace(Config().pose2d, backend="onnxruntime", ort_threads=threads, **kw)


def matrix(samples: list[Sample], images: dict, keypoints: tuple[str, ...], detectors: tuple[str, ...],
           threads: int, conditions: tuple[str, ...], overrides: dict | None = None) -> dict:
    """Every combination under every condition (networks loaded once, shared by the combinations),
    with ``overrides`` of the [pose2d] defaults."""
    # still images keep the float32 detector (Pose2DConfig.for_photos); --pose2d cpu_int8=true for int8
    config = _config(threads, **{"cpu_int8": False, **(overrides or {})})
    kp_backends = {k: create_backend(k, "onnxruntime", replace(config, model=k)) for k in keypoints}
    det_backends = {d: create_backend(d, "onnxruntime", config) for d in detectors}
    rows: dict[str, dict] = {}
    for condition in conditions:
        cs, cims = degraded(samples, images, condition)
        frames = [cims[s.image] for s in cs]
        gt_boxes: dict[str, float] = {}
        for k in keypoints:
            base = PoseEstimator2D(kp_backends[k], None, REGISTRY[k], replace(config, model=k))  # type: ignore[arg-type]
            preds = [base.estimate_in_boxes(f, s.box)[0].keypoints for f, s in zip(frames, cs)]
            gt_boxes[k] = pck(cs, preds, BODY12, 0.1)
        for d in detectors:
            detector = create_detector(d, det_backends[d], None, config.detector_tiles)
            first = PoseEstimator2D(kp_backends[keypoints[0]], detector, REGISTRY[keypoints[0]],
                                    replace(config, model=keypoints[0], detector=d))
            detections, detect_ms = [], []
            for f in frames:
                t = time.perf_counter()
                detections += first.detect([f])
                detect_ms.append((time.perf_counter() - t) * 1e3)
            for k in keypoints:
                # PoseEstimator2D.estimate's two steps, the detections shared by the keypoint networks
                est = PoseEstimator2D(kp_backends[k], detector, REGISTRY[k], replace(config, model=k, detector=d))
                people, times = [], []
                for f, dets, ms in zip(frames, detections, detect_ms):
                    t = time.perf_counter()
                    people.append(est.people_in_detections([f], [dets])[0])
                    times.append(ms + (time.perf_counter() - t) * 1e3)
                boxes = [np.array([p.bbox for p in ps]).reshape(-1, 4) for ps in people]
                matched = [match(s, b) for s, b in zip(cs, boxes)]
                preds = [None if m is None else ps[m].keypoints for ps, m in zip(people, matched)]
                row = rows.setdefault(f"{d}+{k}", {"detector": d, "keypoints": k})
                row[condition] = {
                    "recall": float(np.mean([found(s, b) for s, b in zip(cs, boxes)])),
                    "detector_recall": float(np.mean([found(s, np.array([x.box for x in dets]))
                                                      for s, dets in zip(cs, detections)])),
                    "pck": pck(cs, preds, BODY12, 0.1),
                    "pck_halves": {h: pck([s for s in cs if s.dataset in v],
                                          [p for s, p in zip(cs, preds) if s.dataset in v], BODY12, 0.1)
                                   for h, v in SPLITS.items()},
                    "pck_gt_boxes": gt_boxes[k],
                    "ms_p50": float(np.median(times)),
                    "detect_ms_p50": float(np.median(detect_ms)),
                    "people_per_photo": float(np.mean([len(ps) for ps in people])),
                }
            print(f"  {condition}: {d} done", file=sys.stderr, flush=True)
    for b in (*kp_backends.values(), *det_backends.values()):
        b.close()
    return rows


def video_counts(videos: list[Path], frames: int, combos: tuple[str, ...], threads: int,
                 starts: tuple[int, ...] = (0,), live: dict | None = None, condition: str = "clean") -> dict:
    """People per frame: each combination with the detector on every frame, and the default
    configuration as it runs live (the follower, detector regions spread over frames; ``live``: [pose2d]
    settings other than the default for that row).

    Each video is followed from every frame in ``starts`` for ``frames`` frames, afresh each time, and
    the counts are averaged. One start is not enough to compare configurations: who is found depends
    on people whose scores hover at the threshold, so a change as small as a 1e-5 difference in one
    detector box sends the follower down another path (-13 % people on the arm-wrestling video's first
    150 frames from re-associating NanoDet's normalisation, which changed no output by more than 7e-6).
    ``condition``: every frame degraded as the photos are (blur2, jpeg20, dark; soft or compressed
    footage, where a small video's people are few pixels to begin with). The reference rows (``combos``)
    then still read the clean frames: the people who are there, which the degraded rows are matched to
    (each row's ``condition`` says which it read)."""
    out: dict[str, dict] = {}
    default = Config().pose2d
    label = ", ".join(f"{k} = {v}" for k, v in (live or {}).items()) or "default"
    live_pair = f"{(live or {}).get('detector', default.detector)}+{(live or {}).get('model', default.model)}"
    # the reference: the detector everywhere on every frame, in float32 (cpu_int8 off: the strongest);
    # then live, and as a video file is read offline (realtime.estimate_video: Pose2DConfig.for_files)
    runs = ([(c, dict(detector_regions_per_frame=64.0, cpu_int8=False), False) for c in combos]
            + [(f"{live_pair} ({label}, live)", dict(live or {}), False),
               (f"{live_pair} ({label}, file read offline)", dict(live or {}), True)])
    clean = {path: list(video_frames(path, max(starts) + frames)) for path in videos}
    clips = clean if condition == "clean" else {path: [CONDITIONS[condition](f) for f in frames_of]
                                                for path, frames_of in clean.items()}
    for path, clip in clips.items():
        if len(clip) < max(starts) + frames:
            raise SystemExit(f"{path.name} has {len(clip)} frames: too few for starts {list(starts)} "
                             f"x {frames} frames")
    boxes: dict[str, dict[str, list[np.ndarray]]] = {}     # run -> video -> each frame's people's boxes
    for name, overrides, offline in runs:
        d, k = name.split(" ")[0].split("+")
        config = _config(threads, **{"model": k, "detector": d, **overrides})
        est = PoseEstimator2D.create(config=config.for_files() if offline else config)
        reference = name in combos
        for path, clip in (clean if reference else clips).items():
            counts, times, runs_per_start, crops, regions = [], [], [], 0, 0
            seen = boxes.setdefault(name, {}).setdefault(path.name, [])
            for start in starts:
                video = VideoFollower(est)
                counts.append([])
                for frame in clip[start:start + frames]:
                    t = time.perf_counter()
                    people = video.estimate(frame)
                    times.append((time.perf_counter() - t) * 1e3)
                    counts[-1].append(len(people))
                    seen.append(np.array([p.bbox for p in people]).reshape(-1, 4))
                runs_per_start.append(video.detector_runs)
                crops += video.sources[0].crops_read
                regions += video.sources[0].regions_looked
                video.close()
            out.setdefault(name, {})[path.name] = {
                "frames": frames, "starts": list(starts), "condition": "clean" if reference else condition,
                "people_per_frame": float(np.mean([np.mean(c) for c in counts])),
                "people_per_frame_by_start": [float(np.mean(c)) for c in counts],
                "ms_p50": float(np.median(times)), "detector_runs": runs_per_start,
                # the work a frame costs: keypoint crops and detector regions (the first frame's too)
                "crops_per_frame": crops / (frames * len(starts)),
                "regions_per_frame": regions / (frames * len(starts))}
        est.close()
        print(f"  video: {name} done", file=sys.stderr, flush=True)
    if combos:
        for path in clips:
            _match_to_reference(out, boxes, combos, path.name)
    return out


#: A person of a run and one of the reference are the same when their boxes overlap this much (IoU).
MATCH_IOU = 0.3


def _match_to_reference(out: dict, boxes: dict, combos: tuple[str, ...], video: str) -> None:
    """Each run's people matched frame by frame to the reference's (the combination with the detector
    on every frame that finds the most people in ``video``): ``matched`` the fraction of the
    reference's people the run also reports, ``unmatched_per_frame`` the run's people the reference
    does not report. People per frame alone cannot tell a person found from a box kept on nothing
    (a lower ``keep_fraction`` raised the demo's count by 9 % and its matched people by none)."""
    reference = max(combos, key=lambda c: out[c][video]["people_per_frame"])
    ref = boxes[reference][video]
    total = sum(len(r) for r in ref)
    for name, per in boxes.items():
        matched = 0
        for mine, theirs in zip(per[video], ref):
            if len(mine) and len(theirs):
                iou = iou_matrix(mine, theirs)
                while iou.size and iou.max() > MATCH_IOU:       # greedy, best overlap first
                    i, j = np.unravel_index(np.argmax(iou), iou.shape)
                    matched += 1
                    iou[i, :], iou[:, j] = 0.0, 0.0
        out[name][video].update(reference=reference, matched=matched / max(total, 1),
                                unmatched_per_frame=(sum(len(m) for m in per[video]) - matched) / len(ref))


def refine_study(samples: list[Sample], images: dict, model: str, threads: int) -> dict:
    """PCK@0.1 (12 joints) on ground-truth boxes per fusion weight, per half, clean and blurred."""
    weights = (0.0, 0.1, 0.2, 0.3, 0.5)
    runs: dict[str, dict] = {}
    for w in weights:
        # the flip test off throughout: with refine_3d it is off anyway, so w = 0 is one read like the others
        est = PoseEstimator2D.create(config=_config(threads, model=model, refine_3d=w > 0, refine_weight=w,
                                                    flip_test=False))
        for condition in ("clean", "blur2"):
            cs, cims = degraded(samples, images, condition)
            t = time.perf_counter()
            preds = [est.estimate_in_boxes(cims[s.image], s.box)[0].keypoints for s in cs]
            ms = (time.perf_counter() - t) * 1e3 / len(cs)
            runs.setdefault(str(w), {})[condition] = {
                "ms_per_person": ms, **{h: pck([s for s in cs if s.dataset in v],
                                               [p for s, p in zip(cs, preds) if s.dataset in v], BODY12, 0.1)
                                        for h, v in SPLITS.items()}}
        est.close()
    chosen = {}
    for pick, report in (("lsp+mpii", "h36m+3dhp"), ("h36m+3dhp", "lsp+mpii")):
        best = max(weights, key=lambda w: (runs[str(w)]["clean"][pick] + runs[str(w)]["blur2"][pick], -w))
        chosen[f"chosen on {pick}, reported on {report}"] = {
            "weight": best, "off": {c: runs["0.0"][c][report] for c in ("clean", "blur2")},
            "refined": {c: runs[str(best)][c][report] for c in ("clean", "blur2")}}
    return {"model": model, "runs": runs, "chosen": chosen}


def flip_study(samples: list[Sample], images: dict, models: tuple[str, ...], threads: int) -> dict:
    """The flip test (``[pose2d] flip_test``): PCK@0.1 (12 joints) on ground-truth boxes per half and
    condition, one read against the two reads merged at each agreement distance (``MIRROR_AGREE``,
    fraction of the crop's side; 10 = always averaged), the distance chosen on one half (mean over the
    conditions) and reported on the other."""
    import realtime.pose2d.estimator as estimator_module

    agrees = (0.05, 0.1, 0.2, 10.0)
    kept = estimator_module.MIRROR_AGREE
    out: dict[str, dict] = {}
    for model in models:
        est = PoseEstimator2D.create(config=_config(threads, model=model))
        runs: dict[str, dict] = {}
        for label, flip, agree in [("off", False, kept)] + [(str(a), True, a) for a in agrees]:
            estimator_module.MIRROR_AGREE = agree       # the module constant the estimator reads
            e = replace(est, config=replace(est.config, flip_test=flip))
            for condition in CONDITION_NAMES:
                if condition == "turned":
                    continue
                cs, cims = degraded(samples, images, condition)
                t = time.perf_counter()
                preds = [e.estimate_in_boxes(cims[s.image], s.box)[0].keypoints for s in cs]
                runs.setdefault(label, {})[condition] = {
                    "ms_per_person": (time.perf_counter() - t) * 1e3 / len(cs),
                    **{h: pck([s for s in cs if s.dataset in v], [p for s, p in zip(cs, preds) if s.dataset in v],
                              BODY12, 0.1) for h, v in SPLITS.items()}}
        estimator_module.MIRROR_AGREE = kept
        est.close()
        chosen = {}
        for pick, report in (("lsp+mpii", "h36m+3dhp"), ("h36m+3dhp", "lsp+mpii")):
            mean = lambda label, half: float(np.mean([r[half] for r in runs[label].values()]))  # noqa: E731
            best = max(agrees, key=lambda a: (mean(str(a), pick), -a))
            chosen[f"chosen on {pick}, reported on {report}"] = {
                "agree": best, "off": mean("off", report), "flip": mean(str(best), report)}
        out[model] = {"runs": runs, "chosen": chosen}
    return out


#: Shared photos of one person (portraits and single athletes) for the cut study.
CUT_PHOTOS = ("grace_hopper.jpg", "astronaut.png", "handsup1.jpg", "roger.png", "nadal.png", "singer.jpg", "golf.jpg")
CUT_KEEP = (1.0, 0.6, 0.45, 0.35)
CUT_FRAMES = 12


def cut_study(photos: Path, overrides: dict, threads: int) -> dict:
    """People the image's bottom edge cuts (a webcam's head and shoulders): each photo of one person
    with only its top ``CUT_KEEP`` of the height kept. Still images (``PoseEstimator2D.estimate``,
    the photo settings): is someone found. Video (``VideoFollower``, the video settings): a clip of
    ``CUT_FRAMES`` frames, the cut photo shifted 3 px a frame, and the frames where someone is found.
    No keypoint truth: the people are there, the question is whether they are found."""
    still = PoseEstimator2D.create(config=_config(threads, **overrides).for_photos())
    video = PoseEstimator2D.create(config=_config(threads, **overrides))
    rows: dict[str, dict] = {}
    for name in CUT_PHOTOS:
        image = load_image(photos / name)
        for keep in CUT_KEEP:
            cut = np.ascontiguousarray(image[:int(image.shape[0] * keep)])
            people = still.estimate(cut)
            with VideoFollower(video) as follower:
                frames = [len(follower.estimate(np.ascontiguousarray(np.roll(cut, 3 * t, axis=1))))
                          for t in range(CUT_FRAMES)]
            rows.setdefault(name, {})[str(keep)] = {"still": len(people), "still_score": max(
                (p.score for p in people), default=0.0), "video_frames_found": sum(n > 0 for n in frames)}
    still.close()
    video.close()
    total = {str(k): {"still": sum(r[str(k)]["still"] > 0 for r in rows.values()),
                      "video_frames_found": sum(r[str(k)]["video_frames_found"] for r in rows.values())}
             for k in CUT_KEEP}
    return {"photos": len(CUT_PHOTOS), "frames": CUT_FRAMES, "rows": rows, "total": total}


def cut_table(result: dict) -> str:
    r = result["cut"]
    lines = [f"people cut by the bottom edge: {r['photos']} photos of one person, the top of each kept; "
             f"still: photos where someone is found; video: frames of {r['frames']} where someone is found",
             f"{'photo':20s} " + " ".join(f"{'keep ' + k:>14s}" for k in map(str, CUT_KEEP))]
    for name, row in r["rows"].items():
        lines.append(f"{name:20s} " + " ".join(f"{row[str(k)]['still']:>3d} ({row[str(k)]['still_score']:.2f}) "
                                                f"{row[str(k)]['video_frames_found']:>2d}" for k in CUT_KEEP))
    totals = [r["total"][str(k)] for k in CUT_KEEP]
    lines.append(f"{'total':20s} " + " ".join(f"{t['still']:>7d}    {t['video_frames_found']:>3d}" for t in totals))
    return "\n".join(lines)


def realtime_study(path: Path, frames: int, repeats: int, overrides: dict) -> dict:
    """``VideoFollower.estimate`` on the first ``frames`` frames (decoded beforehand), default
    configuration on ONNX Runtime; ``repeats`` passes, the median pass by p50 reported."""
    video_in = list(video_frames(path, frames))
    est = PoseEstimator2D.create(config=replace(Config().pose2d, backend="onnxruntime", **overrides))
    passes = []
    for _ in range(repeats):
        video = VideoFollower(est)
        times, phases, counts = [], [], []
        for frame in video_in:
            t = time.perf_counter()
            counts.append(len(video.estimate(frame)))
            times.append((time.perf_counter() - t) * 1e3)
            phases.append(video.last_timings)
        passes.append({"ms_p50": float(np.median(times)), "ms_p95": float(np.percentile(times, 95)),
                       **{f"{k}_ms_p50": float(np.median([p[k] for p in phases])) for k in phases[0]},
                       "detector_runs": video.detector_runs, "people_per_frame": float(np.mean(counts))})
    est.close()
    median = sorted(passes, key=lambda r: r["ms_p50"])[len(passes) // 2]
    return {"video": path.name, "frames": len(video_in), "repeats": repeats, "overrides": overrides, **median,
            "passes_ms_p50": [r["ms_p50"] for r in passes], "passes_ms_p95": [r["ms_p95"] for r in passes]}


def matrix_table(result: dict) -> str:
    conds = result["conditions"]
    lines = [f"{result['samples']} annotated people; PCK@0.1 over 12 limb joints; ms per photo p50 "
             f"(ONNX Runtime, {result['threads']} thread(s), {result['cpus']} CPUs, load {result['load']:.1f})",
             f"{'detector + keypoints':42s} " + " ".join(f"{c:>22s}" for c in conds),
             f"{'':42s} " + " ".join(f"{'recall  PCK  PCKgt   ms':>22s}" for _ in conds)]
    for name, row in result["matrix"].items():
        lines.append(f"{name:42s} " + " ".join(
            f"{row[c]['recall']:6.2f} {row[c]['pck']:4.2f} {row[c]['pck_gt_boxes']:5.2f} {row[c]['ms_p50']:5.0f}"
            for c in conds))
    if "video" in result:
        lines.append(f"\nPeople per frame on the shared videos ({result['video_condition']}; mean over the starts; "
                     "detector on every frame unless live)")
        for name, per in result["video"].items():
            lines.append(f"{name:62s} " + "  ".join(
                f"{v}: {r['people_per_frame']:.2f} ({len(r['starts'])} x {r['frames']} frames from "
                f"{','.join(map(str, r['starts']))}; {r['ms_p50']:.0f} ms p50; {r['crops_per_frame']:.2f} crops, "
                f"{r['regions_per_frame']:.2f} detector regions a frame"
                + (f"; {r['matched']:.0%} of the reference's people, {r['unmatched_per_frame']:.2f} others a frame"
                   if "matched" in r else "") + ")" for v, r in per.items()))
    return "\n".join(lines)


def refine_table(result: dict) -> str:
    r = result["refine"]
    lines = [f"3D feedback with {r['model']} on ground-truth boxes, PCK@0.1 (12 joints) per half"]
    for w, v in r["runs"].items():
        lines.append(f"w={w:4s} " + "  ".join(f"{c}: {v[c]['lsp+mpii']:.3f} / {v[c]['h36m+3dhp']:.3f} "
                                              f"({v[c]['ms_per_person']:.1f} ms/person)" for c in ("clean", "blur2")))
    for name, v in r["chosen"].items():
        lines.append(f"{name}: w={v['weight']}  off {v['off']}  refined {v['refined']}")
    return "\n".join(lines)


def flip_table(result: dict) -> str:
    lines = ["Flip test on ground-truth boxes, PCK@0.1 (12 joints) lsp+mpii / h36m+3dhp per condition"]
    for model, r in result["flip"].items():
        for label, v in r["runs"].items():
            lines.append(f"{model:18s} {'one read' if label == 'off' else 'agree ' + label:11s} " + "  ".join(
                f"{c} {x['lsp+mpii']:.3f}/{x['h36m+3dhp']:.3f}" for c, x in v.items())
                + f"  ({np.mean([x['ms_per_person'] for x in v.values()]):.1f} ms/person)")
        for name, v in r["chosen"].items():
            lines.append(f"{model:18s} {name}: agree {v['agree']}, one read {v['off']:.3f} -> flip {v['flip']:.3f}")
    return "\n".join(lines)


#: --edge: where each annotated person is cut: the image kept above a line this far from the hips to the
#: ankles (< 0: up the torso towards the shoulders), or left or right of the hips' middle ("none": the
#: whole image, what the rule costs people it does not cut).
EDGE_CUTS = {"none": None, "below the knees": 0.75, "mid thigh": 0.4, "at the hips": 0.05, "mid torso": -0.5,
             "left half": "left", "right half": "right"}
EDGE_SETTINGS = [(0.0, 0.0, 0.0)] + [(c, m, b) for c in (0.2, 0.3, 0.5) for m in (0.05, 0.1, 0.15, 0.2)
                                     for b in (0.0, 0.6, float("inf"))]


def edge_cuts(sample: Sample, image: np.ndarray):
    """The annotated person cut by the image's edge (:data:`EDGE_CUTS`): (name, image, sample moved
    into it, (14,) joints still inside it)."""
    k, v = sample.keypoints, sample.valid
    hip, ankle = k[[8, 11]].mean(0), k[[10, 13], 1].max()
    shoulder = k[[2, 5], 1].mean()
    h, w = image.shape[:2]
    for name, at in EDGE_CUTS.items():
        if at is None:
            yield name, image, sample, v.copy()
            continue
        if isinstance(at, str):
            x = int(round(hip[0]))
            if not 10 < x < w - 10:
                continue
            x0, x1 = (0, x) if at == "left" else (x, w)
            moved = replace(sample, keypoints=k - [x0, 0])
            inside = v & (moved.keypoints[:, 0] > -0.5) & (moved.keypoints[:, 0] < x1 - x0 - 0.5)
            yield name, np.ascontiguousarray(image[:, x0:x1]), moved, inside
            continue
        y = int(round(hip[1] + at * (ankle - hip[1]) if at >= 0 else hip[1] + at * (hip[1] - shoulder)))
        if 10 < y < h:
            yield name, np.ascontiguousarray(image[:y]), sample, v & (k[:, 1] < y - 0.5)


def edge_study(samples: list[Sample], images: dict, annotated: Path, threads: int, overrides: dict | None = None) -> dict:
    """Keypoints of people cut by the image's edge (``[pose2d] edge_confidence``, ``EDGE_MARGIN`` and
    ``BEYOND_CONFIDENCE``, the key ``edge_confidence/EDGE_MARGIN/BEYOND_CONFIDENCE``):
    each annotated person uncut and cut six ways (:data:`EDGE_CUTS`), read once through the still-image
    path (detector, photo model, flip test) with the rule off, then every setting of
    :data:`EDGE_SETTINGS` applied to the same people (the rule changes no box or score). Per setting
    and half: of the joints cut off, the share reported (confidence > 0) and the share reported wrong
    (more than 0.1 of the person's box diagonal from where the joint is); of the joints inside, the
    share reported missing and of those placed right; and, for the people with 3D truth (Human3.6M,
    MPI-INF-3DHP), the lift's PA-MPJPE. The setting is chosen on one half (fewest wrong reports plus
    right joints lost) and reported on the other. ``overrides``: [pose2d] settings (``photo_model`` for
    another network)."""
    import realtime.pose2d.estimator as estimator_module
    from realtime.lifting import PosePrior
    from realtime.lifting.evaluation import pa_mpjpe
    from realtime.lifting.lifter import Lifter
    from realtime.pose2d.annotated3d import EVAL_JOINTS, load_annotated3d
    from realtime.skeleton import level_to_camera

    truth3d = {f.image: f for f in load_annotated3d(annotated)}
    lifter = Lifter(PosePrior.load())
    # the rule only drops keypoints after the networks (box and score unchanged): each cut is read
    # once with it off, and every setting applied to the same people
    est = PoseEstimator2D.create(config=_config(threads, **(overrides or {}), edge_confidence=0.0).for_photos())
    kept, base = (estimator_module.EDGE_MARGIN, estimator_module.BEYOND_CONFIDENCE), est.config
    records: dict[str, list] = {f"{c}/{m}/{b}": [] for c, m, b in EDGE_SETTINGS}
    try:
        for s in samples:
            for name, image, moved, inside in edge_cuts(s, images[s.image]):
                est.config = base
                people = est.estimate(image)
                hit = match(replace(moved, valid=inside), np.array([p.bbox for p in people]).reshape(-1, 4))
                if hit is None:
                    continue
                diagonal = float(np.linalg.norm(np.ptp(moved.keypoints[moved.valid], 0)))
                right = np.linalg.norm(people[hit].keypoints2d - moved.keypoints, axis=1) < 0.1 * diagonal
                frame = truth3d.get(s.image)
                for c, m, b in EDGE_SETTINGS:
                    est.config = replace(base, edge_confidence=c)
                    estimator_module.EDGE_MARGIN, estimator_module.BEYOND_CONFIDENCE = m, b
                    p = est.cut_off(people[hit], image.shape)
                    pa = None
                    if frame is not None and not isinstance(EDGE_CUTS[name], str):   # bottom cuts keep the camera
                        out = lifter.lift(p.keypoints2d[None], p.confidence[None], focal_px=float(np.mean(frame.focal_px)),
                                          centre_px=frame.centre_px)
                        if out.valid[0]:
                            pa = float(pa_mpjpe(level_to_camera(out.joints3d, out.elevation_deg), frame.joints3d[None],
                                                EVAL_JOINTS)[0] * 1000)
                    records[f"{c}/{m}/{b}"].append({
                        "dataset": s.dataset, "cut": name, "pa_mpjpe_mm": pa,
                        "inside": inside[s.valid].tolist(), "reported": (p.confidence > 0)[s.valid].tolist(),
                        "right": right[s.valid].tolist()})
    finally:
        estimator_module.EDGE_MARGIN, estimator_module.BEYOND_CONFIDENCE = kept
        est.close()

    def score(rows: list) -> dict:
        inside = np.concatenate([r["inside"] for r in rows]).astype(bool)
        reported = np.concatenate([r["reported"] for r in rows]).astype(bool)
        right = np.concatenate([r["right"] for r in rows]).astype(bool)
        pa = [r["pa_mpjpe_mm"] for r in rows if r["pa_mpjpe_mm"] is not None]
        share = lambda x: float(x.mean()) if len(x) else None  # noqa: E731 - none cut off in the uncut photos
        return {"people": len(rows), "cut_off": int((~inside).sum()), "inside": int(inside.sum()),
                "cut_off_reported": share(reported[~inside]),
                "cut_off_reported_wrong": share((reported & ~right)[~inside]),
                "inside_missing": share((~reported)[inside]),
                "inside_right_missing": share((~reported & right)[inside]),
                "wrong": int((reported & ~right & ~inside).sum() + (~reported & right & inside).sum()),
                "pa_mpjpe_mm": float(np.mean(pa)) if pa else None, "lifted": len(pa)}

    runs = {key: {**{h: score([r for r in rows if r["dataset"] in v]) for h, v in SPLITS.items()},
                  "uncut": score([r for r in rows if r["cut"] == "none"]),
                  "cut": score([r for r in rows if r["cut"] != "none"])}
            for key, rows in records.items()}
    chosen = {}
    for pick, report in (("lsp+mpii", "h36m+3dhp"), ("h36m+3dhp", "lsp+mpii")):
        best = min(runs, key=lambda key: (runs[key][pick]["wrong"], key))
        chosen[f"chosen on {pick}, reported on {report}"] = {"setting": best, "off": runs[next(iter(runs))][report],
                                                              "chosen": runs[best][report]}
    return {"cuts": list(EDGE_CUTS), "runs": runs, "chosen": chosen}


def edge_table(result: dict) -> str:
    r = result["edge"]
    lines = ["People cut by the image's edge (" + ", ".join(r["cuts"]) + "), per half lsp+mpii / h36m+3dhp:",
             "edge_confidence/EDGE_MARGIN/BEYOND_CONFIDENCE: cut-off joints reported (wrong) | inside joints missing (placed right) "
             "| wrong reports | PA-MPJPE mm of the people with 3D, cut at the bottom (lifted) | uncut: joints missing, "
             "PA-MPJPE"]
    for key, halves in r["runs"].items():
        a, b, c, u = halves["lsp+mpii"], halves["h36m+3dhp"], halves["cut"], halves["uncut"]
        pa = "--" if c["pa_mpjpe_mm"] is None else f"{c['pa_mpjpe_mm']:.1f} ({c['lifted']})"
        pa += f" | {u['inside_missing']:.3f}, " + ("--" if u["pa_mpjpe_mm"] is None else f"{u['pa_mpjpe_mm']:.1f}")
        lines.append(f"{key:14s} {a['cut_off_reported']:.2f} ({a['cut_off_reported_wrong']:.2f}) / "
                     f"{b['cut_off_reported']:.2f} ({b['cut_off_reported_wrong']:.2f}) | "
                     f"{a['inside_missing']:.3f} ({a['inside_right_missing']:.3f}) / {b['inside_missing']:.3f} "
                     f"({b['inside_right_missing']:.3f}) | {a['wrong']} / {b['wrong']} | {pa}")
    for name, v in r["chosen"].items():
        lines.append(f"{name}: {v['setting']}, wrong reports {v['off']['wrong']} -> {v['chosen']['wrong']}")
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--json", action="store_true", help="print one JSON object instead of tables")
    p.add_argument("--shared", type=Path, default=REPO.parent / "shared")
    p.add_argument("--threads", type=int, default=1, help="ONNX Runtime threads")
    p.add_argument("--keypoints", default=",".join(KEYPOINTS))
    p.add_argument("--detectors", default=",".join(DETECTORS))
    p.add_argument("--conditions", default=",".join(CONDITION_NAMES), help="photo conditions (\"\" = videos only)")
    p.add_argument("--video-frames", type=int, default=150, help="frames of each shared video (0 = skip videos)")
    p.add_argument("--video-starts", default="0",
                   help="comma-separated first frames: each video is followed from each for --video-frames")
    p.add_argument("--video-combos", default=",".join(VIDEO_COMBOS))
    p.add_argument("--video-condition", default="clean", choices=tuple(CONDITIONS),
                   help="every video frame degraded as the photos are (default: as recorded)")
    p.add_argument("--refine", action="store_true", help="only the 3D-feedback study")
    p.add_argument("--flip", action="store_true", help="only the flip-test study (the --keypoints networks)")
    p.add_argument("--video", type=int, default=0, metavar="N", help="only the real-time check on N demo frames")
    p.add_argument("--cut", action="store_true", help="only the study of people cut by the image's bottom edge")
    p.add_argument("--edge", action="store_true", help="only the study of keypoints of people cut by the image's edge")
    p.add_argument("--video-repeats", type=int, default=1)
    p.add_argument("--pose2d", action="append", default=[], metavar="KEY=VALUE",
                   help="a [pose2d] setting other than the default (TOML value) for the photos, the live rows "
                        "of the videos and --video; repeatable")
    args = p.parse_args(argv)
    load = os.getloadavg()[0]
    data = args.shared / "data"
    try:
        overrides = dict(parse_setting(s, "--pose2d") for s in args.pose2d)
    except ConfigError as e:
        raise SystemExit(f"error: {e}") from None
    if args.video:
        r = realtime_study(data / "video" / "deepstream_Retail02_short.mp4", args.video, args.video_repeats, overrides)
        result = {"realtime": r, "cpus": os.cpu_count(), "load": load}
        print(json.dumps(result) if args.json else
              f"VideoFollower.estimate, {r['frames']} frames of {r['video']}, {overrides or 'defaults'}: p50 "
              f"{r['ms_p50']:.1f} ms, p95 {r['ms_p95']:.1f} ms (passes p50 {r['passes_ms_p50']}); phases p50 "
              + ", ".join(f"{k} {r[k + '_ms_p50']:.1f}" for k in ("detect", "crop", "infer", "decode"))
              + f"; detector runs {r['detector_runs']}; people/frame {r['people_per_frame']:.2f}; load {load:.1f}")
        return 0
    if args.cut:
        result = {"cut": cut_study(data / "images" / "photos", overrides, args.threads)}
        print(json.dumps(result) if args.json else cut_table(result))
        return 0
    samples = load_annotated(data / "images" / "annotated")
    images = {s.image: load_image(s.image) for s in samples}
    if args.refine:
        result = {"refine": refine_study(samples, images, Config().pose2d.model, args.threads)}
        print(json.dumps(result) if args.json else refine_table(result))
        return 0
    if args.edge:
        result = {"edge": edge_study(samples, images, data / "images" / "annotated", args.threads, overrides)}
        print(json.dumps(result) if args.json else edge_table(result))
        return 0
    if args.flip:
        result = {"flip": flip_study(samples, images, tuple(args.keypoints.split(",")), args.threads)}
        print(json.dumps(result) if args.json else flip_table(result))
        return 0
    conditions = tuple(c for c in args.conditions.split(",") if c)
    result = {"samples": len(samples), "threads": args.threads, "cpus": os.cpu_count(), "load": load,
              "conditions": conditions,
              "matrix": matrix(samples, images, tuple(args.keypoints.split(",")), tuple(args.detectors.split(",")),
                               args.threads, conditions, overrides)}
    if args.video_frames:
        videos = [data / "video" / "deepstream_Retail02_short.mp4", data / "video" / "mmdeploy_arm_wrestling.mp4"]
        result["video"] = video_counts(videos, args.video_frames, tuple(c for c in args.video_combos.split(",") if c),
                                       args.threads, tuple(int(v) for v in args.video_starts.split(",")), overrides,
                                       args.video_condition)
        result["video_condition"] = args.video_condition
    result["load_after"] = os.getloadavg()[0]
    print(json.dumps(result) if args.json else matrix_table(result))
    return 0


if __name__ == "__main__":
    sys.exit(main())
