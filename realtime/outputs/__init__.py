"""Where the pose stream goes out: the ZeroMQ stream with its recording (``publisher.py``) and the
VMC protocol over OSC for Unity, Unreal and VTuber tools (``vmc.py``)."""
