"""CSV and JSON export: one row per (frame, track, joint) with the joint's position.

Positions are in the wire frame (right-handed, y up, metres): the person's root position plus the
root-relative joints when the recording has a root, else root-relative. ``time`` is seconds since
the recording's first frame.
"""
from __future__ import annotations

import csv
import json
from pathlib import Path

from realtime.export.tracks import Recording, Track

COLUMNS = ("time", "seq", "track", "joint", "x", "y", "z")


def rows(recording: Recording, track: Track) -> list[tuple]:
    return [(round(t, 6), seq, track.track_id, name, *(round(float(v), 6) for v in xyz))
            for t, seq, joints in zip(track.times, track.seqs, track.joints)
            for name, xyz in zip(recording.joint_names, joints)]


def write_csv(path: str | Path, recording: Recording, tracks: list[Track]) -> None:
    with open(path, "w", newline="", encoding="utf-8") as f:
        w = csv.writer(f)
        w.writerow(COLUMNS)
        for track in tracks:
            w.writerows(rows(recording, track))


def write_json(path: str | Path, recording: Recording, tracks: list[Track]) -> None:
    doc = {"units": "m", "axes": "right-handed, y up (the wire frame)", "joint_names": list(recording.joint_names),
           "columns": list(COLUMNS), "rows": [r for t in tracks for r in rows(recording, t)]}
    Path(path).write_text(json.dumps(doc, separators=(",", ":")), encoding="utf-8")
