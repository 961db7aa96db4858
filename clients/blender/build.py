"""Assemble the Blender add-on: the package, the rig it needs, and (optionally) its wheels.

The rig (realtime/rig/humanoid.py, numpy only) is copied in rather than kept twice in the
repository, so Blender runs the same rotation code as the rest of the system.

    python clients/blender/build.py build/realtime_pose            # folder (legacy add-on)
    python clients/blender/build.py build/realtime_pose --zip      # + build/realtime_pose.zip
    python clients/blender/build.py build/realtime_pose --wheels   # + wheels/ for a 4.2+ extension
"""
from __future__ import annotations

import argparse
import re
import shutil
import subprocess
import sys
import tomllib
from pathlib import Path

HERE = Path(__file__).resolve().parent
PACKAGE = HERE / "realtime_pose"
RIG = HERE.parent.parent / "realtime" / "rig" / "humanoid.py"
_WHEEL = re.compile(r"^(?P<name>[^-]+)-(?P<version>[^-]+)-(?P<py>[^-]+)-(?P<abi>[^-]+)-(?P<platform>[^-]+)\.whl$")


def assemble(dest: Path, wheels: bool = False) -> Path:
    """Write the add-on folder ``dest`` (replacing it); returns it."""
    if dest.exists():
        shutil.rmtree(dest)
    shutil.copytree(PACKAGE, dest, ignore=shutil.ignore_patterns("__pycache__", "*.pyc"))
    shutil.copy2(RIG, dest / "humanoid.py")
    if wheels:
        download_wheels(dest)
    return dest


def download_wheels(dest: Path) -> None:
    """Fetch exactly the wheels the manifest lists (pip download, no dependencies)."""
    manifest = tomllib.loads((dest / "blender_manifest.toml").read_text(encoding="utf-8"))
    target = dest / "wheels"
    target.mkdir(exist_ok=True)
    for entry in manifest["wheels"]:
        m = _WHEEL.match(Path(entry).name)
        if m is None:
            raise SystemExit(f"blender_manifest.toml: {entry!r} is not a wheel file name")
        cmd = [sys.executable, "-m", "pip", "download", "--no-deps", "--only-binary=:all:", "-d", str(target),
               f"{m['name']}=={m['version']}"]
        if m["platform"] != "any":
            cmd += ["--python-version", "3.11", "--implementation", "cp", "--abi", m["abi"]]
            cmd += [a for tag in m["platform"].split(".") for a in ("--platform", tag)]
        subprocess.run(cmd, check=True)
        if not (target / Path(entry).name).exists():
            raise SystemExit(f"pip did not produce {Path(entry).name}")


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("dest", type=Path, help="add-on folder to write, e.g. build/realtime_pose")
    p.add_argument("--zip", action="store_true", help="also write DEST.zip (install it in Preferences > Add-ons)")
    p.add_argument("--wheels", action="store_true", help="download the manifest's wheels (Blender 4.2+ extension)")
    args = p.parse_args(argv)
    dest = assemble(args.dest, args.wheels)
    if args.zip:
        print(shutil.make_archive(str(dest), "zip", dest.parent, dest.name))
    print(dest)
    return 0


if __name__ == "__main__":
    sys.exit(main())
