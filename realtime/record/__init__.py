"""Recording the published stream to MCAP and reading it back (``realtime replay`` republishes it)."""
from realtime.record.reader import RecordingError, RecordingReader, read_recording
from realtime.record.recorder import Recorder

__all__ = ["Recorder", "RecordingReader", "RecordingError", "read_recording"]
