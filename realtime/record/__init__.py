"""Recording the published stream to MCAP and reading it back (``realtime replay`` republishes it)."""
from realtime.record.parts import join_parts, part_path
from realtime.record.reader import RecordingError, RecordingReader, read_recording
from realtime.record.recorder import Recorder

__all__ = ["Recorder", "RecordingReader", "RecordingError", "join_parts", "part_path",
           "read_recording"]
