"""Synthetic multi-person scenes from mocap, to measure tracking and filtering against known truth.

Held-out mocap clips are placed on a ground plane with headings and offsets chosen so that the
walkers' paths cross in front of a pinhole camera at standing-eye height looking down, then
projected. What a 2D pose network gets wrong is simulated on top: keypoint noise scaled by person
height and confidence, occlusion by nearer people (a mostly hidden person is not detected, a
partly hidden one loses the hidden joints), missed detections and false positives.
"""
from __future__ import annotations

import math
from dataclasses import dataclass, field

import numpy as np

from realtime.skeleton import JOINTS3D, LIMBS2D, LSP14
from realtime.transport.schema import Person

N_KP = len(LSP14)
PELVIS = JOINTS3D.index("pelvis")
_ANKLES = [JOINTS3D.index("r_ankle"), JOINTS3D.index("l_ankle")]
_I = {n: i for i, n in enumerate(LSP14)}
#: Segments whose capsules make up a person's silhouette (limbs, torso diagonals, head).
_BODY = np.array(list(LIMBS2D) + [(_I["r_shoulder"], _I["l_hip"]), (_I["l_shoulder"], _I["r_hip"]),
                                  (_I["r_shoulder"], _I["l_shoulder"])])
_HEAD = np.array([(_I["head_top"], _I["neck"])])


@dataclass(frozen=True)
class Camera:
    """Pinhole camera at ``height_m`` above the ground looking along -z, pitched down ``pitch_deg``."""
    width: int = 1280
    height: int = 720
    focal: float = 1000.0
    height_m: float = 2.5
    pitch_deg: float = 12.0

    def to_camera(self, points: np.ndarray) -> np.ndarray:
        """World (y up, ground y=0) to camera frame (x right, y up, z towards the viewer), metres."""
        p = math.radians(self.pitch_deg)
        d = points - np.array([0.0, self.height_m, 0.0])
        x = d[..., 0]
        y = d[..., 1] * math.cos(p) - d[..., 2] * math.sin(p)
        z = d[..., 1] * math.sin(p) + d[..., 2] * math.cos(p)
        return np.stack([x, y, z], axis=-1)

    def project(self, cam: np.ndarray) -> np.ndarray:
        """Camera-frame points to pixels (image y down)."""
        depth = np.maximum(-cam[..., 2], 1e-3)
        u = 0.5 * self.width + self.focal * cam[..., 0] / depth
        v = 0.5 * self.height - self.focal * cam[..., 1] / depth
        return np.stack([u, v], axis=-1)


@dataclass(frozen=True)
class Noise:
    """How the simulated 2D detector errs (defaults: realistic for a CPM-class network)."""
    keypoint_sigma: float = 0.025     # keypoint noise std at confidence 0.75, in person heights
    outlier_rate: float = 0.01        # share of visible keypoints with a gross error
    miss_rate: float = 0.05           # detections dropped at random
    false_positive_rate: float = 0.02  # false detections per true detection
    min_visible: float = 0.5          # a person with fewer visible keypoints is not detected
    hidden_reported: float = 0.3      # share of hidden keypoints reported anyway (guessed, low confidence)


@dataclass
class Scene:
    """One synthetic sequence: truth per person and the detections a 2D network would give."""
    fps: float
    camera: Camera
    joints_cam: np.ndarray            # (P, T, 16, 3) camera frame, metres (NaN = person not in the scene)
    keypoints: np.ndarray             # (P, T, 14, 2) true projections, px
    visible: np.ndarray               # (P, T, 14) keypoint in the image and not hidden by a nearer person
    detections: list[list[Person]] = field(default_factory=list)  # per frame, for Tracker.update
    sources: list[list[int]] = field(default_factory=list)      # per frame, person index (-1 = false)

    @property
    def n_frames(self) -> int:
        return self.joints_cam.shape[1]

    def truth_boxes(self, frame: int, min_visible: float) -> tuple[list[int], np.ndarray]:
        """Persons a detector could see in a frame, with the boxes of their visible keypoints."""
        ids, boxes = [], []
        for p in range(self.joints_cam.shape[0]):
            vis = self.visible[p, frame]
            if vis.mean() >= min_visible:
                ids.append(p)
                boxes.append(_box(self.keypoints[p, frame][vis]))
        return ids, np.array(boxes).reshape(-1, 4)


