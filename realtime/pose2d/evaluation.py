"""2D evaluation: the annotated photos, degraded copies of them, PCK and person recall.

The annotated images (``../shared/data/images/annotated``, mmpose test data: LSP, MPII, Human3.6M,
MPI-INF-3DHP) hold one annotated person each; their joints are mapped to LSP-14 once here. A
person's ground-truth box is the box of their annotated joints (a keypoint box, the convention the
pipeline's boxes follow). Scores:

* **person recall**: a ground-truth person counts as found when a predicted box overlaps theirs
  with IoU >= 0.5;
* **PCK@alpha**: a joint is correct within ``alpha`` x the ground-truth box diagonal; end to end
  (the pipeline's own detector) a person nobody was matched to has every joint wrong;
* "12 joints" are the limb joints every source has (Human3.6M has no upper neck, COCO networks
  neither neck nor head top); "14" adds neck and head top where annotated.

Degradations model how unseen footage differs from sharp photos: Gaussian blur, JPEG compression,
low light with sensor noise, and people made small (the photo shrunk into a larger grey frame).
"""
from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path
from typing import Callable, Sequence

import cv2
import numpy as np

from realtime.boxes import iou_matrix
from realtime.networks import ModelSpec
from realtime.skeleton import LSP14

#: Limb joints: every dataset and network has them.
BODY12 = [i for i, n in enumerate(LSP14) if n not in ("head_top", "neck")]
ALL14 = list(range(len(LSP14)))

#: LSP's own joint order (joints_lsp2000.mat).
LSP_ORDER = ("r_ankle", "r_knee", "r_hip", "l_hip", "l_knee", "l_ankle", "r_wrist", "r_elbow", "r_shoulder",
             "l_shoulder", "l_elbow", "l_wrist", "neck", "head_top")
#: Each dataset's joint index for each LSP-14 joint (None: the dataset has no such joint).
MPII = {"head_top": 9, "neck": 8, "r_shoulder": 12, "r_elbow": 11, "r_wrist": 10, "l_shoulder": 13,
        "l_elbow": 14, "l_wrist": 15, "r_hip": 2, "r_knee": 1, "r_ankle": 0, "l_hip": 3, "l_knee": 4, "l_ankle": 5}
#: Human3.6M's 17 joints (mmpose body3d order); its "neck" is nearer the nose than LSP's upper neck.
H36M = {"head_top": 10, "neck": None, "r_shoulder": 14, "r_elbow": 15, "r_wrist": 16, "l_shoulder": 11,
        "l_elbow": 12, "l_wrist": 13, "r_hip": 1, "r_knee": 2, "r_ankle": 3, "l_hip": 4, "l_knee": 5, "l_ankle": 6}
#: MPI-INF-3DHP's 17 test joints begin with LSP-14 in LSP-14 order.
MPI_INF_3DHP = {name: i for i, name in enumerate(LSP14)}
#: Validation halves: settings are chosen on one and reported on the other.
SPLITS = {"lsp+mpii": ("lsp", "mpii"), "h36m+3dhp": ("h36m", "mpi_inf_3dhp")}


@dataclass(frozen=True)
class Sample:
    """One annotated person: the image, LSP-14 joints in its pixels, which joints are annotated."""

    dataset: str
    image: Path
    keypoints: np.ndarray   # (14, 2)
    valid: np.ndarray       # (14,) bool

    @property
    def box(self) -> np.ndarray:
        p = self.keypoints[self.valid]
        return np.concatenate([p.min(axis=0), p.max(axis=0)])


def _mapped(joints: np.ndarray, visible: np.ndarray, mapping: dict[str, int | None]) -> tuple[np.ndarray, np.ndarray]:
    kp = np.zeros((14, 2))
    valid = np.zeros(14, bool)
    for j, name in enumerate(LSP14):
        k = mapping[name]
        if k is not None:
            kp[j] = joints[k]
            valid[j] = bool(visible[k])
    return kp, valid


def load_annotated(root: str | Path) -> list[Sample]:
    """Every annotated person in the mmpose test-data files under ``root``, in LSP-14."""
    import scipy.io

    root = Path(root)
    samples = []
    lsp = scipy.io.loadmat(root / "lsp" / "joints_lsp2000.mat")["joints"]
    lsp_map = {name: LSP_ORDER.index(name) for name in LSP14}
    for image in sorted((root / "lsp").glob("im*.jpg")):
        j = lsp[:, :, int(image.stem[2:]) - 1].T
        samples.append(Sample("lsp", image, *_mapped(j[:, :2], np.ones(14), lsp_map)))
    for entry in json.loads((root / "mpii" / "test_mpii.json").read_text()):
        samples.append(Sample("mpii", root / "mpii" / entry["image"],
                              *_mapped(np.array(entry["joints"]), np.array(entry["joints_vis"]), MPII)))
    for name, files, mapping in (("h36m", ["h36m/test_h36m_body3d.npz"], H36M),
                                 ("mpi_inf_3dhp", ["mpi_inf_3dhp/test_3dhp_test.npz",
                                                   "mpi_inf_3dhp/test_3dhp_train.npz"], MPI_INF_3DHP)):
        for f in files:
            z = np.load(root / f)
            base = (root / f).parent
            for img, part in zip(z["imgname"], z["part"]):
                samples.append(Sample(name, base / str(img), *_mapped(part[:, :2], part[:, 2] > 0, mapping)))
    return samples


# -- degradations -------------------------------------------------------------------------------------------
def blur(image: np.ndarray, sigma: float = 2.0) -> np.ndarray:
    return cv2.GaussianBlur(image, (0, 0), sigma)


