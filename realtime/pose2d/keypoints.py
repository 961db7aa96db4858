"""Reading a keypoint network's outputs: LSP-14 keypoints in crop pixels, confidences, belief maps.

One reader per output kind (``ModelSpec.decoder``), so the pipeline treats every network alike:

* ``lsp_maps`` (the CPM): LSP-14 belief maps at half the crop's resolution, decoded with sub-pixel
  peaks (``decode.py``).
* ``mpii_maps`` (EfficientPose): MPII-16 belief maps at the crop's resolution; the 14 LSP joints
  are among them (head top and upper neck included), so nothing is derived.
* ``movenet``: MoveNet's heads decoded as the upstream graph does (``movenet.py``); its COCO-17
  keypoint heatmaps are the belief maps of the 12 limb joints.
* ``blazepose``: BlazePose landmarks with visibility x pose presence; no belief maps.

COCO and BlazePose have no upper neck or head top: both are placed on the line from the
shoulders' middle through the ears' middle (``landmarks.py``). Joints whose network has no map for
them are marked in ``has_map``: the 3D feedback then leaves them as decoded.
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Callable

import numpy as np

from realtime.pose2d.decode import decode_belief_maps, map_to_crop
from realtime.pose2d.landmarks import COCO_TO_LSP, blazepose_to_lsp14, coco_to_lsp14
from realtime.pose2d.movenet import decode_singlepose
from realtime.networks import ModelSpec
from realtime.skeleton import FLIP2D, LSP14

#: MPII-16 index of each LSP-14 joint (EfficientPose's output order).
MPII_ORDER = ("head_top", "neck", "r_shoulder", "r_elbow", "r_wrist", "thorax", "l_shoulder", "l_elbow", "l_wrist",
              "pelvis", "r_hip", "r_knee", "r_ankle", "l_hip", "l_knee", "l_ankle")
MPII_TO_LSP = [MPII_ORDER.index(name) for name in LSP14]


@dataclass(frozen=True)
class KeypointOutput:
    """What one batch of crops gave: keypoints and confidences, and the belief maps behind them."""

    keypoints: np.ndarray           # (N, 14, 2) x, y in crop pixels, LSP-14 order
    confidence: np.ndarray          # (N, 14) in [0, 1]; 0 below the threshold (reported missing)
    #: (N, h, w, 14) belief maps in LSP-14 order (zeros where ``has_map`` is False), or None.
    maps: np.ndarray | None = None
    #: (14,) which joints have a map (the others are derived, e.g. the neck from the shoulders).
    has_map: np.ndarray | None = None

    def to_maps(self, crop_size: int) -> np.ndarray:
        """``keypoints`` in belief-map pixels (pixel centres at integers)."""
        stride = crop_size / self.maps.shape[1]
        return (self.keypoints + 0.5) / stride - 0.5


def _lsp_maps(spec: ModelSpec, out: dict[str, np.ndarray], threshold: float) -> KeypointOutput:
    maps = out["belief_maps"]
    points, confidence = decode_belief_maps(maps, threshold)
    return KeypointOutput(map_to_crop(points, maps.shape[1], spec.input_size[0]), confidence, maps,
                          np.ones(len(LSP14), bool))


def _mpii_maps(spec: ModelSpec, out: dict[str, np.ndarray], threshold: float) -> KeypointOutput:
    maps = np.ascontiguousarray(out["belief_maps"][..., MPII_TO_LSP])
    points, confidence = decode_belief_maps(maps, threshold)
    return KeypointOutput(map_to_crop(points, maps.shape[1], spec.input_size[0]), confidence, maps,
                          np.ones(len(LSP14), bool))


def _movenet(spec: ModelSpec, out: dict[str, np.ndarray], threshold: float) -> KeypointOutput:
    heat = out["heatmaps"]
    decoded = decode_singlepose(heat, out["centres"], out["regress"], out["offsets"])
    size = spec.input_size[0]
    points = np.stack([decoded[..., 1], decoded[..., 0]], axis=-1) * size - 0.5
    keypoints, confidence = coco_to_lsp14(points, decoded[..., 2])
    confidence[confidence < threshold] = 0.0
    maps = np.zeros((*heat.shape[:3], len(LSP14)), np.float32)
    has_map = np.zeros(len(LSP14), bool)
    for name, k in COCO_TO_LSP.items():
        j = LSP14.index(name)
        maps[..., j] = heat[..., k]
        has_map[j] = True
    return KeypointOutput(keypoints, confidence, maps, has_map)


def _blazepose(spec: ModelSpec, out: dict[str, np.ndarray], threshold: float) -> KeypointOutput:
    """Landmark visibility times the pose-presence flag: visibility alone stays high on a crop that
    holds no person (the model assumes one is there), the flag is what MediaPipe tracks with."""
    landmarks, flags = out["landmarks"], out["pose_flag"]
    points, confidence = blazepose_to_lsp14(landmarks)
    confidence *= np.clip(flags, 0.0, 1.0).astype(np.float32)
    confidence[confidence < threshold] = 0.0
    return KeypointOutput(points, confidence)


def merge_mirrored(upright: KeypointOutput, mirrored: KeypointOutput, crop_size: int, agree: float
                   ) -> KeypointOutput:
    """The flip test (as pose benchmarks score networks): the same crops read again mirrored, that read
    mapped back (x mirrored, left and right swapped) and merged with the first. Why: a network's
    errors on a crop and on its mirror image are partly independent, so where the two reads agree
    (within ``agree`` x the crop's side) their confidence-weighted mean is steadier than either; a
    joint they disagree on (a left-right mix-up) comes from the surer read. Where they disagree on
    most joints they followed different people (a crop holding two, the mirrored read drawn to a
    more salient neighbour): the upright read stays whole. Only positions change: the confidences,
    and so who is reported, stay the upright read's (``upright`` may be keypoints alone)."""
    back = mirrored.keypoints[:, FLIP2D].copy()
    back[..., 0] = crop_size - 1 - back[..., 0]
    back_conf = mirrored.confidence[:, FLIP2D]
    conf = upright.confidence
    both = (conf > 0) & (back_conf > 0)
    close = both & (np.linalg.norm(upright.keypoints - back, axis=-1) <= agree * crop_size)
    with np.errstate(invalid="ignore", divide="ignore"):
        mean = (conf[..., None] * upright.keypoints + back_conf[..., None] * back) / (conf + back_conf)[..., None]
    points = np.where(close[..., None], mean, np.where((both & (back_conf > conf))[..., None], back, upright.keypoints))
    apart = close.sum(1) < 0.5 * both.sum(1)
    points[apart] = upright.keypoints[apart]
    return KeypointOutput(points, upright.confidence)


READERS: dict[str, Callable[[ModelSpec, dict[str, np.ndarray], float], KeypointOutput]] = {
    "lsp_maps": _lsp_maps, "mpii_maps": _mpii_maps, "movenet": _movenet, "blazepose": _blazepose,
}


def read_keypoints(spec: ModelSpec, outputs: dict[str, np.ndarray], threshold: float) -> KeypointOutput:
    """The network ``spec``'s outputs for a batch of crops -> LSP-14 keypoints (crop pixels)."""
    try:
        reader = READERS[spec.decoder]
    except KeyError:
        raise ValueError(f"{spec.name} is not a keypoint network (decoder {spec.decoder!r})") from None
    missing = [k for k in spec.outputs if k not in outputs]
    if missing:
        raise ValueError(f"{spec.name}: outputs {missing} missing from {sorted(outputs)}")
    return reader(spec, outputs, threshold)
