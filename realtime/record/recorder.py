"""MCAP recording of the published stream (skeleton + frames), crash-tolerant.

The tracker/publisher owns one :class:`Recorder` and writes each message *before* publishing it, so
the file holds every message a subscriber saw, with no extra socket hop that could drop messages.

Messages are gathered in zstd-compressed MCAP chunks, closed at least every ``flush_every_s``. So
that a SIGKILLed process loses nothing it published, each message also goes, as it is written, to a
write-ahead log beside the file (``<path>.wal``: one ``write`` system call per message, straight to
the operating system, no buffer in this process) that is emptied whenever a chunk has reached the
OS. After a kill, the file holds every closed chunk and the log every message after them;
:mod:`realtime.record.reader` reads both, in order (entries carry the message's sequence number, so
one also in a chunk is read once). A clean close removes the log. (A power cut can still lose what
the OS had not written to disk: nothing here calls ``fsync`` per frame.)
"""
from __future__ import annotations

import os
import struct
import time
from pathlib import Path

from mcap.writer import CompressionType, Writer

from realtime import __version__
from realtime.transport.schema import SCHEMA_VERSION

#: MCAP message encoding of every channel: payloads are the wire schema's msgpack maps.
MESSAGE_ENCODING = "msgpack"
PROFILE = "realtime"
#: A write-ahead log entry: payload length, sequence, log time (ns), topic length; then topic, payload.
WAL_ENTRY = struct.Struct("<IQQH")


def wal_path(path: str | Path) -> Path:
    """The write-ahead log of the recording at ``path``."""
    p = Path(path)
    return p.with_name(p.name + ".wal")


class Recorder:
    """Writes ``(topic, log_time_ns, payload)`` messages into one MCAP file, one channel per topic."""

    def __init__(self, path: str | Path, flush_every_s: float = 1.0, wal: bool = True) -> None:
        """``wal``: keep the write-ahead log (off only for files written in one go, e.g. a join)."""
        self.path = Path(path)
        self.path.parent.mkdir(parents=True, exist_ok=True)
        self._file = open(self.path, "wb")
        self._writer = Writer(self._file, compression=CompressionType.ZSTD)
        self._writer.start(profile=PROFILE, library=f"realtime {__version__}")
        self._file.flush()  # the header on disk at once: a file killed before its first chunk is still MCAP
        self._wal = os.open(wal_path(self.path), os.O_WRONLY | os.O_CREAT | os.O_TRUNC | os.O_APPEND, 0o644) \
            if wal else None
        self._channels: dict[str, int] = {}
        self._flush_every_s = flush_every_s
        self._last_flush = time.monotonic()
        self._pending = 0
        self.messages = 0

    def write(self, topic: str | bytes, log_time_ns: int, payload: bytes,
              publish_time_ns: int | None = None) -> None:
        topic_bytes = topic if isinstance(topic, bytes) else topic.encode("utf-8")
        topic = topic_bytes.decode("utf-8")
        channel = self._channels.get(topic)
        if channel is None:
            channel = self._writer.register_channel(
                topic=topic, message_encoding=MESSAGE_ENCODING, schema_id=0,
                metadata={"schema_version": str(SCHEMA_VERSION)})
            self._channels[topic] = channel
        if self._wal is not None:
            os.write(self._wal, WAL_ENTRY.pack(len(payload), self.messages, int(log_time_ns), len(topic_bytes))
                     + topic_bytes + payload)
        self._writer.add_message(channel_id=channel, log_time=int(log_time_ns), data=payload,
                                 publish_time=int(publish_time_ns if publish_time_ns is not None
                                                  else log_time_ns),
                                 sequence=self.messages)
        self.messages += 1
        self._pending += 1
        self.tick()

    def tick(self) -> None:
        """Close the chunk in progress when it is older than ``flush_every_s``."""
        if self._pending and time.monotonic() - self._last_flush >= self._flush_every_s:
            self.flush()

    def flush(self) -> None:
        """Close the chunk in progress and hand it to the OS; the log then starts empty again."""
        self._writer.flush()
        self._file.flush()
        if self._wal is not None:
            os.ftruncate(self._wal, 0)
        self._pending = 0
        self._last_flush = time.monotonic()

    def close(self) -> None:
        """Write the summary and indexes (a complete, seekable MCAP file), close it, drop the log."""
        if self._file.closed:
            return
        self._writer.finish()
        self._file.close()
        if self._wal is not None:
            os.close(self._wal)
            self._wal = None
            wal_path(self.path).unlink(missing_ok=True)

    def __enter__(self) -> "Recorder":
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()