def jpeg(image: np.ndarray, quality: int = 20) -> np.ndarray:
    ok, data = cv2.imencode(".jpg", image, [cv2.IMWRITE_JPEG_QUALITY, quality])
    return cv2.imdecode(data, cv2.IMREAD_COLOR)


def dark(image: np.ndarray, gain: float = 0.25, noise: float = 4.0, seed: int = 0) -> np.ndarray:
    """Low light: a quarter of the light, then sensor noise (sigma in 8-bit levels)."""
    rng = np.random.default_rng(seed)
    out = image.astype(np.float32) * gain + rng.normal(0.0, noise, image.shape)
    return np.clip(out, 0, 255).astype(np.uint8)


def small(image: np.ndarray, factor: float = 3.0) -> tuple[np.ndarray, float, np.ndarray]:
    """The photo shrunk by ``factor`` and placed in the middle of a grey frame of the original size:
    the people become small in a wide view. Returns the frame, the scale and the offset of the photo
    in it (ground truth maps as ``p * scale + offset``)."""
    h, w = image.shape[:2]
    sw, sh = max(1, round(w / factor)), max(1, round(h / factor))
    shrunk = cv2.resize(image, (sw, sh), interpolation=cv2.INTER_AREA)
    frame = np.full_like(image, 114)
    x0, y0 = (w - sw) // 2, (h - sh) // 2
    frame[y0:y0 + sh, x0:x0 + sw] = shrunk
    scale = sw / w
    return frame, scale, np.array([x0 + 0.5 * scale - 0.5, y0 + 0.5 * scale - 0.5])


#: Conditions of the benchmark: name -> image transform (ground truth unchanged).
CONDITIONS: dict[str, Callable[[np.ndarray], np.ndarray]] = {
    "clean": lambda im: im, "blur2": blur, "jpeg20": jpeg, "dark": dark,
}


# -- scores -------------------------------------------------------------------------------------------------
def match(sample: Sample, boxes: np.ndarray) -> int | None:
    """The index of the predicted box (x0, y0, x1, y1) best overlapping the ground-truth person, if any."""
    boxes = np.asarray(boxes, np.float64).reshape(-1, 4)
    if not len(boxes):
        return None
    iou = iou_matrix(sample.box, boxes)[0]
    best = int(np.argmax(iou))
    return best if iou[best] > 0 else None


def found(sample: Sample, boxes: np.ndarray, threshold: float = 0.5) -> bool:
    """The ground-truth person is among ``boxes`` (IoU at least ``threshold``)."""
    boxes = np.asarray(boxes, np.float64).reshape(-1, 4)
    return bool(len(boxes)) and float(iou_matrix(sample.box, boxes)[0].max()) >= threshold


def pck(samples: Sequence[Sample], predictions: Sequence[np.ndarray | None], joints: Sequence[int] = BODY12,
        alpha: float = 0.1) -> float:
    """Fraction of annotated ``joints`` within ``alpha`` x the box diagonal; a None prediction (nobody
    matched) gets every joint wrong."""
    hits = total = 0
    for s, pred in zip(samples, predictions):
        use = s.valid & np.isin(np.arange(len(LSP14)), joints)
        total += int(use.sum())
        if pred is None:
            continue
        diag = float(np.hypot(*(s.box[2:] - s.box[:2])))
        err = np.linalg.norm(np.asarray(pred)[use] - s.keypoints[use], axis=1)
        hits += int((err <= alpha * diag).sum())
    return hits / max(total, 1)


def mean_error(samples: Sequence[Sample], predictions: Sequence[np.ndarray | None],
               joints: Sequence[int] = BODY12) -> float:
    """Mean pixel error over matched people's annotated ``joints``."""
    errors = []
    for s, pred in zip(samples, predictions):
        if pred is None:
            continue
        use = s.valid & np.isin(np.arange(len(LSP14)), joints)
        errors += list(np.linalg.norm(np.asarray(pred)[use] - s.keypoints[use], axis=1))
    return float(np.mean(errors)) if errors else float("nan")


class LiteRTModel:
    """An upstream .tflite file run in LiteRT (``ai-edge-litert``, a dev dependency) behind the
    backend interface, one image at a time: the reference our converted networks are checked against."""

    name = "litert"

    def __init__(self, path: str | Path, threads: int = 1, spec: "ModelSpec | None" = None):
        """``spec``: the registry entry, to name the outputs as our converted model does."""
        from ai_edge_litert.interpreter import Interpreter

        self.model = Path(path).stem
        self.interpreter = Interpreter(model_path=str(path), num_threads=threads)
        self.interpreter.allocate_tensors()
        self._input = self.interpreter.get_input_details()[0]
        self._outputs = self.interpreter.get_output_details()
        self.input_shape = tuple(int(v) for v in self._input["shape"][1:])
        self.output_names = [o["name"] for o in self._outputs]
        self._rename = dict(zip(spec.source_outputs, spec.outputs)) if spec is not None else {}

    def infer(self, batch: np.ndarray) -> dict[str, np.ndarray]:
        results: dict[str, list[np.ndarray]] = {n: [] for n in self.output_names}
        for x in batch:
            self.interpreter.set_tensor(self._input["index"], x[None].astype(self._input["dtype"]))
            self.interpreter.invoke()
            for o in self._outputs:
                results[o["name"]].append(self.interpreter.get_tensor(o["index"])[0].copy())
        return {self._rename.get(k, k): np.stack(v) for k, v in results.items()}

    def close(self) -> None:
        pass
