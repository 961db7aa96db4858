"""A run's recording in parts: a restarted publisher cannot append to the file its killed predecessor
left without a summary, so it records into ``<stem>.<n>.mcap``; at the end of the run the supervisor
joins the parts back into the one file the user asked for (``realtime record join PATH`` does the
same by hand, e.g. after the supervisor itself was killed).

Joining rewrites the messages (not the bytes) of every part, in order, into ``<path>.joining`` and
renames that over ``path`` only once it is complete and closed, so a crash while joining loses
nothing: the parts stay until the joined file has replaced the first. A part that cannot be read at
all (empty: its publisher was killed before writing anything) is skipped, reported and left on
disk; a damaged chunk inside a part costs only that chunk.
"""
from __future__ import annotations

import logging
import os
from dataclasses import dataclass, field
from pathlib import Path

from realtime.record.reader import RecordingError, RecordingReader
from realtime.record.recorder import Recorder, wal_path

log = logging.getLogger("realtime.record")


def part_path(path: str | Path, restarts: int) -> Path:
    """``path`` for the first publisher of a run, ``<stem>.<restarts>.mcap`` after a restart."""
    p = Path(path)
    return p if restarts == 0 else p.with_name(f"{p.stem}.{restarts}{p.suffix or '.mcap'}")


def find_parts(path: str | Path) -> int:
    """How many restart parts ``path`` has beside it (``<stem>.1.mcap``, ``.2``, ... while they exist)."""
    n = 0
    while part_path(path, n + 1).exists():
        n += 1
    return n


@dataclass
class Joined:
    parts: int                      # parts read into the joined file
    messages: int                   # messages written
    #: Parts that could not be read at all, with the reason; they stay on disk.
    skipped: list[str] = field(default_factory=list)
    #: Damaged chunks skipped inside parts that were read ("file: bytes a-b ...").
    damaged: list[str] = field(default_factory=list)


def join_parts(path: str | Path, restarts: int | None = None) -> Joined:
    """Join the parts a publisher restarted ``restarts`` times wrote (None: every part found beside
    ``path``) into ``path`` (complete, with a summary) and remove the parts that were read. Only this
    run's parts are named, so a stale ``<stem>.<n>.mcap`` of an earlier run is never taken in.

    Messages a cut part lost at its end stay lost; everything each part holds is kept, in recorded
    order. ``Joined(1, 0)`` when there was nothing to join.
    """
    p = Path(path)
    restarts = find_parts(p) if restarts is None else restarts
    rest = [q for q in (part_path(p, r) for r in range(1, restarts + 1)) if q.exists()]
    if not rest:
        return Joined(1, 0)
    parts = ([p] if p.exists() else []) + rest
    joining = p.with_name(p.name + ".joining")
    joined = Joined(0, 0)
    read: list[Path] = []
    with Recorder(joining, flush_every_s=1e9, wal=False) as out:
        for part in parts:
            try:
                reader = RecordingReader(part)
                for topic, log_time, payload in reader.raw():
                    out.write(topic, log_time, payload)
            except RecordingError as e:
                joined.skipped.append(str(e))
                log.warning("recording part skipped: %s", e)
                continue
            joined.damaged += [e for e in reader.errors if "unreadable chunk" in e]
            read.append(part)
        joined.messages = out.messages
    joined.parts = len(read)
    os.replace(joining, p)
    for part in read:
        if part != p:
            part.unlink()
        wal_path(part).unlink(missing_ok=True)
    return joined


# -- realtime record ----------------------------------------------------------------------------------------

def add_arguments(p) -> None:
    p.add_argument("action", choices=("join",), help="join: a recording's restart parts into the one file")
    p.add_argument("path", help="the recording (PATH.mcap; its parts are PATH's stem.1.mcap, .2, ...)")


def run(args) -> int:
    import sys

    if not Path(args.path).exists() and not find_parts(args.path):
        print(f"error: {args.path}: no such recording, and no parts beside it", file=sys.stderr)
        return 2
    joined = join_parts(args.path)
    for reason in joined.skipped + joined.damaged:
        print(f"warning: {reason}", file=sys.stderr)
    print(f"{args.path}: {joined.parts} part(s) joined, {joined.messages} messages")
    return 0
