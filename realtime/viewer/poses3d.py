"""3D poses of a still image, for a person to look at (``realtime estimate --draw-3d``): an
interactive, self-contained HTML page (plotly.js inside, the viewer's drawing code) or a PNG/JPEG
rendered here with OpenCV from an oblique viewpoint above and beside the camera.

People are dicts as the viewer sends them: ``id``, ``j3`` (16 x 3, metres, root-relative, wire axes)
and ``root`` (3, the pelvis in the camera's level frame, or None).
"""
from __future__ import annotations

from pathlib import Path
from typing import Any

import cv2
import numpy as np

from realtime import skeleton

#: The viewer's palette (static/skeleton.js), as BGR.
PALETTE = [tuple(int(h[i:i + 2], 16) for i in (5, 3, 1)) for h in
           ("#1f77b4", "#ff7f0e", "#2ca02c", "#d62728", "#9467bd", "#8c564b", "#e377c2", "#17becf", "#bcbd22")]


def world(person: dict[str, Any]) -> np.ndarray:
    """Joints in plot axes (x right, depth away from the camera, up), as the viewer draws them."""
    j = np.asarray(person["j3"], np.float64) + np.asarray(person.get("root") or [0.0, 0.0, 0.0])
    return np.stack([j[:, 0], -j[:, 2], j[:, 1]], axis=1)


def write_html(people: list[dict[str, Any]], path: str | Path, title: str) -> Path:
    from realtime.viewer import offline_page

    data = {"title": title, "parents": list(skeleton.PARENT_INDEX3D), "people": people}
    path = Path(path)
    path.write_text(offline_page("poses3d.html", title, data))
    return path


def render(people: list[dict[str, Any]], size: tuple[int, int] = (960, 720), azimuth_deg: float = -30.0,
           elevation_deg: float = 20.0) -> np.ndarray:
    """A BGR picture of the skeletons on a 1 m floor grid, seen from behind and above the camera,
    turned by ``azimuth_deg``; each person in its viewer colour with its label."""
    w, h = size
    out = np.full((h, w, 3), 255, np.uint8)
    points = [world(p) for p in people]
    if not points:
        cv2.putText(out, "no 3D pose", (20, 40), cv2.FONT_HERSHEY_SIMPLEX, 1.0, (80, 80, 80), 2, cv2.LINE_AA)
        return out
    allp = np.concatenate(points)
    centre = (allp.min(0) + allp.max(0)) / 2
    floor = allp[:, 2].min()
    extent = max(float(np.ptp(allp[:, :2], axis=0).max()), 2.0)
    a, e = np.radians(azimuth_deg), np.radians(elevation_deg)
    rz = np.array([[np.cos(a), -np.sin(a), 0], [np.sin(a), np.cos(a), 0], [0, 0, 1]])
    rx = np.array([[1, 0, 0], [0, np.cos(e), -np.sin(e)], [0, np.sin(e), np.cos(e)]])
    view = rx @ rz  # world (x, depth, up) -> view (x right, depth into the screen, up)
    distance = 2.2 * extent
    focal = 0.9 * w

    def project(q: np.ndarray) -> np.ndarray:
        v = (q - centre) @ view.T
        z = v[..., 1] + distance
        return np.stack([w / 2 + focal * v[..., 0] / z, h / 2 - focal * v[..., 2] / z], axis=-1)

    lo, hi = np.floor(allp[:, :2].min(0)) - 1, np.ceil(allp[:, :2].max(0)) + 1
    for x in np.arange(lo[0], hi[0] + 1):
        a_, b_ = project(np.array([[x, lo[1], floor], [x, hi[1], floor]]))
        cv2.line(out, tuple(np.round(a_).astype(int)), tuple(np.round(b_).astype(int)), (225, 225, 225), 1, cv2.LINE_AA)
    for y in np.arange(lo[1], hi[1] + 1):
        a_, b_ = project(np.array([[lo[0], y, floor], [hi[0], y, floor]]))
        cv2.line(out, tuple(np.round(a_).astype(int)), tuple(np.round(b_).astype(int)), (225, 225, 225), 1, cv2.LINE_AA)
    order = sorted(range(len(points)), key=lambda i: -float(((points[i] - centre) @ view.T)[:, 1].mean()))
    for i in order:  # far people first
        colour = PALETTE[people[i]["id"] % len(PALETTE)] if people[i]["id"] >= 0 else (170, 170, 170)
        uv = np.round(project(points[i])).astype(int)
        for j, parent in enumerate(skeleton.PARENT_INDEX3D):
            if parent >= 0:
                cv2.line(out, tuple(uv[j]), tuple(uv[parent]), colour, 3, cv2.LINE_AA)
        head = uv[0]
        cv2.putText(out, f"id {people[i]['id']}" if people[i]["id"] >= 0 else "?", (int(head[0]) - 15, int(head[1]) - 12),
                    cv2.FONT_HERSHEY_SIMPLEX, 0.6, colour, 2, cv2.LINE_AA)
    return out
