"""Print each tracked person's root and first bone rotations from a running pipeline (or a replay).

    python clients/python/subscribe.py [tcp://127.0.0.1:5560]
"""
import sys

from realtime.client import Subscriber
from realtime.rig import BONES, HumanoidRig
from realtime.skeleton import JOINTS3D

rigs = {}  # one humanoid rig per track, bone lengths from its first pose
with Subscriber(sys.argv[1] if len(sys.argv) > 1 else "tcp://127.0.0.1:5560") as sub:
    for frame in sub.frames():
        for p in frame.people:
            if p.track_id >= 0 and p.joints3d is not None:
                rig = rigs.setdefault(p.track_id, HumanoidRig.from_joints(p.joints3d, JOINTS3D))
                pose = rig.pose(p.joints3d, p.root)
                print(frame.seq, p.track_id, pose.root.round(3).tolist(),
                      {b: q.round(3).tolist() for b, q in zip(BONES[:2], pose.rotations)}, flush=True)
