"""MCAP recording of the published stream (skeleton + frames), crash-tolerant.

The tracker/publisher owns one :class:`Recorder` and writes each message right after publishing
it, so the file holds exactly what subscribers saw, with no extra socket hop that could drop
messages. The chunk in progress is closed and handed to the OS at least every ``flush_every_s``
(:meth:`Recorder.tick` is called from the publisher's loop even when no frames arrive), so a
SIGKILLed process loses at most that much: everything before is complete chunks that
:mod:`realtime.record.reader` reads back without the summary section a clean close would write.
"""
from __future__ import annotations

import time
from pathlib import Path

from mcap.writer import CompressionType, Writer

from realtime import __version__
from realtime.transport.schema import SCHEMA_VERSION

#: MCAP message encoding of every channel: payloads are the wire schema's msgpack maps.
MESSAGE_ENCODING = "msgpack"
PROFILE = "realtime"


class Recorder:
    """Writes ``(topic, log_time_ns, payload)`` messages into one MCAP file, one channel per topic."""

    def __init__(self, path: str | Path, flush_every_s: float = 1.0) -> None:
        self.path = Path(path)
        self.path.parent.mkdir(parents=True, exist_ok=True)
        self._file = open(self.path, "wb")
        self._writer = Writer(self._file, compression=CompressionType.ZSTD)
        self._writer.start(profile=PROFILE, library=f"realtime {__version__}")
        self._channels: dict[str, int] = {}
        self._flush_every_s = flush_every_s
        self._last_flush = time.monotonic()
        self._pending = 0
        self.messages = 0

    def write(self, topic: str | bytes, log_time_ns: int, payload: bytes,
              publish_time_ns: int | None = None) -> None:
        if isinstance(topic, bytes):
            topic = topic.decode("utf-8")
        channel = self._channels.get(topic)
        if channel is None:
            channel = self._writer.register_channel(
                topic=topic, message_encoding=MESSAGE_ENCODING, schema_id=0,
                metadata={"schema_version": str(SCHEMA_VERSION)})
            self._channels[topic] = channel
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
        self._writer.flush()
        self._pending = 0
        self._last_flush = time.monotonic()

    def close(self) -> None:
        """Write the summary and indexes (a complete, seekable MCAP file) and close it."""
        if self._file.closed:
            return
        self._writer.finish()
        self._file.close()

    def __enter__(self) -> "Recorder":
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()
