"""Check the Blender add-on as a Blender 4.2+ *extension*, in the PyPI ``bpy`` module (Blender 4.2).

tests/test_blender.py runs the add-on as a legacy add-on in Debian's Blender 3.4; this script checks
the extension path that test cannot: blender_manifest.toml, the bundled wheels and installing the
zip as an extension. It is a manual tool, not part of the test suite (nothing imports it, and the
project does not depend on bpy). It

1. builds the extension with ``clients/blender/build.py DEST --zip --wheels`` (downloads the wheels
   the manifest lists, so it needs PyPI or a pip index that has them),
2. validates that zip with Blender's own extension tool (``blender_ext.py validate``) and builds the
   folder with it too (``blender_ext.py build``, what the manifest's comment suggests),
3. in a fresh Blender user folder (``BLENDER_USER_RESOURCES``), installs the zip with
   ``bpy.ops.extensions.package_install_files(repo="user_default", enable_on_install=True)``, checks
   that it is enabled as ``bl_ext.user_default.realtime_pose`` and that pyzmq, msgpack, mcap and
   lz4 are imported from the wheels Blender installed (``extensions/.local``),
4. runs what tests/blender/offline_check.py checks: a BVH export imported with Blender's importer,
   an MCAP recording imported as one keyed armature per track (bone heads compared with the
   recorded joints), a recording cut short, a file that is no recording,
5. runs the live link as tests/blender/live_check.py does in background mode (a ZeroMQ publisher
   here, the add-on's timer callback called by hand inside bpy), unless ``--no-live``,
6. disables, re-enables and uninstalls the extension (unregister/register).

It prints one PASS/FAIL line per check and exits 1 if any failed. Test data are the same as the
tests': two CMU mocap people from ../shared/data/mocap/cmu (``--shared`` or REALTIME_SHARED).

Setup (once; bpy 4.2 needs Python 3.11; numpy 1.26 is what Blender 4.2 bundles, unpinned pip takes
numpy 2, with which the checks passed too):

    /root/.pyenv/versions/3.11.7/bin/python -m venv /tmp/bpy42
    /tmp/bpy42/bin/pip install bpy==4.2.0 numpy==1.26.4

bpy's ``__init__.so`` links the X11/GL client libraries even in background mode (``ldd`` on it lists
any that are missing); on Debian/Ubuntu
``apt-get install -y libx11-6 libxi6 libxkbcommon0 libsm6 libgl1 libxrender1 libxxf86vm1 libxfixes3``
(they were already installed where this was first run). Then, from the repository root, with the
project's own environment (it writes the test data with the realtime package):

    .venv/bin/python tools/check_blender_extension.py --bpy-python /tmp/bpy42/bin/python

Options: ``--work DIR`` (default: a temporary folder, removed afterwards unless ``--keep``),
``--no-live``, ``--timeout S`` for the bpy process (default 300).
"""
from __future__ import annotations

import argparse
import json
import os
import shutil
import subprocess
import sys
import tempfile
import threading
import time
import traceback
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
EXT_ID = "realtime_pose"
MODULE = f"bl_ext.user_default.{EXT_ID}"
FPS = 30
FRAMES = 12
#: Modules the extension's wheels provide (zstandard is also one of bpy's own dependencies).
BUNDLED = ["zmq", "msgpack", "mcap", "lz4", "zstandard"]
FROM_WHEELS = ["zmq", "msgpack", "mcap", "lz4"]


# --------------------------------------------------------------------------- inside bpy

