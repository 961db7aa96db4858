"""The streaming runtime: supervisor and stage processes (capture, inference, lifting workers, publisher)."""
