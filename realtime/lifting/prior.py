"""The probabilistic 3D pose prior of Tome et al. 2017, section 4: a mixture of probabilistic PCA.

Training (offline, :meth:`PosePrior.fit`) removes the nuisance factors the paper names -- position
(root-centring), size (sum of squared limb lengths = 1), left/right (flip augmentation) and the
rotation about the vertical axis (4.1: Tomasi-Kanade initialisation, then alternating closed-form
PPCA with closed-form per-pose rotations while the basis grows from 1 to J) -- then initialises the
clusters by greedy k-centre selection (4.2) and runs EM for a mixture of PPCA (Tipping & Bishop 1999).

At run time the prior is a small immutable object loaded from an ``.npz`` file.
"""
from __future__ import annotations

import dataclasses
import importlib.resources
import json
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
from scipy.spatial.distance import cdist
from tqdm import tqdm

from realtime.skeleton import BONES3D, FLIP3D, JOINTS3D, PARENT_INDEX3D, ROOT

ROOT_INDEX = JOINTS3D.index(ROOT)
#: The committed default prior, package data (``realtime/data/pose_prior.npz``: in a checkout a link
#: to ``engines/pose_prior.npz``, where ``tools/train_prior.py`` writes it; in a wheel the file itself).
DEFAULT_PRIOR = Path(str(importlib.resources.files("realtime").joinpath("data", "pose_prior.npz")))
#: Default 2D noise (model units; a standing person is about 1.3 units tall) that the lifter adds
#: to each component's PPCA noise; tools/train_prior.py chooses it on validation subjects.
NOISE2D = 0.03
_NONROOT = np.array([j for j in range(len(JOINTS3D)) if j != ROOT_INDEX])


class PriorError(ValueError):
    """A pose prior file or training input is unusable; the message names the file or field."""


def bone_sum_squares(poses: np.ndarray) -> np.ndarray:
    """Sum of squared limb lengths per pose (the paper's size measure), shape (N,)."""
    child, parent = np.array(BONES3D).T
    return ((poses[:, child] - poses[:, parent]) ** 2).sum(axis=(1, 2))


def normalise(poses: np.ndarray) -> np.ndarray:
    """Root-centre and scale each pose so its sum of squared limb lengths is 1."""
    poses = np.asarray(poses, dtype=np.float64)
    centred = poses - poses[:, ROOT_INDEX : ROOT_INDEX + 1]
    return centred / np.sqrt(bone_sum_squares(centred))[:, None, None]


def flip(poses: np.ndarray) -> np.ndarray:
    """Mirror poses left-right: negate x and relabel each joint with its mirror (r_* <-> l_*)."""
    mirrored = np.asarray(poses)[:, list(FLIP3D)].copy()
    mirrored[..., 0] *= -1.0
    return mirrored


def rotate_y(poses: np.ndarray, theta: np.ndarray) -> np.ndarray:
    """Rotate each pose (N,L,3) about the vertical y axis by its angle theta (N,) (right-handed)."""
    c, s = np.cos(theta)[:, None], np.sin(theta)[:, None]
    out = poses.copy()
    out[..., 0] = c * poses[..., 0] + s * poses[..., 2]
    out[..., 2] = -s * poses[..., 0] + c * poses[..., 2]
    return out


def best_rotation_y(poses: np.ndarray, targets: np.ndarray) -> np.ndarray:
    """Closed-form angle about y that best rotates each pose onto its target (least squares)."""
    x, z = poses[..., 0], poses[..., 2]
    tx, tz = targets[..., 0], targets[..., 2]
    return np.arctan2((z * tx - x * tz).sum(-1), (x * tx + z * tz).sum(-1))


