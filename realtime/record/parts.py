"""A run's recording in parts: a restarted publisher cannot append to the file its killed predecessor
left without a summary, so it records into ``<stem>.<n>.mcap``; at the end of the run the supervisor
joins the parts back into the one file the user asked for.

Joining rewrites the messages (not the bytes) of every part, in order, into ``<path>.joining`` and
renames that over ``path`` only once it is complete and closed, so a crash while joining loses
nothing: the parts stay until the joined file has replaced the first.
"""
from __future__ import annotations

import os
from pathlib import Path

from realtime.record.reader import RecordingReader
from realtime.record.recorder import Recorder


def part_path(path: str | Path, restarts: int) -> Path:
    """``path`` for the first publisher of a run, ``<stem>.<restarts>.mcap`` after a restart."""
    p = Path(path)
    return p if restarts == 0 else p.with_name(f"{p.stem}.{restarts}{p.suffix or '.mcap'}")


def join_parts(path: str | Path, restarts: int) -> tuple[int, int]:
    """Join the parts a publisher restarted ``restarts`` times wrote into ``path`` (complete, with a
    summary) and remove them. Only this run's parts are named, so a stale ``<stem>.<n>.mcap`` of an
    earlier run is never taken in.

    Returns (parts joined, messages written); (1, 0) when there was nothing to join. Messages a
    cut part lost at its end stay lost; everything each part holds is kept, in recorded order.
    """
    p = Path(path)
    rest = [q for q in (part_path(p, r) for r in range(1, restarts + 1)) if q.exists()]
    if not rest:
        return 1, 0
    parts = ([p] if p.exists() else []) + rest
    joining = p.with_name(p.name + ".joining")
    with Recorder(joining, flush_every_s=1e9) as out:
        for part in parts:
            reader = RecordingReader(part)
            for topic, log_time, payload in reader.raw():
                out.write(topic, log_time, payload)
        written = out.messages
    os.replace(joining, p)
    for part in rest:
        part.unlink()
    return len(parts), written
