"""Real photos with ground-truth 3D: the Human3.6M and MPI-INF-3DHP frames of the shared annotated set.

Each frame holds one person with camera-frame 3D joints (metres), their 2D projection, and the
camera's intrinsics; Human3.6M also gives extrinsics, so its camera pitch is known. The joint
correspondence to ``realtime.skeleton.JOINTS3D`` is written down here once:

* limbs (hips, knees, ankles, shoulders, elbows, wrists): the dataset's joint of that name;
* ``pelvis`` = mid-hips and ``thorax`` = mid-shoulders, computed from the dataset's hips and
  shoulders exactly as ``realtime.mocap`` computes them from a mocap rig (Human3.6M's root *is* its
  mid-hips; its "thorax" joint sits 4-8 cm above mid-shoulders and is not used);
* ``head_top``: both datasets' head top; ``neck``: MPI-INF-3DHP's neck, none in Human3.6M (its
  "neck/nose" joint is near the nose, not LSP's upper neck).

Scores (:data:`EVAL_JOINTS`) use the 14 joints whose definition every skeleton shares: pelvis,
thorax and the 12 limb joints; head top and neck are placed differently by every dataset.
The 2D keypoints (LSP-14) are ``realtime.pose2d.evaluation``'s mapping of the same annotations.
"""
from __future__ import annotations

import math
import pickle
from dataclasses import dataclass
from pathlib import Path

import cv2
import numpy as np

from realtime.lifting.conventions import KeypointConvention, fit_2d, fit_proportions
from realtime.pose2d.evaluation import H36M, MPI_INF_3DHP, Sample
from realtime.skeleton import JOINTS3D, LSP14

#: JOINTS3D indices scored on real frames: pelvis, thorax and the 12 limb joints.
EVAL_JOINTS: tuple[int, ...] = tuple(JOINTS3D.index(n) for n in JOINTS3D if n not in ("head_top", "neck"))

_H36M_FILE = "h36m/test_h36m_body3d.npz"
_3DHP_FILES = ("mpi_inf_3dhp/test_3dhp_test.npz", "mpi_inf_3dhp/test_3dhp_train.npz")


class AnnotatedError(ValueError):
    """An annotated 3D file is missing or malformed; the message names it."""


@dataclass(frozen=True)
class Frame3D:
    """One annotated person with 3D ground truth and the camera that saw them."""

    dataset: str             # "h36m" | "mpi_inf_3dhp"
    image: Path
    camera: str              # the dataset's camera id ("S1/54138969", "TS1", "S4_Seq2_Cam0")
    keypoints2d: np.ndarray  # (14, 2) px, LSP-14, image y down
    visible2d: np.ndarray    # (14,) bool: the joint is annotated
    joints3d: np.ndarray     # (16, 3) m, JOINTS3D, camera frame with x right, y up, z towards the viewer; NaN = none
    focal_px: tuple[float, float]
    centre_px: tuple[float, float]
    size: tuple[int, int]    # (width, height) of the image
    #: Downward pitch of the optical axis (degrees) from the extrinsics; None where none are known.
    pitch_deg: float | None

    @property
    def name(self) -> str:
        return self.image.stem

    def project(self, joints: np.ndarray) -> np.ndarray:
        """(..., 3) camera-frame points (our axes) -> (..., 2) pixels through this camera (no distortion)."""
        cam = np.asarray(joints, np.float64) * [1.0, -1.0, -1.0]
        return cam[..., :2] / cam[..., 2:] * self.focal_px + self.centre_px

    def sample(self) -> Sample:
        """The same person as a 2D evaluation sample (for matching detections by box)."""
        return Sample(self.dataset, self.image, self.keypoints2d, self.visible2d)


def _joints3d(s: np.ndarray, index: dict[str, int | None]) -> np.ndarray:
    """Dataset camera-frame joints (x right, y down, z forward) -> JOINTS3D in our axes (y up, z back)."""
    out = np.full((len(JOINTS3D), 3), np.nan)
    for j, name in enumerate(JOINTS3D[:len(LSP14)]):
        if index.get(name) is not None:
            out[j] = s[index[name]]
    out[JOINTS3D.index("pelvis")] = 0.5 * (out[JOINTS3D.index("r_hip")] + out[JOINTS3D.index("l_hip")])
    out[JOINTS3D.index("thorax")] = 0.5 * (out[JOINTS3D.index("r_shoulder")] + out[JOINTS3D.index("l_shoulder")])
    return out * [1.0, -1.0, -1.0]


def _load(path: Path) -> dict:
    try:
        with np.load(path) as z:
            return {k: z[k] for k in z.files}
    except FileNotFoundError:
        raise AnnotatedError(f"{path}: not found (the shared annotated images: ../shared/data/images/annotated)") from None


