"""Keypoint conventions: where a 2D source puts "hip", "shoulder", "neck", "head top" on a body,
relative to the joints of the mocap skeleton the prior is trained on.

A 2D network places a hip where its annotators clicked (COCO: the side of the hip, MPII: near the
hip joint); Human3.6M's and MPI-INF-3DHP's skeletons put their hips 27 cm apart where CMU's hip
joint centres are 16 cm apart. The prior knows only the mocap joints, so the lifter compares like
with like by predicting each keypoint as the source places it: a fixed linear combination of the
mocap joints, the :class:`KeypointConvention`'s matrix. Linear combinations commute with the
lifter's (weak perspective) projection, so the convention is folded into the lifter's design once
and costs nothing per person; the lifter's 3D output stays the mocap skeleton.

Six numbers describe a convention (1 and 0 = the mocap joint itself):

* ``hip_width``: hips at pelvis + w (hip - pelvis); ``hip_raise``: + u (thorax - pelvis);
* ``shoulder_width`` and ``shoulder_raise`` likewise about the thorax (raise along pelvis -> thorax);
* ``neck``: thorax + n (neck - thorax); ``head_top``: thorax + h (head top - thorax), from the
  source's thorax (pelvis and thorax are the mid-points of the source's hips and shoulders).

They are fitted from data the project has (``tools/fit_conventions.py``): a 3D dataset's
convention by matching its skeleton's proportions to the mocap's (:func:`fit_proportions`); a 2D
network's relative to a dataset's annotation, in 2D on the annotated photos (:func:`fit_2d`), then
composed with that dataset's (:meth:`KeypointConvention.then`).
"""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from realtime.skeleton import JOINTS3D

_J = {n: i for i, n in enumerate(JOINTS3D)}
PARAMETERS = ("hip_width", "hip_raise", "shoulder_width", "shoulder_raise", "neck", "head_top")
#: Bones no parameter moves (shins, forearms): the size reference of the proportions.
_LIMBS = (("r_knee", "r_ankle"), ("l_knee", "l_ankle"), ("r_elbow", "r_wrist"), ("l_elbow", "l_wrist"))


def _basis() -> dict[str, np.ndarray]:
    """Each parameter's (16,16) derivative of the convention matrix (the matrix is linear in them)."""
    out = {name: np.zeros((len(JOINTS3D), len(JOINTS3D))) for name in PARAMETERS}
    pelvis, thorax = _J["pelvis"], _J["thorax"]
    for side in "rl":
        hip, shoulder = _J[f"{side}_hip"], _J[f"{side}_shoulder"]
        out["hip_width"][hip, hip] += 1.0
        out["hip_width"][hip, pelvis] -= 1.0
        out["hip_raise"][hip, thorax] += 1.0
        out["hip_raise"][hip, pelvis] -= 1.0
        out["shoulder_width"][shoulder, shoulder] += 1.0
        out["shoulder_width"][shoulder, thorax] -= 1.0
        out["shoulder_raise"][shoulder, thorax] += 1.0
        out["shoulder_raise"][shoulder, pelvis] -= 1.0
    for name, joint in (("neck", "neck"), ("head_top", "head_top")):
        out[name][_J[joint], _J[joint]] += 1.0
        out[name][_J[joint], thorax] -= 1.0
    # pelvis and thorax are the mid-points of the source's own hips and shoulders, as every skeleton here
    # defines them (the mocap readers, realtime.pose2d.annotated3d); neck and head top hang off that thorax
    for name in ("hip_raise", "shoulder_raise"):
        middle, pair = (pelvis, ("r_hip", "l_hip")) if name == "hip_raise" else (thorax, ("r_shoulder", "l_shoulder"))
        out[name][middle] = 0.5 * (out[name][_J[pair[0]]] + out[name][_J[pair[1]]])
    out["shoulder_raise"][[_J["neck"], _J["head_top"]]] = out["shoulder_raise"][thorax]
    return out


_BASIS = _basis()
#: The matrix of the identity convention with every parameter at 0 (widths and lengths then multiply in).
_ZERO = np.eye(len(JOINTS3D)) - sum(_BASIS[n] for n in ("hip_width", "shoulder_width", "neck", "head_top"))


@dataclass(frozen=True)
class KeypointConvention:
    """How a 2D source's keypoints relate to the mocap joints: ``matrix`` (16,16), keypoints = matrix @ joints
    (pelvis and thorax rows: the mid-points of the source's hips and shoulders). ``name`` says where it
    comes from."""

    matrix: np.ndarray
    name: str = "mocap"

    @classmethod
    def from_parameters(cls, name: str = "mocap", **params: float) -> "KeypointConvention":
        unknown = set(params) - set(PARAMETERS)
        if unknown:
            raise ValueError(f"keypoint convention {name!r}: unknown parameter(s) {sorted(unknown)}; "
                             f"known: {', '.join(PARAMETERS)}")
        values = {**dict(hip_width=1.0, hip_raise=0.0, shoulder_width=1.0, shoulder_raise=0.0, neck=1.0,
                         head_top=1.0), **params}
        bad = [k for k, v in values.items() if not np.isfinite(v)]
        if bad:
            raise ValueError(f"keypoint convention {name!r}: non-finite {', '.join(bad)}")
        return cls(_ZERO + sum(values[n] * _BASIS[n] for n in PARAMETERS), name)

    @property
    def is_identity(self) -> bool:
        return bool(np.allclose(self.matrix, np.eye(len(JOINTS3D))))

    def apply(self, joints: np.ndarray) -> np.ndarray:
        """(..., 16, D) mocap joints (3D or their 2D projections) -> where this source puts them."""
        return np.einsum("ij,...jd->...id", self.matrix, joints)

    def then(self, outer: "KeypointConvention", name: str | None = None) -> "KeypointConvention":
        """``outer`` expressed relative to this convention's points, as a convention of mocap joints."""
        return KeypointConvention(outer.matrix @ self.matrix, name or f"{outer.name} on {self.name}")


