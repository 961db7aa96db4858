"""Mocap readers: speed, agreement between the skeleton conventions, handedness, the split.

* speed: one clip of each convention read to JOINTS3D (best of 3), and the whole dataset at 10 fps
  without and with the clip cache;
* agreement: clips recorded both as AMC and as MotionBuilder BVH (subjects 02, 03) compared joint
  by joint (pelvis-centred, mm) and bone by bone; median bone lengths per convention over all clips;
* handedness: in walking clips, the share of frames whose right hip is on the walker's right;
* split: frames and subjects per split.

    python tools/bench_mocap.py [--json] [--mocap DIR] [--libraries] [--fit-motionbuilder]

``--libraries`` also times the PyPI readers ``bvhio`` and ``bvh`` where importable (they are not
dependencies: ``pip install bvhio==1.5.4 bvh==0.3`` into a scratch target to compare).
``--fit-motionbuilder`` prints the least-squares weights behind ``joints.MOTIONBUILDER``.
"""
from __future__ import annotations

import argparse
import json
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
from tqdm import tqdm

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))

from realtime.mocap import load_clip, load_dataset, subject_split  # noqa: E402
from realtime.mocap.bvh import parse_bvh, read_bvh  # noqa: E402
from realtime.skeleton import BONES3D, JOINTS3D  # noqa: E402

SPEED_FILES = ("asf_amc/01/01_06.amc", "bvh_cgspeed/114/114_13.bvh", "bvh_cgspeed/13/13_10.bvh",
               "bvh_cgspeed/16/16_01.bvh")
PAIRS = ("02_01", "02_02", "02_03", "02_04", "03_01", "03_02")
PELVIS = JOINTS3D.index("pelvis")


def speed(root: Path) -> list[dict]:
    rows = []
    for name in tqdm(SPEED_FILES, desc="speed", unit="file", disable=None, leave=False):
        best = np.inf
        for _ in range(3):
            start = time.perf_counter()
            clip = load_clip(root / name)
            best = min(best, time.perf_counter() - start)
        rows.append({"file": name, "convention": clip.convention, "frames": clip.frames,
                     "seconds": round(best, 3), "frames_per_s": round(clip.frames / best)})
    return rows


def libraries(root: Path) -> list[dict]:
    """Time the PyPI readers on 35_01.bvh (ZYX and ZXY joints mixed) and compare bvhio's positions."""
    path = root / "bvh_cgspeed/35/35_01.bvh"
    rows = []
    start = time.perf_counter()
    motion = read_bvh(path)
    rows.append({"reader": "realtime.mocap read_bvh (parse + FK, all frames)",
                 "frames": len(motion.positions), "seconds": round(time.perf_counter() - start, 3)})
    try:
        import bvhio
        start = time.perf_counter()
        hierarchy = bvhio.readAsHierarchy(str(path))
        joints = hierarchy.layout()
        theirs = []
        for frame in range(len(motion.positions)):
            hierarchy.loadPose(frame)
            theirs.append([list(j.PositionWorld) for j, _, _ in joints])
        seconds = time.perf_counter() - start
        ours = motion.positions[:, [motion.names.index(j.Name) for j, _, _ in joints]]
        rows.append({"reader": "bvhio 1.5.4 (readAsHierarchy + loadPose per frame)",
                     "frames": len(theirs), "seconds": round(seconds, 3),
                     "max_diff_to_ours": float(np.abs(np.array(theirs) - ours).max())})
    except ImportError:
        pass
    try:
        from bvh import Bvh
        start = time.perf_counter()
        with open(path) as f:
            mocap = Bvh(f.read())
        for i in range(mocap.nframes):
            for joint in mocap.get_joints_names():
                mocap.frame_joint_channels(i, joint, mocap.joint_channels(joint))
        rows.append({"reader": "bvh 0.3 (parse + read every channel; no FK)",
                     "frames": mocap.nframes, "seconds": round(time.perf_counter() - start, 3)})
    except ImportError:
        pass
    return rows


