"""``realtime export``: a recording to BVH, CSV or JSON, one file per track unless one is chosen; or one
HTML report of the whole recording (``--format html``, ``realtime.export.html``)."""
from __future__ import annotations

import argparse
import sys
from pathlib import Path

FORMATS = ("bvh", "csv", "json", "html")


def add_arguments(p: argparse.ArgumentParser) -> None:
    p.add_argument("recording", metavar="PATH.mcap", help="a recording made by `realtime run --record`")
    p.add_argument("--format", choices=FORMATS, help="default: from --output's suffix")
    p.add_argument("--output", required=True, metavar="PATH",
                   help="file to write; without --track, one file per track: PATH with _<id> before the suffix "
                        "(html: one report of every track)")
    p.add_argument("--track", type=int, help="export only this track id")
    p.add_argument("--source", help="source name, when the recording holds several")


def output_path(output: Path, track_id: int | None) -> Path:
    return output if track_id is None else output.with_name(f"{output.stem}_{track_id}{output.suffix}")


def export(recording_path: str | Path, output: str | Path, fmt: str, track: int | None = None,
           source: str | None = None) -> list[Path]:
    """Write the export; returns the files written (notes on a damaged recording go to stderr)."""
    from realtime.export.tracks import ExportError, load_tracks
    if fmt not in FORMATS:
        raise ExportError(f"unknown format {fmt!r} (choose {', '.join(FORMATS)})")
    if fmt == "html":
        from realtime.export.html import write_report
        return [write_report(recording_path, output, source, track)]
    recording = load_tracks(recording_path, track, source)
    if recording.skipped or recording.truncated:
        print(f"realtime export: {recording_path}: {recording.skipped} undecodable messages skipped"
              + (", file cut short (exported up to the cut)" if recording.truncated else ""), file=sys.stderr)
    output = Path(output)
    written = []
    for tid, t in sorted(recording.tracks.items()):
        path = output_path(output, None if track is not None else tid)
        if fmt == "bvh":
            _write_bvh(path, recording, t)
        else:
            from realtime.export import tabular
            (tabular.write_csv if fmt == "csv" else tabular.write_json)(path, recording, [t])
        written.append(path)
    return written


def _write_bvh(path: Path, recording, track) -> None:
    """One BVH frame per source frame from the track's first to last pose; gaps hold the last pose."""
    from realtime.export.bvh import write_bvh
    from realtime.rig import HumanoidRig
    from realtime.skeleton import PARENT_INDEX3D
    skel = recording.skeleton
    rig = HumanoidRig.for_stream(recording.joint_names, skel.parents if skel else PARENT_INDEX3D,
                                 skel.rest_offsets if skel else [], track.joints[0])
    by_time = dict(zip(track.times, track.joints))
    span = [t for t in recording.frame_times if track.times[0] <= t <= track.times[-1]]
    poses, pose = [], None
    for t in span:
        if t in by_time:
            pose = rig.pose(by_time[t])
        poses.append(pose)
    write_bvh(path, rig, poses, recording.frame_time)


def run(args: argparse.Namespace) -> int:
    from realtime.export.tracks import ExportError
    from realtime.rig import RigError
    fmt = args.format or Path(args.output).suffix.lstrip(".").lower()
    if fmt not in FORMATS:
        print(f"realtime export: cannot tell the format from {args.output!r}; give --format "
              f"{'|'.join(FORMATS)}", file=sys.stderr)
        return 2
    try:
        written = export(args.recording, args.output, fmt, args.track, args.source)
    except (ExportError, RigError, OSError) as e:
        print(f"realtime export: {e}", file=sys.stderr)
        return 1
    for path in written:
        print(path)
    return 0
