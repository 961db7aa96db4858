"""Cost of the downstream stages per person and frame: rig rotations, forward kinematics, a VMC
bundle (built and sent over loopback UDP), a BVH export. Poses are a real CMU mocap clip.

    python tools/bench_downstream.py [--frames 300] [--json]

Times are CPU seconds of this process (``time.process_time``), so other load on the machine
inflates them less than wall time would.
"""
from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path

import numpy as np

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))

from realtime import skeleton as sk  # noqa: E402
from realtime.export.bvh import bvh_text  # noqa: E402
from realtime.mocap import load_clip  # noqa: E402
from realtime.outputs.vmc import VmcSender  # noqa: E402
from realtime.rig import HumanoidRig  # noqa: E402

CLIP = Path("data/mocap/cmu/bvh_cgspeed/02/02_01.bvh")


def _per_item(fn, items) -> float:
    start = time.process_time()
    for x in items:
        fn(x)
    return (time.process_time() - start) / len(items)


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--shared", type=Path, default=REPO.parent / "shared")
    p.add_argument("--frames", type=int, default=300)
    p.add_argument("--port", type=int, default=39539, help="loopback UDP port the VMC bundles go to")
    p.add_argument("--json", action="store_true")
    args = p.parse_args(argv)
    joints = load_clip(args.shared / CLIP).joints[: args.frames].astype(np.float64)
    rig = HumanoidRig.from_joints(joints[0], sk.JOINTS3D)
    poses = [rig.pose(j) for j in joints]
    sender = VmcSender(rig, "127.0.0.1", args.port)
    bvh_s = _per_item(lambda _: bvh_text(rig, poses, 1 / 30), [None]) / len(poses)
    results = {
        "frames": len(joints),
        "rig_pose_ms": 1e3 * _per_item(rig.pose, joints),
        "forward_kinematics_ms": 1e3 * _per_item(rig.forward, poses),
        "vmc_bundle_send_ms": 1e3 * _per_item(lambda pose: sender.send(pose, 0.0), poses),
        "bvh_export_ms_per_frame": 1e3 * bvh_s,
    }
    if args.json:
        print(json.dumps(results))
    else:
        print(f"downstream costs per person and frame (CPU ms, {results['frames']} frames of {CLIP.name})")
        print(f"{'stage':<28}{'ms':>8}")
        for key, value in results.items():
            if key != "frames":
                print(f"{key:<28}{value:>8.3f}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