def dataset_load(root: Path) -> dict:
    out = {}
    with tempfile.TemporaryDirectory() as cache:
        for label in ("cold", "cached"):
            wall, cpu = time.perf_counter(), time.process_time()
            ds = load_dataset(root, fps=10.0, progress=False, cache_dir=cache)
            out[label] = {"wall_s": round(time.perf_counter() - wall, 2),
                          "cpu_s": round(time.process_time() - cpu, 2)}
    out.update(clips=len(ds.clips), frames_10fps=ds.frames, skipped=len(ds.skipped))
    split: dict[str, dict] = {}
    for clip in ds.clips:
        entry = split.setdefault(subject_split(clip.subject), {"frames": 0, "subjects": set()})
        entry["frames"] += clip.frames
        entry["subjects"].add(clip.subject)
    out["split"] = {k: {"frames": v["frames"], "percent": round(100 * v["frames"] / ds.frames, 1),
                        "subjects": sorted(v["subjects"], key=int)} for k, v in sorted(split.items())}
    conventions: dict[str, list[np.ndarray]] = {}
    for clip in ds.clips:
        conventions.setdefault(clip.convention, []).append(clip.joints)
    out["bone_mm"] = {name: _bone_lengths(np.concatenate(js)) for name, js in conventions.items()}
    out["right_side_percent"] = _handedness(root, ds.clips)
    return out


def _bone_lengths(joints: np.ndarray) -> dict[str, int]:
    return {f"{JOINTS3D[c]}-{JOINTS3D[p]}":
            int(round(1000 * np.median(np.linalg.norm(joints[:, c] - joints[:, p], axis=-1))))
            for c, p in BONES3D}


def _handedness(root: Path, clips: list) -> dict[str, float]:
    """% of moving frames of walking clips whose r_hip is on the side ``heading x up`` points to."""
    walking = set()
    index = root / "clip_index.csv"
    if index.exists():
        for line in index.read_text(encoding="utf-8", errors="replace").splitlines():
            name, _, rest = line.partition(",")
            if "walk" in rest.split(",")[0].lower():
                walking.add(name.strip())
    good: dict[str, list[int]] = {}
    for clip in clips:
        if f"{clip.subject}_{clip.trial}" not in walking:
            continue
        pelvis = clip.joints[:, PELVIS]
        heading = np.gradient(pelvis, axis=0) * clip.fps
        heading[:, 1] = 0
        moving = np.linalg.norm(heading, axis=-1) > 0.3
        right = np.cross(heading, [0.0, 1.0, 0.0])
        across = clip.joints[:, JOINTS3D.index("r_hip")] - clip.joints[:, JOINTS3D.index("l_hip")]
        ok = (np.einsum("ij,ij->i", right, across) > 0)[moving]
        entry = good.setdefault(clip.convention, [0, 0])
        entry[0] += int(ok.sum())
        entry[1] += int(ok.size)
    return {k: round(100 * a / max(b, 1), 1) for k, (a, b) in good.items()}


def agreement(root: Path) -> dict:
    """AMC vs MotionBuilder BVH of the same recordings, after dropping the BVH's rest frame."""
    per_joint, per_bone = [], []
    for trial in PAIRS:
        subject = trial.split("_")[0]
        amc = load_clip(root / f"asf_amc/{subject}/{trial}.amc").joints
        bvh = load_clip(root / f"bvh_cgspeed/{subject}/{trial}.bvh").joints
        n = min(len(amc), len(bvh))
        a = amc[:n] - amc[:n, PELVIS:PELVIS + 1]
        b = bvh[:n] - bvh[:n, PELVIS:PELVIS + 1]
        per_joint.append(np.linalg.norm(a - b, axis=-1))
        la = np.stack([np.linalg.norm(a[:, c] - a[:, p], axis=-1) for c, p in BONES3D], 1)
        lb = np.stack([np.linalg.norm(b[:, c] - b[:, p], axis=-1) for c, p in BONES3D], 1)
        per_bone.append(np.abs(la.mean(0) - lb.mean(0)))
    joints = np.concatenate(per_joint)
    bones = np.mean(per_bone, axis=0)
    return {"joint_mm": {n: int(round(1000 * joints[:, j].mean())) for j, n in enumerate(JOINTS3D)},
            "mean_joint_mm": int(round(1000 * joints.mean())),
            "bone_length_diff_mm": {f"{JOINTS3D[c]}-{JOINTS3D[p]}": int(round(1000 * d))
                                    for (c, p), d in zip(BONES3D, bones)},
            "mean_bone_length_diff_mm": int(round(1000 * bones.mean()))}


