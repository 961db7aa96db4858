"""Reading recordings back, including files cut short by a killed recorder.

The reader streams records in file order (the order they were written, i.e. publish order)
instead of seeking to the summary, because a recording whose writer was killed has no summary
or footer: every complete chunk before the cut is still read, then the messages of the recorder's
write-ahead log (``<path>.wal``, see :mod:`realtime.record.recorder`) that no chunk holds, and the
cut is reported in :attr:`RecordingReader.truncated` rather than raised. Each chunk is decompressed and checked (its
CRC) on its own, so a damaged chunk (a flipped byte on disk) is skipped with one warning naming its
byte range, and every other chunk is still read.
"""
from __future__ import annotations

import logging
import struct
from collections.abc import Iterator
from pathlib import Path

from mcap.exceptions import McapError
from mcap.records import Channel, Chunk, Message
from mcap.stream_reader import StreamReader, breakup_chunk

from realtime.record.recorder import MESSAGE_ENCODING, WAL_ENTRY, wal_path
from realtime.transport.schema import Frame, SchemaError, Skeleton, unpack


log = logging.getLogger("realtime.record")

#: The largest record the reader loads (a chunk is ~1 s of the stream): a damaged length field
#: cannot make it allocate more.
_RECORD_LIMIT = 1 << 30


class RecordingError(ValueError):
    """A file is not a readable recording; the message names the file."""


class RecordingReader:
    """Iterates ``(topic, log_time_ns, Skeleton | Frame)``; counts what it had to skip.

    ``skipped`` counts messages whose payload does not follow the wire schema (each is reported
    in ``errors`` with its topic and log time); ``corrupt`` lists the ``(first, last)`` byte ranges
    of chunks that could not be read and were skipped; ``truncated`` is true when the file ends
    inside a record, as after SIGKILL of the recorder.
    """

    def __init__(self, path: str | Path) -> None:
        self.path = Path(path)
        if not self.path.is_file():
            raise RecordingError(f"{self.path}: no such recording")
        self.skipped = 0
        self.truncated = False
        self.corrupt: list[tuple[int, int]] = []
        #: Messages read from the write-ahead log (published after the last closed chunk of a killed recorder).
        self.recovered = 0
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
        self._last_sequence = -1
        with open(self.path, "rb") as f:
            stream = StreamReader(f, emit_chunks=True, record_size_limit=_RECORD_LIMIT)
            records = stream.records
            start = 8  # after the magic
            while True:
                try:
                    record = next(records)
                except StopIteration:
                    break
                except (McapError, struct.error, EOFError, ValueError, MemoryError) as e:
                    if f.tell() <= 8 and not channels and not self._wal_entries():
                        raise RecordingError(f"{self.path}: not an MCAP recording ({e})") from None
                    self.truncated = True
                    break
                end = getattr(getattr(stream, "_stream", None), "count", start)
                inner = [record]
                if isinstance(record, Chunk):
                    try:
                        inner = list(breakup_chunk(record, validate_crc=True))
                    except Exception as e:  # a damaged chunk: zstd/lz4 error, CRC mismatch, bad records
                        self.corrupt.append((start, end - 1))
                        self.errors.append(f"{self.path}: bytes {start}-{end - 1}: unreadable chunk skipped "
                                           f"({type(e).__name__})")
                        log.warning("%s", self.errors[-1])
                        inner = []
                start = end
                for record in inner:
                    yield from self._messages(record, channels)
        for sequence, log_time, topic, payload in self._wal_entries():
            if sequence > self._last_sequence:
                self.recovered += 1
                yield topic, log_time, payload

    def _wal_entries(self) -> list[tuple[int, int, str, bytes]]:
        """The write-ahead log's complete entries (a last one cut by the kill is left out)."""
        try:
            data = wal_path(self.path).read_bytes()
        except OSError:
            return []
        entries, at = [], 0
        while at + WAL_ENTRY.size <= len(data):
            size, sequence, log_time, topic_size = WAL_ENTRY.unpack_from(data, at)
            at += WAL_ENTRY.size
            if at + topic_size + size > len(data):
                break
            topic = data[at:at + topic_size].decode("utf-8", errors="replace")
            entries.append((sequence, log_time, topic, data[at + topic_size:at + topic_size + size]))
            at += topic_size + size
        return entries

    def _messages(self, record: object, channels: dict[int, Channel]) -> Iterator[tuple[str, int, bytes]]:
        """A channel is remembered; a message on a known channel is yielded, on an unknown one counted."""
        if isinstance(record, Channel):
            if record.message_encoding != MESSAGE_ENCODING:
                raise RecordingError(f"{self.path}: channel {record.topic!r} has message encoding "
                                     f"{record.message_encoding!r}, expected {MESSAGE_ENCODING!r}")
            channels[record.id] = record
        elif isinstance(record, Message):
            self._last_sequence = max(self._last_sequence, record.sequence)
            channel = channels.get(record.channel_id)
            if channel is None:
                self.skipped += 1
                self.errors.append(f"{self.path}: message on unknown channel {record.channel_id}")
                return
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
