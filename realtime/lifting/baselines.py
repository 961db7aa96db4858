"""Baselines the lifter is compared with in tools/bench_lifting.py (not used at run time).

* :class:`NearestNeighbourLifter` -- Chen & Ramanan 2017: match the normalised 2D pose against
  normalised orthographic projections of training poses over a grid of views, return the 3D pose
  of the best match.
* :class:`MLPLifter` -- Martinez et al. 2017 "simple baseline": 28 normalised 2D coordinates ->
  linear 1024 -> two residual blocks (linear, batch norm, ReLU, dropout, twice) -> 48 coordinates,
  trained on the same training poses seen by random cameras (torch, CPU).

Both take and return what :meth:`realtime.lifting.Lifter.lift` does: (N,14,2) pixels and (N,14)
confidences in, (N,16,3) pelvis-relative joints in the level camera frame out.
"""
from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np

from realtime.lifting.evaluation import add_noise, drop_joints, random_views
from realtime.lifting.lifter import _rot_x, _rot_y
from realtime.lifting.prior import ROOT_INDEX, bone_sum_squares, normalise
from realtime.skeleton import JOINTS3D, LSP14

_N2D = len(LSP14)
_HIPS = [LSP14.index("r_hip"), LSP14.index("l_hip")]


def normalise_2d(keypoints2d: np.ndarray, visible: np.ndarray) -> np.ndarray:
    """Centre on the visible joints' mean and divide by their RMS spread; y flipped to point up."""
    y = np.where(visible[..., None], keypoints2d * [1.0, -1.0], 0.0)
    count = np.maximum(visible.sum(1), 1)[:, None]
    centre = y.sum(1) / count
    spread = np.sqrt((visible * ((y - centre[:, None]) ** 2).sum(-1)).sum(1) / count[:, 0])
    return np.where(visible[..., None], (y - centre[:, None]) / np.maximum(spread, 1e-9)[:, None, None], 0.0)


@dataclass(frozen=True)
class NearestNeighbourLifter:
    """1-NN over a library of training poses x views; missing joints are left out of the distance."""

    library2d: np.ndarray   # (C,14,2) normalised projections (all joints)
    library3d: np.ndarray   # (C,16,3) metres, level camera frame
    chunk: int = 64

    @classmethod
    def fit(cls, poses: np.ndarray, rotations: int = 24, elevations_deg=(-20, -10, 0, 10, 20, 30, 40),
            max_poses: int = 5000, seed: int = 0) -> "NearestNeighbourLifter":
        rng = np.random.default_rng(seed)
        if len(poses) > max_poses:
            poses = poses[np.sort(rng.choice(len(poses), max_poses, replace=False))]
        size = np.sqrt(bone_sum_squares(poses - poses[:, ROOT_INDEX : ROOT_INDEX + 1]))
        pose = normalise(poses) * size.mean()
        theta = np.linspace(0, 2 * np.pi, rotations, endpoint=False)
        lib2d, lib3d = [], []
        for phi in np.radians(elevations_deg):
            for t in theta:
                level = pose @ _rot_y(np.array(t)).T
                cam = level @ _rot_x(np.array(phi)).T
                lib3d.append(level)
                lib2d.append(cam[:, :_N2D, :2] * [1.0, -1.0])
        lib2d = np.concatenate(lib2d)
        return cls(normalise_2d(lib2d, np.ones(lib2d.shape[:2], bool)).astype(np.float32),
                   np.concatenate(lib3d).astype(np.float32))

    def lift(self, keypoints2d: np.ndarray, confidence: np.ndarray) -> np.ndarray:
        visible = (confidence > 0) & np.isfinite(keypoints2d).all(-1)
        query = normalise_2d(np.nan_to_num(keypoints2d), visible).astype(np.float32)
        lib = self.library2d.reshape(len(self.library2d), -1)
        lib_sq = (self.library2d**2).sum(-1)                                   # (C,14)
        best = np.empty(len(query), dtype=np.int64)
        for start in range(0, len(query), self.chunk):
            q = query[start : start + self.chunk]
            w = visible[start : start + self.chunk].astype(np.float32)
            dist = w @ lib_sq.T - 2 * q.reshape(len(q), -1) @ lib.T            # + |q|^2, constant per row
            best[start : start + self.chunk] = np.argmin(dist, axis=1)
        return self.library3d[best].astype(np.float64)


