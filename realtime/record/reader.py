"""Reading recordings back, including files cut short by a killed recorder.

The reader streams records in file order (the order they were written, i.e. publish order)
instead of seeking to the summary, because a recording whose writer was killed has no summary
or footer: every complete chunk before the cut is still read, and the cut is reported in
:attr:`RecordingReader.truncated` rather than raised.
"""
from __future__ import annotations

import struct
from collections.abc import Iterator
from pathlib import Path

from mcap.exceptions import McapError
from mcap.records import Channel, Message
from mcap.stream_reader import StreamReader

from realtime.record.recorder import MESSAGE_ENCODING
from realtime.transport.schema import Frame, SchemaError, Skeleton, unpack


class RecordingError(ValueError):
    """A file is not a readable recording; the message names the file."""


class RecordingReader:
    """Iterates ``(topic, log_time_ns, Skeleton | Frame)``; counts what it had to skip.

    ``skipped`` counts messages whose payload does not follow the wire schema (each is reported
    in ``errors`` with its topic and log time); ``truncated`` is true when the file ends inside a
    record, as after SIGKILL of the recorder.
    """

    def __init__(self, path: str | Path) -> None:
        self.path = Path(path)
        if not self.path.is_file():
            raise RecordingError(f"{self.path}: no such recording")
        self.skipped = 0
        self.truncated = False
        self.errors: list[str] = []

    def __iter__(self) -> Iterator[tuple[str, int, Skeleton | Frame]]:
        for topic, log_time, payload in self.raw():
            try:
                message = unpack(payload)
            except SchemaError as e:
                self.skipped += 1
                self.errors.append(f"{self.path}: {topic} at {log_time} ns: {e}")
                continue
            yield topic, log_time, message

    def raw(self) -> Iterator[tuple[str, int, bytes]]:
        """The undecoded payloads, for republishing byte for byte."""
        channels: dict[int, Channel] = {}
        with open(self.path, "rb") as f:
            records = StreamReader(f).records
            while True:
                try:
                    record = next(records)
                except StopIteration:
                    return
                except (McapError, struct.error, EOFError, ValueError) as e:
                    if f.tell() <= 8 and not channels:
                        raise RecordingError(f"{self.path}: not an MCAP recording ({e})") from None
                    self.truncated = True
                    return
                if isinstance(record, Channel):
                    if record.message_encoding != MESSAGE_ENCODING:
                        raise RecordingError(f"{self.path}: channel {record.topic!r} has message encoding "
                                             f"{record.message_encoding!r}, expected {MESSAGE_ENCODING!r}")
                    channels[record.id] = record
                elif isinstance(record, Message):
                    channel = channels.get(record.channel_id)
                    if channel is None:
                        self.skipped += 1
                        self.errors.append(f"{self.path}: message on unknown channel {record.channel_id}")
                        continue
                    yield channel.topic, record.log_time, record.data


def message_count(path: str | Path) -> int | None:
    """How many messages a recording holds, from its summary (for progress bars); None when it has none
    (a file cut short by a killed recorder)."""
    from mcap.reader import make_reader

    try:
        with open(path, "rb") as f:
            summary = make_reader(f).get_summary()
        return None if summary is None or summary.statistics is None else int(summary.statistics.message_count)
    except Exception:  # no summary, or not an MCAP file: the reader reports that itself
        return None


def read_recording(path: str | Path) -> Iterator[tuple[str, int, Skeleton | Frame]]:
    """``(topic, log_time_ns, message)`` for every message of a recording, in recorded order."""
    return iter(RecordingReader(path))