def fit_motionbuilder(root: Path) -> dict[str, dict[str, float]]:
    """Affine weights (summing to 1) of MotionBuilder points best matching the AMC joints."""
    candidates = {"shoulder": ("Collar", "Shldr", "=chest", "=neck"), "elbow": ("Shldr", "ForeArm"),
                  "wrist": ("ForeArm", "Hand"), "knee": ("Thigh", "Shin"), "ankle": ("Shin", "Foot"),
                  "neck": ("=chest", "=neck"), "head_top": ("=chest", "=neck")}
    targets, points = [], []
    for trial in PAIRS:
        subject = trial.split("_")[0]
        amc = load_clip(root / f"asf_amc/{subject}/{trial}.amc").joints
        motion = parse_bvh(root / f"bvh_cgspeed/{subject}/{trial}.bvh").motion()
        named = {n: motion.positions[1:, i] * 0.01 for i, n in enumerate(motion.names)}
        n = min(len(amc), len(named["hip"]))
        origin = (named["rThigh"][:n] + named["lThigh"][:n]) / 2
        targets.append(amc[:n] - amc[:n, PELVIS:PELVIS + 1])
        points.append({k: v[:n] - origin for k, v in named.items()})
    target = np.concatenate(targets)
    named = {k: np.concatenate([p[k] for p in points]) for k in points[0]}
    fitted = {}
    for joint, names in candidates.items():
        sides = ("r", "l") if joint not in ("neck", "head_top") else ("",)
        y, xs = [], []
        for side in sides:
            full = [n[1:] if n.startswith("=") else side + n for n in names]
            y.append(target[:, JOINTS3D.index(f"{side}_{joint}" if side else joint)].reshape(-1))
            xs.append(np.stack([named[n].reshape(-1) for n in full], 1))
        y, x = np.concatenate(y), np.concatenate(xs)
        w = np.linalg.lstsq(x[:, :-1] - x[:, -1:], y - x[:, -1], rcond=None)[0]
        w = np.append(w, 1.0 - w.sum())
        error = np.linalg.norm((x @ w - y).reshape(-1, 3), axis=-1).mean()
        fitted[joint] = {**{n: round(float(v), 3) for n, v in zip(names, w)},
                         "error_mm": round(1000 * float(error))}
    return fitted


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--mocap", type=Path, default=REPO.parent / "shared/data/mocap/cmu")
    parser.add_argument("--json", action="store_true", help="print one JSON object")
    parser.add_argument("--libraries", action="store_true", help="also time bvhio and bvh")
    parser.add_argument("--fit-motionbuilder", action="store_true",
                        help="print the fitted MotionBuilder joint weights and exit")
    args = parser.parse_args()
    if args.fit_motionbuilder:
        print(json.dumps(fit_motionbuilder(args.mocap), indent=1))
        return 0
    result = {"speed": speed(args.mocap), "dataset": dataset_load(args.mocap),
              "agreement_amc_vs_motionbuilder": agreement(args.mocap)}
    if args.libraries:
        result["libraries"] = libraries(args.mocap)
    if args.json:
        print(json.dumps(result))
        return 0
    print("| file | convention | frames | seconds | frames/s |\n|---|---|---|---|---|")
    for r in result["speed"]:
        print(f"| {r['file']} | {r['convention']} | {r['frames']} | {r['seconds']} | {r['frames_per_s']} |")
    for r in result.get("libraries", []):
        rate = r["frames"] / r["seconds"]
        print(f"| {r['reader']} | 35_01.bvh | {r['frames']} | {r['seconds']} | {rate:.0f} |")
        if "max_diff_to_ours" in r:
            print(f"|   positions vs ours: max difference {r['max_diff_to_ours']:.1e} file units | | | | |")
    d = result["dataset"]
    print(f"\ndataset at 10 fps: {d['clips']} clips, {d['frames_10fps']} frames, {d['skipped']} skipped; "
          f"load cold {d['cold']['wall_s']} s wall / {d['cold']['cpu_s']} s CPU, "
          f"cached {d['cached']['wall_s']} s wall / {d['cached']['cpu_s']} s CPU")
    print("\n| split | frames | % | subjects |\n|---|---|---|---|")
    for name, s in d["split"].items():
        print(f"| {name} | {s['frames']} | {s['percent']} | {' '.join(s['subjects'])} |")
    print(f"\nright hip on the walker's right (walking clips, moving frames): {d['right_side_percent']}")
    conventions = list(d["bone_mm"])
    print("\n| bone (median mm) | " + " | ".join(conventions) + " |\n|---|" + "---|" * len(conventions))
    for bone in d["bone_mm"][conventions[0]]:
        print(f"| {bone} | " + " | ".join(str(d["bone_mm"][c][bone]) for c in conventions) + " |")
    a = result["agreement_amc_vs_motionbuilder"]
    print(f"\nAMC vs MotionBuilder BVH, same recordings ({', '.join(PAIRS)}): "
          f"mean joint distance {a['mean_joint_mm']} mm (pelvis-centred), "
          f"mean bone length difference {a['mean_bone_length_diff_mm']} mm")
    print("| joint | mm |\n|---|---|")
    for name, mm in a["joint_mm"].items():
        print(f"| {name} | {mm} |")
    return 0


if __name__ == "__main__":
    sys.exit(main())
