"""Exports of a recording: BVH (rig rotations) for animation tools, CSV/JSON (joint positions)."""
from realtime.export.tracks import ExportError, Recording, Track, load_tracks

__all__ = ["ExportError", "Recording", "Track", "load_tracks"]