def _mlp(hidden: int = 1024, blocks: int = 2, dropout: float = 0.5):
    import torch.nn as nn

    class Block(nn.Module):
        def __init__(self):
            super().__init__()
            self.body = nn.Sequential(
                nn.Linear(hidden, hidden), nn.BatchNorm1d(hidden), nn.ReLU(), nn.Dropout(dropout),
                nn.Linear(hidden, hidden), nn.BatchNorm1d(hidden), nn.ReLU(), nn.Dropout(dropout))

        def forward(self, x):
            return x + self.body(x)

    return nn.Sequential(nn.Linear(2 * _N2D, hidden), nn.BatchNorm1d(hidden), nn.ReLU(), nn.Dropout(dropout),
                         *[Block() for _ in range(blocks)], nn.Linear(hidden, 3 * len(JOINTS3D)))


class MLPLifter:
    """Martinez et al.'s fully connected lifter; predicts the size-normalised pose times a mean size."""

    def __init__(self, state: dict, size_m: float):
        import torch
        self.net = _mlp()
        self.net.load_state_dict(state)
        self.net.eval()
        self.size_m = size_m
        self._torch = torch

    @classmethod
    def fit(cls, poses: np.ndarray, steps: int = 3000, batch: int = 256, seed: int = 0,
            progress: bool = True) -> "MLPLifter":
        """Train on random views of ``poses``: a third clean, a third with 2% noise, a third with 0-2 joints missing."""
        import torch
        from tqdm import tqdm
        torch.manual_seed(seed)
        rng = np.random.default_rng(seed)
        size = float(np.sqrt(bone_sum_squares(poses - poses[:, ROOT_INDEX : ROOT_INDEX + 1])).mean())
        net = _mlp()
        opt = torch.optim.Adam(net.parameters(), lr=1e-3)
        sched = torch.optim.lr_scheduler.CosineAnnealingLR(opt, steps)
        net.train()
        for _ in tqdm(range(steps), desc="train MLP lifter", disable=not progress):
            views = random_views(poses[rng.integers(len(poses), size=batch)], rng)
            kind = rng.integers(3)
            if kind == 1:
                views = add_noise(views, 0.02, rng)
            elif kind == 2:
                views = drop_joints(views, int(rng.integers(1, 3)), rng)
            x = normalise_2d(np.nan_to_num(views.keypoints2d), views.confidence > 0)
            target = normalise(views.truth) * size
            loss = ((net(torch.from_numpy(x.reshape(batch, -1)).float())
                     - torch.from_numpy(target.reshape(batch, -1)).float()) ** 2).mean()
            opt.zero_grad()
            loss.backward()
            opt.step()
            sched.step()
        return cls({k: v.detach().clone() for k, v in net.state_dict().items()}, size)

    def save(self, path: str | Path) -> None:
        self._torch.save({"state": self.net.state_dict(), "size_m": self.size_m}, path)

    @classmethod
    def load(cls, path: str | Path) -> "MLPLifter":
        import torch
        data = torch.load(path, weights_only=True)
        return cls(data["state"], float(data["size_m"]))

    def lift(self, keypoints2d: np.ndarray, confidence: np.ndarray) -> np.ndarray:
        visible = (confidence > 0) & np.isfinite(keypoints2d).all(-1)
        x = normalise_2d(np.nan_to_num(keypoints2d), visible).reshape(len(keypoints2d), -1)
        with self._torch.no_grad():
            out = self.net(self._torch.from_numpy(x).float()).numpy().astype(np.float64)
        out = out.reshape(len(x), len(JOINTS3D), 3)
        return out - out[:, ROOT_INDEX : ROOT_INDEX + 1]
