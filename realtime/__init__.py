"""Real-time multi-person 3D human pose estimation as a streaming system.

Data flow: capture -> pose2d -> lifting -> tracking -> publish/record, with ``transport``
(sockets, wire schema) and ``config`` beside it.
"""
__version__ = "0.1.0"