def inside(config_path: str) -> int:
    """Run in the bpy venv's Python: install the extension, exercise it, write results.json."""
    import importlib

    import bpy

    cfg = json.loads(Path(config_path).read_text())
    out = Path(cfg["out"])
    sys.path.insert(0, str(REPO / "tests" / "blender"))
    from common import bone_heads, keyed_frames, live_results  # the tests' helpers (they only use bpy)

    results: dict = {"version": bpy.app.version_string, "background": bpy.app.background}

    def save() -> None:
        (out / "results.json").write_text(json.dumps(results))

    def step(name):
        def run(fn):
            try:
                results[name] = fn()
            except BaseException:  # noqa: BLE001 - every failure is reported, then the next step runs
                results[name] = {"error": traceback.format_exc()}
            save()
        return run

    @step("install")
    def _install():
        r = bpy.ops.extensions.package_install_files(filepath=cfg["zip"], repo="user_default",
                                                     enable_on_install=True)
        pkg = importlib.import_module(MODULE)
        deps = {}
        for name in BUNDLED:
            try:
                deps[name] = importlib.import_module(name).__file__
            except ImportError as e:
                deps[name] = f"ImportError: {e}"
        return {"result": sorted(r), "enabled": MODULE in bpy.context.preferences.addons,
                "file": pkg.__file__, "deps": deps,
                "site": str(Path(bpy.utils.user_resource("EXTENSIONS", path=".local")))}

    if "error" in results["install"]:
        return 0
    scene = bpy.context.scene
    scene.render.fps, scene.render.fps_base = cfg["fps"], 1.0

    @step("bvh")
    def _bvh():
        before = set(bpy.data.objects.keys())
        assert bpy.ops.realtime_pose.import_bvh(filepath=cfg["bvh"]) == {"FINISHED"}
        (arm,) = [bpy.data.objects[n] for n in set(bpy.data.objects.keys()) - before
                  if bpy.data.objects[n].type == "ARMATURE"]
        start, end = (int(round(v)) for v in arm.animation_data.action.frame_range)
        return {"bones": [b.name for b in arm.data.bones], "frame_start": start, "frame_end": end,
                "scene_fps": scene.render.fps, "first": bone_heads(arm, [start])[start]}

    @step("mcap")
    def _mcap():
        assert bpy.ops.realtime_pose.import_mcap(filepath=cfg["mcap"]) == {"FINISHED"}
        got = {}
        for obj in bpy.data.objects:
            if obj.name.startswith("recorded_"):
                frames = keyed_frames(obj)
                got[obj.name] = {"keyed": frames, "heads": bone_heads(obj, frames)}
        return got

    @step("cut")
    def _cut():
        recording = importlib.import_module(f"{MODULE}.recording")
        performer, truncated = recording.import_mcap(cfg["cut_mcap"])
        return {"frames": performer.frames, "truncated": truncated}

    @step("not_mcap")
    def _not_mcap():
        try:
            bpy.ops.realtime_pose.import_mcap(filepath=cfg["not_mcap"])
            return {"message": "imported"}
        except RuntimeError as e:  # an operator that reports an error raises when called from Python
            return {"message": str(e)}

    if cfg.get("endpoint"):
        @step("live")
        def _live():
            live = importlib.import_module(f"{MODULE}.live")
            scene.frame_current = 1
            settings = scene.realtime_pose
            settings.endpoint, settings.record = cfg["endpoint"], True
            assert bpy.ops.realtime_pose.connect() == {"FINISHED"}
            assert bpy.app.timers.is_registered(live.tick), "the add-on did not register its timer"
            (out / "connected").touch()
            link = live.current()
            deadline = time.monotonic() + cfg["timeout_s"]
            # background mode runs no event loop: call the timer callback as Blender's loop would
            while time.monotonic() < deadline and link.performer.frames < cfg["frames"]:
                if link.performer.skeleton is not None and not (out / "skeleton").exists():
                    (out / "skeleton").touch()
                interval = live.tick()
                assert interval is not None, "the timer asked to stop"
                time.sleep(interval)
            bpy.context.view_layer.update()
            got = live_results(link)
            assert bpy.ops.realtime_pose.disconnect() == {"FINISHED"}
            assert not bpy.app.timers.is_registered(live.tick)
            return got

    @step("cycle")
    def _cycle():
        bpy.ops.preferences.addon_disable(module=MODULE)
        disabled = MODULE not in bpy.context.preferences.addons and not hasattr(bpy.types.Scene, "realtime_pose")
        bpy.ops.preferences.addon_enable(module=MODULE)
        enabled = MODULE in bpy.context.preferences.addons and hasattr(bpy.ops.realtime_pose, "import_mcap")
        repos = list(bpy.context.preferences.extensions.repos)
        repo_index = next(i for i, repo in enumerate(repos) if repo.module == "user_default")
        r = bpy.ops.extensions.package_uninstall(repo_index=repo_index, pkg_id=EXT_ID)
        folder = Path(repos[repo_index].directory) / EXT_ID
        return {"disabled": disabled, "enabled": enabled, "uninstall": sorted(r),
                "gone": MODULE not in bpy.context.preferences.addons and not folder.exists()}

    return 0


