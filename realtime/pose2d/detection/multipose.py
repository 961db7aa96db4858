"""MoveNet MultiPose as a person detector: its centres, boxes and COCO-17 keypoints (``movenet.py``).

Bottom-up and full-body: it finds people by their body centres, not their faces, so people seen
from behind, small or partly hidden are found where the BlazePose detector misses them. Its
keypoints come along in ``Detection.keypoints``; the keypoint network still runs on each person's
crop (finer, and the source of the belief maps).
"""
from __future__ import annotations

import numpy as np

from realtime.pose2d.detection.base import Detection, PersonDetector, box_detection
from realtime.pose2d.movenet import decode_multipose, multipose_people

#: Centres decoded per region: the upstream graph keeps 6; a tile of a crowd holds more.
MAX_PEOPLE = 10


class MultiPoseDetector(PersonDetector):

    def decode(self, outputs: dict[str, np.ndarray], n: int) -> list[list[Detection]]:
        o = outputs
        rows = decode_multipose(o["heatmaps"], o["centres"], o["regress"], o["offsets"], o["box_scale"],
                                o["box_offset"], MAX_PEOPLE)
        found = []
        for people in multipose_people(rows, self.spec.input_size, self.min_score):
            keypoints = np.concatenate([people.keypoints, people.confidence[..., None]], axis=-1)
            found.append([box_detection(s, b, self.spec.box_scale, k)
                          for s, b, k in zip(people.scores, people.boxes, keypoints)])
        return found
