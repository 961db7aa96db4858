"""Track ids that are never given twice in a session: across sources and across publisher restarts.

One :class:`TrackIds` serves the trackers of every source, so two cameras never hand out the same
id (VMC, the Blender add-on and recordings key people by it). With a ``state`` file the ids survive
the publisher process: ids are reserved in blocks, and the end of the current block is written
(atomically: a temporary file renamed over the old) *before* any id of it is given out. A restarted
publisher starts after the last reserved block, so a kill at any moment can skip ids, never repeat
one. The supervisor keeps the file in the run's own directory.
"""
from __future__ import annotations

import os
from pathlib import Path

#: Ids reserved per write of the state file.
BLOCK = 100


class TrackIds:
    """``next()`` -> a new id (1, 2, ...; after a restart, the first id past the reserved ones)."""

    def __init__(self, state: str | Path | None = None) -> None:
        self.state = Path(state) if state is not None else None
        self._next = self._reserved = self._read() if self.state is not None else 0

    def __call__(self) -> int:
        if self.state is not None and self._next >= self._reserved:
            self._reserve(self._next + BLOCK)
        self._next += 1
        return self._next

    def _read(self) -> int:
        try:
            text = self.state.read_text().strip()  # type: ignore[union-attr]
        except FileNotFoundError:
            return 0
        if not text.isdigit():
            raise ValueError(f"{self.state}: not a track-id counter (expected a number, got {text[:40]!r})")
        return int(text)

    def _reserve(self, upto: int) -> None:
        assert self.state is not None
        tmp = self.state.with_name(self.state.name + ".tmp")
        tmp.write_text(f"{upto}\n")
        os.replace(tmp, self.state)
        self._reserved = upto
