"""Multi-object tracking scores: CLEAR-MOT (Bernardin & Stiefelhagen 2008) and IDF1 (Ristani et al. 2016).

Written here (about sixty lines over scipy's assignment) rather than taken from ``motmetrics``,
which pulls in pandas for what is a per-frame matching and one bipartite matching; the numbers
follow its definitions (a ground-truth object and a hypothesis can match when their boxes' IoU is
at least 0.5; an id switch is a ground-truth object matched to a different hypothesis than at its
last match).
"""
from __future__ import annotations

from collections import defaultdict
from dataclasses import dataclass

import numpy as np
from scipy.optimize import linear_sum_assignment

from realtime.boxes import iou_matrix


@dataclass(frozen=True)
class MotScores:
    frames: int
    gt: int              # ground-truth objects summed over frames
    matches: int
    false_positives: int
    misses: int
    id_switches: int
    mota: float
    idf1: float
    idp: float
    idr: float

    @property
    def switches_per_100_frames(self) -> float:
        return 100.0 * self.id_switches / max(self.frames, 1)


class MotAccumulator:
    """Feed one frame at a time (ground-truth ids and boxes, hypothesis ids and boxes); then ``scores()``."""

    def __init__(self, iou_threshold: float = 0.5) -> None:
        self.iou_threshold = iou_threshold
        self._last: dict = {}                          # gt id -> hypothesis id at its last match
        self._pairs: defaultdict = defaultdict(int)    # (gt id, hyp id) -> frames they overlap
        self._gt_count: defaultdict = defaultdict(int)
        self._hyp_count: defaultdict = defaultdict(int)
        self.frames = self.gt = self.matches = self.fp = self.misses = self.switches = 0

    def update(self, gt_ids: list, gt_boxes: np.ndarray, hyp_ids: list, hyp_boxes: np.ndarray) -> None:
        iou = iou_matrix(gt_boxes, hyp_boxes)
        ok = iou >= self.iou_threshold
        for g, h in zip(*np.nonzero(ok)):
            self._pairs[gt_ids[g], hyp_ids[h]] += 1
        for g in gt_ids:
            self._gt_count[g] += 1
        for h in hyp_ids:
            self._hyp_count[h] += 1

        matched: dict[int, int] = {}
        hyp_index = {h: j for j, h in enumerate(hyp_ids)}
        for i, g in enumerate(gt_ids):          # CLEAR-MOT: keep last frame's correspondences that still hold
            j = hyp_index.get(self._last.get(g))
            if j is not None and ok[i, j] and j not in matched.values():
                matched[i] = j
        rest_g = [i for i in range(len(gt_ids)) if i not in matched]
        rest_h = [j for j in range(len(hyp_ids)) if j not in matched.values()]
        if rest_g and rest_h:
            cost = np.where(ok[np.ix_(rest_g, rest_h)], 1.0 - iou[np.ix_(rest_g, rest_h)], 2.0)
            for r, c in zip(*linear_sum_assignment(cost)):
                if cost[r, c] <= 1.0:
                    i, j = rest_g[r], rest_h[c]
                    if gt_ids[i] in self._last and self._last[gt_ids[i]] != hyp_ids[j]:
                        self.switches += 1
                    matched[i] = j
        for i, j in matched.items():
            self._last[gt_ids[i]] = hyp_ids[j]
        self.frames += 1
        self.gt += len(gt_ids)
        self.matches += len(matched)
        self.misses += len(gt_ids) - len(matched)
        self.fp += len(hyp_ids) - len(matched)

    def scores(self) -> MotScores:
        gts, hyps = sorted(self._gt_count), sorted(self._hyp_count)
        idtp = 0
        if gts and hyps:
            overlap = np.zeros((len(gts), len(hyps)))
            gi, hi = {g: i for i, g in enumerate(gts)}, {h: j for j, h in enumerate(hyps)}
            for (g, h), n in self._pairs.items():
                overlap[gi[g], hi[h]] = n
            rows, cols = linear_sum_assignment(-overlap)
            idtp = int(overlap[rows, cols].sum())
        n_gt, n_hyp = sum(self._gt_count.values()), sum(self._hyp_count.values())
        return MotScores(
            frames=self.frames, gt=self.gt, matches=self.matches, false_positives=self.fp,
            misses=self.misses, id_switches=self.switches,
            mota=1.0 - (self.misses + self.fp + self.switches) / max(self.gt, 1),
            idf1=2.0 * idtp / max(n_gt + n_hyp, 1),
            idp=idtp / max(n_hyp, 1), idr=idtp / max(n_gt, 1),
        )
