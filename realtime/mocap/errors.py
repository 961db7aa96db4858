"""The one error type of the mocap readers, and the file and number reading they share."""
from __future__ import annotations

from pathlib import Path

import numpy as np


class MocapError(ValueError):
    """A mocap file is bad or truncated; the message names the file and, where known, the line."""

    def __init__(self, path: str | Path, message: str, line: int | None = None) -> None:
        self.path = Path(path)
        self.line = line
        where = self.path.name if line is None else f"{self.path.name} line {line}"
        super().__init__(f"{where}: {message}")


def read_lines(path: Path) -> list[str]:
    """A text mocap file's lines; undecodable bytes become U+FFFD and fail later with a line number."""
    try:
        return path.read_text(encoding="utf-8", errors="replace").splitlines()
    except OSError as e:
        raise MocapError(path, f"cannot read: {e.strerror}") from None


def parse_numbers(path: Path, line: int, tokens: list[str], what: str) -> np.ndarray:
    try:
        return np.array([float(t) for t in tokens])
    except ValueError:
        raise MocapError(path, f"{what}: not a number in {' '.join(tokens)!r}", line) from None