def _box(kp: np.ndarray) -> np.ndarray:
    """A detector-like box: the keypoints' extent padded by a tenth of the person's height."""
    lo, hi = kp.min(0), kp.max(0)
    pad = 0.1 * max(hi[1] - lo[1], 1.0)
    return np.concatenate([lo - pad, hi + pad])


def _ground_clip(joints: np.ndarray, heading: float, mid_xz: np.ndarray, mid: int) -> np.ndarray:
    """Rotate a clip about y so it walks along ``heading`` and shift it to pass ``mid_xz`` at ``mid``."""
    root = joints[:, PELVIS, [0, 2]]
    travel = root[-1] - root[0]
    a = heading - math.atan2(travel[1], travel[0]) if np.linalg.norm(travel) > 0.3 else heading
    c, s = math.cos(a), math.sin(a)
    x, z = joints[..., 0], joints[..., 2]
    out = np.stack([c * x - s * z, joints[..., 1], s * x + c * z], axis=-1)
    out[..., 1] -= np.nanmin(out[:, _ANKLES, 1]) - 0.08   # ankles ~8 cm above the ground
    out[..., [0, 2]] += mid_xz - out[mid, PELVIS, [0, 2]]
    return out


def _point_segment_distance(p: np.ndarray, a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """Distances (..., K, S) from points p (..., K, 2) to segments a-b (..., S, 2)."""
    ab = (b - a)[..., None, :, :]
    ap = p[..., :, None, :] - a[..., None, :, :]
    u = np.clip((ap * ab).sum(-1) / np.maximum((ab * ab).sum(-1), 1e-9), 0.0, 1.0)
    return np.linalg.norm(ap - u[..., None] * ab, axis=-1)


def _occlusion(kp: np.ndarray, depth: np.ndarray, size: np.ndarray, present: np.ndarray) -> np.ndarray:
    """(P, 14) keypoints hidden behind a nearer person's silhouette in one frame."""
    hidden = np.zeros(kp.shape[:2], dtype=bool)
    for q in np.flatnonzero(present):
        body = _point_segment_distance(kp, kp[q][_BODY[:, 0]], kp[q][_BODY[:, 1]]).min(-1)
        head = _point_segment_distance(kp, kp[q][_HEAD[:, 0]], kp[q][_HEAD[:, 1]]).min(-1)
        covered = (body < 0.06 * size[q]) | (head < 0.07 * size[q])
        behind = present & (depth > depth[q])
        hidden |= covered & behind[:, None]
    return hidden


def make_scene(clips: list[np.ndarray], n_people: int, n_frames: int, rng: np.random.Generator,
               fps: float = 30.0, camera: Camera = Camera(), noise: Noise = Noise(),
               area: tuple[float, float, float] = (3.0, 4.5, 10.0)) -> Scene:
    """A sequence of ``n_people`` walkers whose paths cross; ``clips`` are (T, 16, 3) at ``fps``.

    Each walker passes the middle of its clip at a random point of the ground ``area`` (|x| up to
    area[0], from area[1] to area[2] metres in front of the camera), mostly walking across the view,
    at a random time around the middle of the sequence.
    """
    P, T = n_people, n_frames
    world = np.full((P, T, len(JOINTS3D), 3), np.nan)
    order = rng.permutation(len(clips))
    for p in range(P):
        clip = clips[order[p % len(clips)]]
        length = min(len(clip), T)
        start_clip = int(rng.integers(0, len(clip) - length + 1))
        seg = clip[start_clip:start_clip + length].astype(np.float64)
        centre = T / 2 + rng.uniform(-0.3, 0.3) * T
        start = int(np.clip(round(centre - length / 2), 0, T - length))
        mid_xz = np.array([rng.uniform(-area[0], area[0]), -rng.uniform(*area[1:])])
        heading = rng.choice([0.0, math.pi]) + rng.uniform(-0.7, 0.7)   # mostly across the view: paths cross
        world[p, start:start + length] = _ground_clip(seg, heading, mid_xz, length // 2)

    cam = camera.to_camera(world)
    kp = camera.project(cam[..., :N_KP, :])
    present = np.isfinite(cam).all((-1, -2)) & (cam[..., PELVIS, 2] < -0.5)            # (P, T)
    in_image = ((kp >= 0) & (kp < [camera.width, camera.height])).all(-1) & present[..., None]
    size = np.where(present, np.ptp(np.nan_to_num(kp[..., 1]), axis=-1), 0.0)          # (P, T) px height
    depth = -cam[..., PELVIS, 2]
    visible = in_image.copy()
    for t in range(T):
        visible[:, t] &= ~_occlusion(np.nan_to_num(kp[:, t]), depth[:, t], size[:, t], present[:, t])

    scene = Scene(fps, camera, cam, kp, visible)
    for t in range(T):
        dets, src = [], []
        for p in range(P):
            if not present[p, t] or visible[p, t].mean() < noise.min_visible or rng.random() < noise.miss_rate:
                continue
            dets.append(_detect(kp[p, t], visible[p, t], size[p, t], rng, noise))
            src.append(p)
        n_false = rng.poisson(noise.false_positive_rate * max(len(dets), 1))
        for _ in range(n_false):
            dets.append(_false_positive(kp[present[:, t], t], camera, rng))
            src.append(-1)
        perm = rng.permutation(len(dets))
        scene.detections.append([dets[i] for i in perm])
        scene.sources.append([src[i] for i in perm])
    return scene


def _detect(kp: np.ndarray, visible: np.ndarray, size: float, rng: np.random.Generator, noise: Noise) -> Person:
    """What a 2D network reports for one person: noisy keypoints, confidences, a box."""
    conf = np.where(visible, rng.uniform(0.5, 1.0, N_KP), 0.0)
    guessed = ~visible & (rng.random(N_KP) < noise.hidden_reported)
    conf[guessed] = rng.uniform(0.1, 0.3, guessed.sum())
    sigma = noise.keypoint_sigma * size * 0.75 / np.maximum(conf, 0.1)
    out = kp + rng.normal(0.0, 1.0, kp.shape) * sigma[:, None]
    gross = visible & (rng.random(N_KP) < noise.outlier_rate)
    out[gross] += rng.normal(0.0, 0.15 * size, (gross.sum(), 2))
    conf[gross] *= 0.5
    reported = conf > 0
    out[~reported] = np.nan
    return Person(keypoints2d=out, confidence=conf, score=float(conf.mean()), bbox=_box(out[reported]))


def _false_positive(people: np.ndarray, camera: Camera, rng: np.random.Generator) -> Person:
    """A person-shaped false detection (a poster, a reflection) somewhere else, with low confidences."""
    if len(people):
        pose = people[rng.integers(len(people))]
        pose = (pose - pose.mean(0)) * rng.uniform(0.5, 1.5)
    else:
        pose = (rng.random((N_KP, 2)) - 0.5) * 200.0
    at = rng.uniform([0.1 * camera.width, 0.3 * camera.height], [0.9 * camera.width, 0.8 * camera.height])
    kp = pose + at
    conf = rng.uniform(0.1, 0.5, N_KP)
    return Person(keypoints2d=kp, confidence=conf, score=float(conf.mean()), bbox=_box(kp))
