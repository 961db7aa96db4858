"""The built wheel, installed into a fresh virtual environment outside the checkout, does its job.

The environment borrows this one's dependencies (a .pth line pointing at its site-packages, whose own
.pth files, this checkout's editable install among them, are not read), so the test needs no
package index; the project itself comes only from the wheel.
"""
from __future__ import annotations

import json
import os
import subprocess
import sys
import sysconfig
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parent.parent


@pytest.fixture(scope="module")
def installed(tmp_path_factory) -> dict:
    root = tmp_path_factory.mktemp("wheel")
    build = subprocess.run([sys.executable, "-m", "pip", "wheel", "--no-deps", "--no-build-isolation", "-q",
                            "-w", str(root / "dist"), str(REPO)], capture_output=True, text=True, timeout=300)
    assert build.returncode == 0, build.stderr
    (wheel,) = (root / "dist").glob("*.whl")
    venv = root / "venv"
    subprocess.run([sys.executable, "-m", "venv", str(venv)], check=True, timeout=300)
    python = venv / "bin" / "python"
    site = subprocess.run([str(python), "-c", "import sysconfig; print(sysconfig.get_paths()['purelib'])"],
                          capture_output=True, text=True, check=True).stdout.strip()
    Path(site, "borrowed_dependencies.pth").write_text(sysconfig.get_paths()["purelib"] + "\n")
    install = subprocess.run([str(python), "-m", "pip", "install", "-q", "--no-deps", "--no-index", str(wheel)],
                             capture_output=True, text=True, timeout=300)
    assert install.returncode == 0, install.stderr
    work = root / "elsewhere"
    work.mkdir()
    env = {**os.environ, "XDG_CACHE_HOME": str(root / "cache"), "PYTHONPATH": ""}
    return {"wheel": wheel, "bin": venv / "bin", "cwd": work, "env": env}


def _run(installed: dict, *args: str, timeout: int = 300, **env: str) -> subprocess.CompletedProcess:
    return subprocess.run([str(installed["bin"] / "realtime"), *args], cwd=installed["cwd"],
                          env={**installed["env"], **env}, capture_output=True, text=True, timeout=timeout)


def test_the_wheel_holds_the_default_prior_and_config(installed):
    import zipfile

    names = zipfile.ZipFile(installed["wheel"]).namelist()
    assert "realtime/data/pose_prior.npz" in names and "realtime/data/config.toml" in names
    assert "realtime/data/int8_nanodet.json" in names
    assert {f"realtime/viewer/static/{n}" for n in ("index.html", "viewer.js", "skeleton.js", "report.html",
                                                    "report.js", "poses3d.html", "viewer.css")} <= set(names)
    where = subprocess.run([str(installed["bin"] / "python"), "-c",
                            "import realtime, realtime.config as c; print(realtime.__file__, c.CHECKOUT)"],
                           cwd=installed["cwd"], env=installed["env"], capture_output=True, text=True, check=True)
    path, checkout = where.stdout.split()
    assert str(REPO) not in path and checkout == "False"     # the installed copy, not this checkout


@pytest.mark.slow
def test_the_installed_wheel_estimates_photos_and_runs_a_video(installed, models_dir, photos_dir, small_video):
    done = _run(installed, "estimate", str(photos_dir / "p2.jpg"), "--json", "--backend", "onnxruntime",
                REALTIME_MODELS_DIR=str(models_dir))
    assert done.returncode == 0, done.stderr
    out = json.loads(done.stdout)
    assert out["lifting"] == "on" and len(out["images"][0]["people"]) == 2   # the packaged prior lifts them
    assert all(p["joints3d"] is not None for p in out["images"][0]["people"])
    built = Path(installed["env"]["XDG_CACHE_HOME"]) / "realtime-pose3d" / "engines" / "models"
    assert (built / "movenet-thunder.onnx").exists()         # the photo network, built into the user's cache
    import socket
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    run = _run(installed, "run", "--source", str(small_video), "--max-frames", "10", "--no-pace", "--headless",
               "--record", "take.mcap", "--publish", f"tcp://127.0.0.1:{port}", "--backend", "onnxruntime",
               REALTIME_MODELS_DIR=str(models_dir))
    assert run.returncode == 0, run.stderr[-2000:]
    assert (installed["cwd"] / "take.mcap").stat().st_size > 0
    shown = _run(installed, "config", "show")
    assert shown.returncode == 0 and "realtime/data/config.toml" in shown.stdout.splitlines()[0]
