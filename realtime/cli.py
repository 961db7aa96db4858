"""``realtime`` command line: one subcommand per job, each implemented beside the code it drives.

Each module listed in COMMANDS provides ``add_arguments(parser)`` and ``run(args) -> int`` and
keeps its top-level imports light, so ``realtime --help`` stays fast.
"""
from __future__ import annotations

import argparse
import importlib
import os
import sys

COMMANDS: dict[str, tuple[str, str]] = {
    "run": ("realtime.runtime.supervisor", "run the streaming pipeline on a source"),
    "replay": ("realtime.record.replay", "republish a recorded MCAP session"),
    "estimate": ("realtime.pose2d.cli", "2D (and 3D) poses of the people in images or video files"),
    "models": ("realtime.pose2d.models", "fetch upstream model files and build ONNX/engines"),
    "export": ("realtime.export.cli", "export a recording to BVH, CSV or JSON"),
    "view": ("realtime.viewer.cli", "a live browser viewer of the stream (or of a recording)"),
    "vmc": ("realtime.outputs.vmc", "send poses to Unity/Unreal/VTuber tools over the VMC protocol"),
    "record": ("realtime.record.parts", "join a recording's parts left by publisher restarts"),
    "keys": ("realtime.transport.security", "generate the run secret and CURVE keys for secure sockets"),
    "config": ("realtime.config", "show the configuration in effect, each key with its source and help"),
}


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="realtime", description="Real-time multi-person 3D human pose estimation, streamed.")
    sub = parser.add_subparsers(dest="command", required=True)
    for name, (module, help_text) in COMMANDS.items():
        mod = importlib.import_module(module)
        p = sub.add_parser(name, help=help_text, description=help_text)
        mod.add_arguments(p)
        p.set_defaults(_run=mod.run)
    return parser


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    try:
        return int(args._run(args) or 0)
    except KeyboardInterrupt:
        return 130
    except BrokenPipeError:
        # the reader went away (`realtime estimate clip.mp4 --json | head`): stop quietly, as a Unix
        # tool does, with nothing more written to the closed pipe (Python's documented recipe)
        os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())
        return 141


if __name__ == "__main__":
    sys.exit(main())