def _cameras(path: Path) -> dict:
    try:
        with open(path, "rb") as f:
            return pickle.load(f)
    except FileNotFoundError:
        raise AnnotatedError(f"{path}: camera file not found") from None


def _pitch(rotation: np.ndarray) -> float:
    """Human3.6M stores camera-to-world rotations (world z up): the optical axis is the third column."""
    return math.degrees(math.asin(-float(rotation[2, 2])))


def load_annotated3d(root: str | Path) -> list[Frame3D]:
    """Every frame with 3D ground truth under ``root`` (``../shared/data/images/annotated``), Human3.6M first."""
    root = Path(root)
    frames: list[Frame3D] = []
    cams = _cameras(root / "h36m" / "cameras.pkl")
    z = _load(root / _H36M_FILE)
    for name, part, s in zip(z["imgname"], z["part"], z["S"]):
        subject, rest = str(name).split("/", 1)
        cam_id = rest.split(".")[1].split("/")[0]
        if (subject, cam_id) not in cams:
            raise AnnotatedError(f"{root / _H36M_FILE}: {name}: no camera {subject}/{cam_id} in cameras.pkl")
        cam = cams[(subject, cam_id)]
        frames.append(_frame("h36m", root / "h36m" / str(name), f"{subject}/{cam_id}", part, s, H36M, cam,
                             _pitch(np.asarray(cam["R"]))))
    for file, cam_file in zip(_3DHP_FILES, ("cameras_test.pkl", "cameras_train.pkl")):
        cams = _cameras(root / "mpi_inf_3dhp" / cam_file)
        z = _load(root / file)
        for name, part, s in zip(z["imgname"], z["part"], z["S"]):
            key = str(name).rsplit("_", 1)[0]
            if key not in cams:
                raise AnnotatedError(f"{root / file}: {name}: no camera {key} in {cam_file}")
            # The 3DHP extrinsics' convention cannot be told apart from these frames: pitch unknown.
            frames.append(_frame("mpi_inf_3dhp", root / "mpi_inf_3dhp" / str(name), key, part, s,
                                 MPI_INF_3DHP, cams[key], None))
    return frames


def _frame(dataset, image, camera, part, s, index, cam, pitch) -> Frame3D:
    part, s = np.asarray(part, np.float64), np.asarray(s, np.float64)
    kp = np.zeros((len(LSP14), 2))
    visible = np.zeros(len(LSP14), bool)
    for j, name in enumerate(LSP14):
        k = index[name]
        if k is not None:
            kp[j], visible[j] = part[k, :2], part[k, 2] > 0
    f, c = np.ravel(cam["f"]), np.ravel(cam["c"])
    return Frame3D(dataset, image, camera, kp, visible, _joints3d(s[:, :3], index),
                   (float(f[0]), float(f[1])), (float(c[0]), float(c[1])), _image_size(image), pitch)


def _image_size(path: Path) -> tuple[int, int]:
    """(width, height) read from the file (the 3DHP camera files' sizes are not all right)."""
    image = cv2.imread(str(path), cv2.IMREAD_GRAYSCALE)
    if image is None:
        raise AnnotatedError(f"{path}: image missing or unreadable")
    return int(image.shape[1]), int(image.shape[0])


def dataset_convention(frames: list[Frame3D], mocap: np.ndarray, name: str) -> KeypointConvention:
    """Where the frames' dataset puts hips, shoulders, neck and head top relative to mocap joints:
    its skeleton's proportions (``frames``, one dataset) against the mocap poses' (``mocap``, (N,16,3))."""
    return fit_proportions(np.stack([f.joints3d for f in frames]), mocap, name)


def model_convention(frames: list[Frame3D], keypoints: np.ndarray, confidence: np.ndarray,
                     datasets: dict[str, KeypointConvention], name: str, min_confidence: float = 0.05
                     ) -> KeypointConvention:
    """A 2D model's convention from its keypoints on ``frames`` ((N,14,2), (N,14); NaN = no person): the
    ground truth is taken back to mocap joints through each frame's dataset convention (``datasets``),
    projected by the frame's camera and compared with the keypoints in 2D."""
    reference = np.full((len(frames), len(JOINTS3D), 2), np.nan)
    for i, f in enumerate(frames):
        known = np.isfinite(f.joints3d).all(-1)
        back = np.linalg.inv(datasets[f.dataset].matrix) @ np.where(known[:, None], f.joints3d, 0.0)
        reference[i] = np.where(known[:, None], f.project(back), np.nan)
    visible = (np.asarray(confidence) >= min_confidence) & np.isfinite(keypoints).all(-1)
    return fit_2d(np.asarray(keypoints, np.float64), visible, reference, name)
