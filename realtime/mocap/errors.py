"""The one error type of the mocap readers."""
from __future__ import annotations

from pathlib import Path


class MocapError(ValueError):
    """A mocap file is bad or truncated; the message names the file and, where known, the line."""

    def __init__(self, path: str | Path, message: str, line: int | None = None) -> None:
        self.path = Path(path)
        self.line = line
        where = self.path.name if line is None else f"{self.path.name} line {line}"
        super().__init__(f"{where}: {message}")
