"""Adapters that publish the pose stream to other tools' protocols (VMC over OSC for Unity, Unreal, VTubers)."""