def tomasi_kanade_angles(poses: np.ndarray) -> np.ndarray:
    """Initial ground-plane rotations (4.1): rank-2 factorisation of the interleaved x/z rows.

    Stacking every pose's x and z rows gives a (2N, L) matrix ~ [Q_1; ...; Q_N] B with Q_n a 2x2
    rotation; each factor pair is replaced by its closest rotation and the angle that undoes it returned.
    """
    n = len(poses)
    m = np.stack([poses[..., 0], poses[..., 2]], axis=1).reshape(2 * n, -1)
    u, _, _ = np.linalg.svd(m, full_matrices=False)
    a = (np.sqrt(n) * u[:, :2]).reshape(n, 2, 2)
    if np.median(np.linalg.det(a)) < 0:
        a[:, :, 1] *= -1.0
    uu, _, vt = np.linalg.svd(a)
    d = np.sign(np.linalg.det(uu @ vt))
    uu[:, :, 1] *= d[:, None]
    q = uu @ vt
    return -np.arctan2(q[:, 0, 1], q[:, 0, 0])


def _ppca(cov: np.ndarray, n_basis: int) -> tuple[np.ndarray, float]:
    """Closed-form maximum-likelihood PPCA (Tipping & Bishop 1999) from a covariance matrix."""
    evals, evecs = np.linalg.eigh(cov)
    evals, evecs = evals[::-1], evecs[:, ::-1]
    sigma2 = max(float(evals[n_basis:].mean()), 1e-8)
    scale = np.sqrt(np.maximum(evals[:n_basis] - sigma2, 0.0))
    return evecs[:, :n_basis] * scale, sigma2


def _log_gaussians(x: np.ndarray, means: np.ndarray, bases: np.ndarray, noise: np.ndarray) -> np.ndarray:
    """log N(x; mu_k, W_k W_k^T + sigma_k^2 I) for every sample and component, (N,K), via Woodbury."""
    n, d = x.shape
    out = np.empty((n, len(means)))
    for k, (mu, w, s2) in enumerate(zip(means, bases, noise)):
        j = w.shape[1]
        diff = x - mu
        m = w.T @ w + s2 * np.eye(j)
        proj = diff @ w
        maha = ((diff**2).sum(1) - (proj * np.linalg.solve(m, proj.T).T).sum(1)) / s2
        logdet = np.linalg.slogdet(m)[1] + (d - j) * np.log(s2)
        out[:, k] = -0.5 * (maha + logdet + d * np.log(2 * np.pi))
    return out


def _posterior_mean(x: np.ndarray, mu: np.ndarray, w: np.ndarray, s2: float) -> np.ndarray:
    m = w.T @ w + s2 * np.eye(w.shape[1])
    return np.linalg.solve(m, (w.T @ (x - mu).T)).T


def align(poses: np.ndarray, n_basis: int, iters: int = 3, progress: bool = False) -> np.ndarray:
    """Ground-plane angles that bring all (normalised) poses into one low-rank Gaussian (4.1)."""
    flat = lambda p: p[:, _NONROOT].reshape(len(p), -1)  # noqa: E731
    theta = tomasi_kanade_angles(poses)
    steps = [(j, i) for j in range(1, n_basis + 1) for i in range(iters)]
    for j, _ in tqdm(steps, desc="align rotations", disable=not progress):
        aligned = flat(rotate_y(poses, theta))
        mu = aligned.mean(0)
        w, s2 = _ppca(np.cov(aligned, rowvar=False, bias=True), j)
        target = np.zeros_like(poses)
        target[:, _NONROOT] = (mu + _posterior_mean(aligned, mu, w, s2) @ w.T).reshape(len(poses), -1, 3)
        theta = best_rotation_y(poses, target)
    return theta


def k_centres(points: np.ndarray, k: int, min_separation: float = 0.25) -> np.ndarray:
    """Greedy selection of k samples minimising the summed distance to the nearest sample (4.2).

    Candidates closer than ``min_separation`` x the median pairwise distance to a chosen sample are
    not proposed, so a dominant mode gets one centre rather than several.
    """
    d = cdist(points, points)
    too_close = min_separation * np.median(d)
    nearest = np.full(len(points), np.inf)
    chosen: list[int] = []
    allowed = np.ones(len(points), bool)
    for _ in range(k):
        if not allowed.any():
            break
        costs = np.minimum(nearest[:, None], d).sum(0)
        costs[~allowed] = np.inf
        best = int(np.argmin(costs))
        chosen.append(best)
        nearest = np.minimum(nearest, d[:, best])
        allowed &= d[best] > too_close
    return np.array(chosen)