# --------------------------------------------------------------------------- driver

class Report:
    def __init__(self) -> None:
        self.failed = 0

    def check(self, name: str, ok: bool, detail: str = "") -> bool:
        print(f"{'PASS' if ok else 'FAIL'} {name}" + (f": {detail}" if detail else ""), flush=True)
        self.failed += not ok
        return ok

    def section(self, results: dict, key: str, checks) -> None:
        got = results.get(key)
        if got is None:
            self.check(key, False, "not run (the bpy process stopped before it)")
        elif isinstance(got, dict) and "error" in got:
            self.check(key, False, got["error"].strip().splitlines()[-1])
            print(got["error"], flush=True)
        else:
            try:
                checks(got)
            except AssertionError as e:
                self.check(key, False, str(e).strip().splitlines()[0] if str(e).strip() else "assertion failed")


def _run(cmd: list[str], **kw) -> subprocess.CompletedProcess:
    print("$", " ".join(str(c) for c in cmd), flush=True)
    return subprocess.run(cmd, text=True, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, **kw)


def driver(args: argparse.Namespace, work: Path) -> int:
    sys.path[:0] = [str(REPO), str(REPO / "tests")]
    import numpy as np
    import zmq
    from downstream_data import cut_and_bad_recordings, fixed_lengths, mocap_people, wait_for, write_recording

    from realtime import skeleton as sk
    from realtime.export.cli import export
    from realtime.record import read_recording
    from realtime.rig import BONE_HEADS, BONES
    from realtime.transport.schema import frame_topic, pack

    rep = Report()
    print(f"work folder: {work}", flush=True)

    # 1. build
    folder = work / "ext" / EXT_ID
    r = _run([sys.executable, str(REPO / "clients" / "blender" / "build.py"), str(folder), "--zip", "--wheels"])
    zip_path = folder.with_suffix(".zip")
    if not rep.check("build.py --zip --wheels", r.returncode == 0 and zip_path.exists(), r.stdout[-2000:]
                     if r.returncode else str(zip_path)):
        return 1
    import tomllib
    manifest = tomllib.loads((folder / "blender_manifest.toml").read_text())
    missing = [w for w in manifest.get("wheels", []) if not (folder / w).exists()]
    rep.check("every manifest wheel is in the build", not missing, ", ".join(missing))

    # 2. Blender's own extension tool
    r = _run([args.bpy_python, "-c", "import bpy; print(bpy.utils.system_resource('SCRIPTS'))"])
    scripts = Path(r.stdout.strip().splitlines()[-1]) if r.returncode == 0 and r.stdout.strip() else None
    if not rep.check("bpy imports", scripts is not None and scripts.is_dir(), r.stdout[-2000:]):
        return 1
    blender_ext = scripts / "addons_core" / "bl_pkg" / "cli" / "blender_ext.py"
    r = _run([args.bpy_python, str(blender_ext), "validate", str(zip_path)])
    rep.check("blender_ext validate (build.py's zip)", r.returncode == 0 and "Success" in r.stdout, r.stdout.strip())
    r = _run([args.bpy_python, str(blender_ext), "build", "--source-dir", str(folder),
              "--output-dir", str(work / "ext")])
    built = work / "ext" / f"{EXT_ID}-{manifest['version']}.zip"
    rep.check("blender_ext build (the folder)", r.returncode == 0 and built.exists(), r.stdout.strip().splitlines()[-1]
              if r.stdout.strip() else "")

    # 3. test data, as tests/test_blender.py writes them
    shared = Path(args.shared)
    people = dict(zip((3, 7), mocap_people(shared / "data" / "mocap" / "cmu", FPS, FRAMES)))
    recording = write_recording(work / "session.mcap", list(people.values()), FPS)
    (bvh,) = export(recording, work / "take.bvh", "bvh", track=7)
    cut, not_mcap = cut_and_bad_recordings(recording, work)

    ctx = zmq.Context.instance()
    pub = ctx.socket(zmq.PUB)
    port = pub.bind_to_random_port("tcp://127.0.0.1")
    out = work / "out"
    out.mkdir(exist_ok=True)
    cfg = {"zip": str(zip_path), "fps": FPS, "out": str(out), "bvh": str(bvh), "mcap": str(recording),
           "cut_mcap": str(cut), "not_mcap": str(not_mcap), "frames": FRAMES, "timeout_s": 90,
           "endpoint": None if args.no_live else f"tcp://127.0.0.1:{port}"}
    config = work / "config.json"
    config.write_text(json.dumps(cfg))

    # 4. bpy: a fresh user folder, so the extension is installed into an empty user_default repo
    env = dict(os.environ, BLENDER_USER_RESOURCES=str(work / "user"))
    cmd = [args.bpy_python, str(Path(__file__).resolve()), "--inside", str(config)]
    print("$ BLENDER_USER_RESOURCES=" + env["BLENDER_USER_RESOURCES"], " ".join(cmd), flush=True)
    proc = subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True, env=env)
    messages = list(read_recording(recording))

    def publish() -> None:
        wait_for(out / "connected", proc, args.timeout)
        wait_for(out / "skeleton", proc, 30, lambda: pub.send_multipart([b"skeleton", pack(messages[0][2])]))
        pub.send_multipart([b"frame/cam0", b"\xc1 not msgpack"])  # a bad message must not stop the link
        for _, _, frame in messages[1:]:
            pub.send_multipart([frame_topic(frame.source), pack(frame)])
            time.sleep(1.0 / FPS)

    publisher = threading.Thread(target=publish, daemon=True)
    if not args.no_live:
        publisher.start()
    try:
        log, _ = proc.communicate(timeout=args.timeout)
    except subprocess.TimeoutExpired:
        proc.kill()
        log, _ = proc.communicate()
    finally:
        if publisher.is_alive():
            publisher.join(10)
        pub.close()
    (work / "bpy.log").write_text(log)
    print(f"bpy exited {proc.returncode} (its output: {work / 'bpy.log'}, kept with --work or --keep)", flush=True)
    results_path = out / "results.json"
    ran = proc.returncode == 0 and results_path.exists()
    if not rep.check("bpy run", ran, "" if ran else log[-3000:]):
        return 1
    results = json.loads(results_path.read_text())
    print(f"Blender {results['version']} (background={results['background']})", flush=True)

    # 5. the checks of tests/test_blender.py
    to_blender = np.array([[1.0, 0.0, 0.0], [0.0, 0.0, -1.0], [0.0, 1.0, 0.0]])
    offsets = {3: np.array([0.0, 0.0, -3.0]), 7: np.array([1.5, 0.0, -3.0])}

    def expected(joints):
        return fixed_lengths(joints) @ to_blender.T

    def heads_ok(heads, exp, atol=1e-4):
        for bone, joint in zip(BONES, BONE_HEADS):
            np.testing.assert_allclose(heads[bone], exp[sk.JOINTS3D.index(joint)], atol=atol, err_msg=bone)
        np.testing.assert_allclose(heads["Head/tail"], exp[sk.JOINTS3D.index("head_top")], atol=atol)

    def install(got):
        rep.check("install zip as extension (package_install_files)", got["result"] == ["FINISHED"], str(got["result"]))
        rep.check(f"enabled as {MODULE}", got["enabled"], got["file"])
        site = got["site"]
        for name in FROM_WHEELS:
            rep.check(f"{name} from the bundled wheels", str(got["deps"][name]).startswith(site), got["deps"][name])
        print(f"note: zstandard from {got['deps']['zstandard']}", flush=True)

    def bvh(got):
        assert sorted(got["bones"]) == sorted(BONES), f"bones {got['bones']}"
        assert got["frame_end"] - got["frame_start"] + 1 == FRAMES, "frame range"
        assert got["scene_fps"] == FPS, "scene fps"
        heads_ok(got["first"], expected(people[7] + offsets[7])[0], atol=1e-3)
        rep.check("BVH export imported (realtime_pose.import_bvh)", True, f"{len(got['bones'])} bones, {FRAMES} frames")

    def mcap(got):
        assert sorted(got) == ["recorded_3", "recorded_7"], f"armatures {sorted(got)}"
        for track, joints in people.items():
            imported = got[f"recorded_{track}"]
            assert len(imported["keyed"]) == FRAMES, f"track {track}: {len(imported['keyed'])} keyed frames"
            exp = expected(joints + offsets[track])
            for i, frame in enumerate(imported["keyed"]):
                heads_ok(imported["heads"][str(frame)], exp[i])
        rep.check("MCAP recording imported (realtime_pose.import_mcap)", True, "2 armatures, bone heads match")

    def cut_(got):
        assert got["truncated"] and 0 < got["frames"] < FRAMES, str(got)
        rep.check("recording cut short imported", True, f"{got['frames']} frames, truncated")

    def not_mcap_(got):
        assert "notes.mcap: not a readable MCAP recording" in got["message"], got["message"]
        rep.check("not a recording reported", True)

    def live(got):
        assert got["frames"] == FRAMES and got["skipped"] == 0 and got["bad"] == 1, \
            f"frames {got['frames']} skipped {got['skipped']} bad {got['bad']}"
        assert sorted(got["tracks"]) == ["3", "7"], f"tracks {sorted(got['tracks'])}"
        for track, joints in people.items():
            t = got["tracks"][str(track)]
            assert t["name"] == f"track_{track}" and t["keyed"] == list(range(1, FRAMES + 1)), str(t["keyed"])
            exp = expected(joints + offsets[track])
            for i, frame in enumerate(t["keyed"]):
                heads_ok(t["heads"][str(frame)], exp[i])
            for bone, joint in zip(BONES, BONE_HEADS):
                np.testing.assert_allclose(got["live"][str(track)][bone], exp[-1][sk.JOINTS3D.index(joint)], atol=1e-4)
        rep.check("live link over ZeroMQ (background, timer called by hand)", True,
                  f"{FRAMES} frames keyed on 2 armatures, 1 bad message counted")

    def cycle(got):
        rep.check("disable (unregister)", got["disabled"])
        rep.check("re-enable (register)", got["enabled"])
        rep.check("uninstall (package_uninstall)", got["uninstall"] == ["FINISHED"] and got["gone"], str(got))

    rep.section(results, "install", install)
    for key, fn in (("bvh", bvh), ("mcap", mcap), ("cut", cut_), ("not_mcap", not_mcap_)):
        rep.section(results, key, fn)
    if not args.no_live:
        rep.section(results, "live", live)
    rep.section(results, "cycle", cycle)

    print(f"{'FAIL' if rep.failed else 'PASS'}: {rep.failed} check(s) failed", flush=True)
    return 1 if rep.failed else 0


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--bpy-python", default="/tmp/bpy42/bin/python", help="Python of a venv with bpy==4.2.0")
    p.add_argument("--shared", default=os.environ.get("REALTIME_SHARED", str(REPO.parent / "shared")),
                   help="the shared data folder (CMU mocap clips)")
    p.add_argument("--work", help="folder for the build, data and Blender user files (kept)")
    p.add_argument("--keep", action="store_true", help="keep the temporary work folder")
    p.add_argument("--no-live", action="store_true", help="skip the live link check")
    p.add_argument("--timeout", type=float, default=300.0, help="seconds for the bpy process")
    p.add_argument("--inside", metavar="CONFIG", help=argparse.SUPPRESS)  # run inside bpy
    args = p.parse_args(argv)
    if args.inside:
        return inside(args.inside)
    work = Path(args.work or tempfile.mkdtemp(prefix="blender_ext_"))
    work.mkdir(parents=True, exist_ok=True)
    try:
        return driver(args, work)
    finally:
        if not args.keep and not args.work:
            shutil.rmtree(work, ignore_errors=True)


if __name__ == "__main__":
    sys.exit(main())
