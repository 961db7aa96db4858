"""Stable person ids across frames (:class:`Tracker`) and per-track temporal filtering (:class:`TrackFilter`)."""
from realtime.tracking.filters import OneEuroFilter, TrackFilter
from realtime.tracking.ids import TrackIds
from realtime.tracking.tracker import DetectionError, Track, Tracker, track_people

__all__ = ["DetectionError", "OneEuroFilter", "Track", "TrackFilter", "TrackIds", "Tracker", "track_people"]
