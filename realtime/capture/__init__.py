"""Video sources (files, webcams, RTSP/HTTP streams, the demo video) read through OpenCV."""
from realtime.capture.source import (DEMO_VIDEO, CapturedFrame, SourceError, VideoSource, resolve_uri, source_kind,
                                     video_frames)

__all__ = ["VideoSource", "CapturedFrame", "SourceError", "resolve_uri", "source_kind", "video_frames", "DEMO_VIDEO"]