@dataclass(frozen=True)
class PosePrior:
    """A mixture of PPCA over normalised, aligned 3D poses in JOINTS3D order.

    ``means`` (K,L,3), ``bases`` (K,L,3,J) (columns are W = U (Lambda - sigma^2)^1/2, so the
    coefficients have a standard normal prior), ``noise`` (K,) the isotropic variance sigma^2,
    ``weights`` (K,) mixing proportions. Poses are in model units (sum of squared limb lengths 1);
    ``bone_ss_m`` is the mean training sum of squared limb lengths in m^2, so a model pose times
    ``metric_scale`` is in metres. ``noise2d`` is the 2D keypoint noise (model units) the lifter
    assumes on top of the PPCA noise.
    """

    means: np.ndarray
    bases: np.ndarray
    noise: np.ndarray
    weights: np.ndarray
    bone_ss_m: float
    noise2d: float = NOISE2D
    joint_names: tuple[str, ...] = JOINTS3D
    info: dict[str, Any] = field(default_factory=dict)

    def __eq__(self, other: object) -> bool:
        """Equal when every array, number and the training metadata are (a prior holds arrays, so the
        dataclass's own comparison would raise)."""
        if not isinstance(other, PosePrior):
            return NotImplemented
        return (all(np.array_equal(getattr(self, n), getattr(other, n)) for n in ("means", "bases", "noise", "weights"))
                and (self.bone_ss_m, self.noise2d, self.joint_names, self.info)
                == (other.bone_ss_m, other.noise2d, other.joint_names, other.info))

    #: Mutable arrays inside: not hashable (use ``id`` or the file's path as a key).
    __hash__ = None  # type: ignore[assignment]

    @property
    def n_components(self) -> int:
        return len(self.means)

    def rest_offsets(self) -> list[list[float]]:
        """Each joint's offset from its parent (metres, rounded to 0.1 mm) in the prior's most probable
        mean pose: the rest pose a rig is built from (the stream's skeleton message)."""
        pose = self.means[int(np.argmax(self.weights))] * self.metric_scale
        return [[0.0, 0.0, 0.0] if parent < 0 else (pose[i] - pose[parent]).round(4).tolist()
                for i, parent in enumerate(PARENT_INDEX3D)]

    @property
    def n_basis(self) -> int:
        return self.bases.shape[-1]

    def with_info(self, noise2d: float, info: dict[str, Any]) -> "PosePrior":
        """A copy with the lifter's 2D noise and extra training metadata."""
        return dataclasses.replace(self, noise2d=float(noise2d), info={**self.info, **info})

    @property
    def metric_scale(self) -> float:
        """Metres per model unit."""
        return float(np.sqrt(self.bone_ss_m))

    @classmethod
    def fit(cls, poses: np.ndarray, n_components: int = 3, n_basis: int = 8, *, em_iters: int = 50,
            align_iters: int = 3, init_samples: int = 1500, seed: int = 0, progress: bool = True,
            info: dict[str, Any] | None = None) -> "PosePrior":
        """Train on (N,16,3) poses in metres (y up, JOINTS3D order)."""
        poses = np.asarray(poses, dtype=np.float64)
        if poses.ndim != 3 or poses.shape[1:] != (len(JOINTS3D), 3):
            raise PriorError(f"poses: expected shape (N, {len(JOINTS3D)}, 3), got {poses.shape}")
        poses = poses[np.isfinite(poses).all(axis=(1, 2))]
        if len(poses) < 10 * n_components:
            raise PriorError(f"poses: {len(poses)} finite poses is too few for {n_components} components")
        if not 1 <= n_basis < 3 * (len(JOINTS3D) - 1):
            raise PriorError(f"n_basis: {n_basis} outside 1..{3 * (len(JOINTS3D) - 1) - 1}")
        rng = np.random.default_rng(seed)
        bone_ss_m = float(bone_sum_squares(poses - poses[:, ROOT_INDEX : ROOT_INDEX + 1]).mean())
        data = normalise(poses)
        data = np.concatenate([data, flip(data)])
        data = rotate_y(data, align(data, n_basis, align_iters, progress))
        x = data[:, _NONROOT].reshape(len(data), -1)

        sample = rng.choice(len(x), size=min(init_samples, len(x)), replace=False)
        centres = x[sample[k_centres(x[sample], n_components)]]
        labels = np.argmin(((x[:, None] - centres[None]) ** 2).sum(-1), axis=1)
        resp = np.eye(len(centres))[labels]
        loglik_prev = -np.inf
        for _ in tqdm(range(em_iters), desc="EM mixture of PPCA", disable=not progress):
            means, bases, noise, weights = _m_step(x, resp, n_basis)
            logp = _log_gaussians(x, means, bases, noise) + np.log(weights)
            top = logp.max(1, keepdims=True)
            lse = top[:, 0] + np.log(np.exp(logp - top).sum(1))
            resp = np.exp(logp - lse[:, None])
            loglik = float(lse.mean())
            if loglik - loglik_prev < 1e-5:
                break
            loglik_prev = loglik
        return cls._from_flat(means, bases, noise, weights, bone_ss_m,
                              dict(info or {}, train_loglik=loglik, n_train=len(poses)))

    @classmethod
    def _from_flat(cls, means, bases, noise, weights, bone_ss_m, info) -> "PosePrior":
        k, j = len(means), bases.shape[-1]
        full_means = np.zeros((k, len(JOINTS3D), 3))
        full_bases = np.zeros((k, len(JOINTS3D), 3, j))
        full_means[:, _NONROOT] = means.reshape(k, -1, 3)
        full_bases[:, _NONROOT] = bases.reshape(k, -1, 3, j)
        return cls(full_means, full_bases, np.asarray(noise, float), np.asarray(weights, float),
                   float(bone_ss_m), NOISE2D, JOINTS3D, info)

    def log_likelihood(self, poses: np.ndarray, rotations: int = 80) -> np.ndarray:
        """Per-pose log density (model units) of metre poses, at their best ground-plane rotation."""
        data = normalise(poses)
        k, j = self.n_components, self.n_basis
        means = self.means[:, _NONROOT].reshape(k, -1)
        bases = self.bases[:, _NONROOT].reshape(k, -1, j)
        best = np.full(len(data), -np.inf)
        for theta in np.linspace(0, 2 * np.pi, rotations, endpoint=False):
            x = rotate_y(data, np.full(len(data), theta))[:, _NONROOT].reshape(len(data), -1)
            logp = _log_gaussians(x, means, bases, self.noise) + np.log(self.weights)
            top = logp.max(1)
            best = np.maximum(best, top + np.log(np.exp(logp - top[:, None]).sum(1)))
        return best

    def reconstruct(self, poses: np.ndarray, rotations: int = 80) -> np.ndarray:
        """The closest pose the prior holds to each (N,16,3) metre pose seen in full 3D: the posterior
        mean of the best component at the best ground-plane rotation, back in the pose's own frame,
        size and root (metres). What a lift could reach with perfect 2D and no depth ambiguity.
        Missing (NaN) joints other than the root are filled from the reconstruction, a few rounds."""
        poses = np.asarray(poses, np.float64)
        missing = ~np.isfinite(poses).all(-1)
        if missing.any():
            root = poses[:, ROOT_INDEX : ROOT_INDEX + 1]
            filled = np.where(missing[..., None], root, poses)
            for _ in range(5):
                filled = np.where(missing[..., None], self.reconstruct(filled, rotations), poses)
            return self.reconstruct(filled, rotations)
        centred = poses - poses[:, ROOT_INDEX : ROOT_INDEX + 1]
        size = np.sqrt(bone_sum_squares(centred))
        data = centred / size[:, None, None]
        k, j = self.n_components, self.n_basis
        best, out = np.full(len(data), np.inf), np.zeros_like(data)
        for theta in np.linspace(0, 2 * np.pi, rotations, endpoint=False):
            turned = rotate_y(data, np.full(len(data), theta))
            x = turned[:, _NONROOT].reshape(len(data), -1)
            for c in range(k):
                mu, w = self.means[c, _NONROOT].ravel(), self.bases[c, _NONROOT].reshape(-1, j)
                fit = mu + _posterior_mean(x, mu, w, self.noise[c]) @ w.T
                err = ((fit - x) ** 2).sum(1)
                better = err < best
                best[better] = err[better]
                pose = np.zeros_like(data[better])
                pose[:, _NONROOT] = fit[better].reshape(-1, len(_NONROOT), 3)
                out[better] = rotate_y(pose, np.full(int(better.sum()), -theta))
        return out * size[:, None, None] + poses[:, ROOT_INDEX : ROOT_INDEX + 1]

    def save(self, path: str | Path) -> None:
        np.savez_compressed(
            path, means=self.means.astype(np.float32), bases=self.bases.astype(np.float32),
            noise=self.noise, weights=self.weights, bone_ss_m=self.bone_ss_m, noise2d=self.noise2d,
            joint_names=np.array(self.joint_names), info=json.dumps(self.info))

    @classmethod
    def load(cls, path: str | Path | None = None) -> "PosePrior":
        """Load a trained prior; ``None`` loads the committed default (``DEFAULT_PRIOR``)."""
        path = Path(path) if path else DEFAULT_PRIOR
        try:
            with np.load(path, allow_pickle=False) as f:
                data = {key: f[key] for key in f.files}
        except FileNotFoundError:
            raise PriorError(f"{path}: no such pose prior file (train one with tools/train_prior.py)") from None
        except (OSError, ValueError) as e:
            raise PriorError(f"{path}: not a pose prior .npz file: {e}") from None
        missing = {"means", "bases", "noise", "weights", "bone_ss_m", "joint_names"} - set(data)
        if missing:
            raise PriorError(f"{path}: missing field {sorted(missing)[0]!r}")
        names = tuple(str(n) for n in data["joint_names"])
        if names != JOINTS3D:
            raise PriorError(f"{path}: joint_names {names} do not match realtime.skeleton.JOINTS3D")
        means, bases = data["means"].astype(np.float64), data["bases"].astype(np.float64)
        k = len(means)
        if means.shape != (k, len(names), 3) or bases.shape[:3] != (k, len(names), 3) or \
                data["noise"].shape != (k,) or data["weights"].shape != (k,):
            raise PriorError(f"{path}: inconsistent shapes means {means.shape} bases {bases.shape} "
                             f"noise {data['noise'].shape} weights {data['weights'].shape}")
        if not (np.isfinite(means).all() and np.isfinite(bases).all() and (data["noise"] > 0).all()):
            raise PriorError(f"{path}: non-finite means/bases or non-positive noise")
        info = json.loads(str(data["info"])) if "info" in data else {}
        noise2d = float(data["noise2d"]) if "noise2d" in data else NOISE2D
        return cls(means, bases, data["noise"].astype(np.float64), data["weights"].astype(np.float64),
                   float(data["bone_ss_m"]), noise2d, names, info)


def _m_step(x: np.ndarray, resp: np.ndarray, n_basis: int):
    """Closed-form M-step of the mixture of PPCA (Tipping & Bishop 1999, appendix C)."""
    nk = resp.sum(0) + 1e-10
    means = (resp.T @ x) / nk[:, None]
    bases, noise = [], []
    for k in range(resp.shape[1]):
        diff = x - means[k]
        cov = (diff * resp[:, k : k + 1]).T @ diff / nk[k]
        w, s2 = _ppca(cov, n_basis)
        bases.append(w)
        noise.append(s2)
    return means, np.stack(bases), np.array(noise), nk / nk.sum()
