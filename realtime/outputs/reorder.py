"""Putting one source's results back in order after load-balanced lifting workers.

Inference numbers the frames it sends consecutively (``iseq``) within one run of that process
(``epoch``). A result that arrives early waits for the ones before it, but only for
``wait_s``: then the missing ones are counted as lost (a killed worker took them) and the
stream moves on, so one lost message never stalls publishing.
"""
from __future__ import annotations

from typing import Any


class Reorder:
    def __init__(self, wait_s: float) -> None:
        self.wait_s = wait_s
        self.lost = 0
        self._epoch: int | None = None
        self._next = 0
        self._waiting: dict[int, tuple[float, Any]] = {}
        self._ready: list[Any] = []
        self._fresh = True   # nothing popped yet in this epoch (a restarted publisher joins mid-way)

    def push(self, epoch: int, iseq: int, item: Any, now: float) -> None:
        if self._epoch is None or epoch > self._epoch:
            self._ready += [self._waiting[k][1] for k in sorted(self._waiting)]
            self._waiting.clear()
            self._epoch, self._next, self._fresh = epoch, 0, True
        if epoch < self._epoch or iseq < self._next:
            self.lost += 1
            return
        self._waiting[iseq] = (now, item)

    def pop(self, now: float) -> list[Any]:
        """Items now in order: every consecutive one, and past any gap older than ``wait_s``."""
        out, self._ready = self._ready, []
        while self._waiting:
            if self._next in self._waiting:
                out.append(self._waiting.pop(self._next)[1])
                self._next += 1
                self._fresh = False
                continue
            first = min(self._waiting)
            if now - min(t for t, _ in self._waiting.values()) < self.wait_s:
                break
            self.lost += 0 if self._fresh else first - self._next
            self._next = first
        return out

    def deadline(self) -> float | None:
        """When :meth:`pop` will give up waiting for a gap (None: nothing is waiting)."""
        if not self._waiting:
            return None
        return min(t for t, _ in self._waiting.values()) + self.wait_s
