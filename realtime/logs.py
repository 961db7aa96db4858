"""Structured logging for every process of a run: one line per record, text or JSON.

Fields passed as ``extra={"fields": {...}}`` become ``key=value`` pairs (text) or keys of the
JSON object, so operators can grep and machines can parse the same events.
"""
from __future__ import annotations

import json
import logging
import sys
import time
from typing import Any


class _Formatter(logging.Formatter):
    def __init__(self, fmt: str, process_name: str) -> None:
        super().__init__()
        self.json = fmt == "json"
        self.process_name = process_name

    def format(self, record: logging.LogRecord) -> str:
        fields: dict[str, Any] = getattr(record, "fields", None) or {}
        t = time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime(record.created)) + f".{int(record.msecs):03d}Z"
        message = record.getMessage()
        if record.exc_info:
            message += "\n" + self.formatException(record.exc_info)
        if self.json:
            return json.dumps({"t": t, "level": record.levelname.lower(), "proc": self.process_name,
                               "logger": record.name, "msg": message, **fields}, default=str)
        pairs = " ".join(f"{k}={v}" for k, v in fields.items())
        return f"{t} {record.levelname:<7} {self.process_name:<10} {message}" + (f" {pairs}" if pairs else "")


class _TerminalHandler(logging.StreamHandler):
    """On a terminal, each record first clears the line it starts on: the supervisor's live status
    line (redrawn in place, without a newline) is replaced by the log line instead of being glued to it."""

    def emit(self, record: logging.LogRecord) -> None:
        try:
            self.stream.write("\r\033[K")
        except (OSError, ValueError):
            pass
        super().emit(record)


def setup_logging(fmt: str, process_name: str, level: int = logging.INFO) -> None:
    """Route the ``realtime`` loggers of this process to stderr in ``fmt`` ("text" or "json")."""
    tty = fmt == "text" and hasattr(sys.stderr, "isatty") and sys.stderr.isatty()
    handler = _TerminalHandler(sys.stderr) if tty else logging.StreamHandler(sys.stderr)
    handler.setFormatter(_Formatter(fmt, process_name))
    root = logging.getLogger("realtime")
    root.handlers[:] = [handler]
    root.setLevel(level)
    root.propagate = False


def fields(**values: Any) -> dict[str, Any]:
    """``log.info("...", extra=fields(a=1))``"""
    return {"fields": values}


class Throttled:
    """A recurring problem (a rejected message, a flood) counted on every call and logged at most
    once per ``every_s`` with how many there were since: a flood of bad input costs one log line per
    interval, not one per message (which would fill a disk before anyone reads it)."""

    def __init__(self, log: logging.Logger, message: str, every_s: float = 5.0, level: int = logging.WARNING):
        self.log, self.message, self.every_s, self.level = log, message, every_s, level
        self.count = 0
        self._since = 0
        self._last = -float("inf")

    def __call__(self, **values: Any) -> None:
        self.count += 1
        self._since += 1
        now = time.monotonic()
        if now - self._last >= self.every_s:
            self.log.log(self.level, self.message, extra=fields(count=self.count, since_last_line=self._since,
                                                                **values))
            self._last, self._since = now, 0