MOCAP = KeypointConvention(np.eye(len(JOINTS3D)), "mocap")


def _size(poses: np.ndarray) -> np.ndarray:
    """Per pose: the mean length of the limb bones (hip-knee, knee-ankle, shoulder-elbow, elbow-wrist)."""
    return np.mean([np.linalg.norm(poses[:, _J[a]] - poses[:, _J[b]], axis=-1) for a, b in _LIMBS], axis=0)


def _ratio(poses: np.ndarray, a: str, b: str) -> float:
    """Median over poses of |a - b| / limb size (NaN-free poses only)."""
    d = np.linalg.norm(poses[:, _J[a]] - poses[:, _J[b]], axis=-1) / _size(poses)
    d = d[np.isfinite(d)]
    return float(np.median(d)) if len(d) else float("nan")


def fit_proportions(dataset: np.ndarray, mocap: np.ndarray, name: str) -> KeypointConvention:
    """A 3D dataset's convention, from its skeleton's proportions against the mocap's.

    Widths (hips, shoulders) are the ratio of median width / limb size; the shoulders' raise makes the
    pelvis-thorax length agree (the hips' raise is not identifiable from lengths and stays 0); neck and
    head top the ratio of their distance from the thorax. Joints a dataset lacks (NaN) keep the mocap's.
    """
    params: dict[str, float] = {}
    for param, (a, b) in (("hip_width", ("r_hip", "l_hip")), ("shoulder_width", ("r_shoulder", "l_shoulder")),
                          ("neck", ("thorax", "neck")), ("head_top", ("thorax", "head_top"))):
        r = _ratio(dataset, a, b) / _ratio(mocap, a, b)
        if np.isfinite(r):
            params[param] = r
    torso_d, torso_m = _ratio(dataset, "pelvis", "thorax"), _ratio(mocap, "pelvis", "thorax")
    if np.isfinite(torso_d):
        params["shoulder_raise"] = torso_d / torso_m - 1.0
    return KeypointConvention.from_parameters(name, **params)


def fit_2d(keypoints: np.ndarray, visible: np.ndarray, reference: np.ndarray, name: str) -> KeypointConvention:
    """A 2D source's convention relative to reference points, by linear least squares in 2D.

    ``keypoints`` (N,14,2) the source's, ``visible`` (N,14) which to use, ``reference`` (N,16,2) the
    reference skeleton's joints projected into the same images (e.g. a dataset's annotated 3D). The
    convention is linear in its parameters, so each joint group is one small least-squares problem;
    a parameter with no visible keypoint stays at its identity value.
    """
    params: dict[str, float] = {}
    groups = {("hip_width", "hip_raise"): ("r_hip", "l_hip"),
              ("shoulder_width", "shoulder_raise"): ("r_shoulder", "l_shoulder"),
              ("neck",): ("neck",), ("head_top",): ("head_top",)}      # in this order: the head needs the raise
    for names, joints in groups.items():
        rows, target = [], []
        for joint in joints:
            j = _J[joint]
            known = _ZERO[j] + sum(v * _BASIS[p][j] for p, v in params.items())
            needed = np.flatnonzero(np.abs(known) + sum(np.abs(_BASIS[p][j]) for p in names))
            use = visible[:, j] & np.isfinite(keypoints[:, j]).all(-1) & np.isfinite(reference[:, needed]).all((1, 2))
            if not use.any():
                continue
            ref = np.nan_to_num(reference[use])                 # the joints not needed have weight 0
            base = np.einsum("j,njd->nd", known, ref)
            rows.append(np.stack([np.einsum("j,njd->nd", _BASIS[p][j], ref) for p in names], -1)
                        .reshape(-1, len(names)))
            target.append((keypoints[use, j] - base).reshape(-1))
        if rows:
            params.update(zip(names, np.linalg.lstsq(np.concatenate(rows), np.concatenate(target), rcond=None)[0]))
    return KeypointConvention.from_parameters(name, **{k: float(v) for k, v in params.items()})


def parameters_of(convention: KeypointConvention) -> dict[str, float]:
    """The six parameters that reproduce a parametric convention's matrix (least squares)."""
    a = np.stack([_BASIS[n].ravel() for n in PARAMETERS], -1)
    x = np.linalg.lstsq(a, (convention.matrix - _ZERO).ravel(), rcond=None)[0]
    return {n: float(v) for n, v in zip(PARAMETERS, x)}
