"""Model registry: upstream files (URL + SHA-256), a local mirror, fetching, and building ONNX / torch files.

``fetch`` gives a verified local .tflite (mirror first, then an earlier download, then the network);
``build`` converts it once into ``<engines_dir>/models/<name>.onnx`` and ``<name>.pt`` (never committed).
A stamp inside each built file records the source SHA-256 and converter version, so a changed upstream
file or converter rebuilds, and a machine given only the built files (a GPU box) needs no .tflite.
Also the ``realtime models fetch|build|list`` command.
"""
from __future__ import annotations

import argparse
import hashlib
import os
import shutil
import sys
import tarfile
import tempfile
import urllib.request
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np

from realtime.config import REPO_ROOT, ConfigError, Pose2DConfig, load_config

if TYPE_CHECKING:
    from realtime.pose2d.tflite_ir import Graph

#: Bump when the IR or an emitter changes what a built file contains: every built file is then rebuilt.
CONVERTER_VERSION = 1
KINDS = ("tflite", "onnx", "torch")
INPUT_NAME = "image"

_NPM_POSE = "https://registry.npmjs.org/@mediapipe/pose/-/pose-0.5.1675469404.tgz"
_NPM_POSE_SHA256 = "8bb349a7b3a3ba699df23be804ddd3b3eab810b50b15406894be257859388a84"
_LANDMARK_OUTPUTS = ("landmarks", "pose_flag", "segmentation", "heatmap", "world_landmarks")


class ModelError(RuntimeError):
    """A model cannot be found, verified, downloaded or built; the message says which and what to do."""


@dataclass(frozen=True)
class ModelSpec:
    """What callers need to feed a model and read it: the tflite contract, with stable output names."""
    name: str
    file: str                           # path inside the mirror directory
    sha256: str
    url: str                            # upstream download (a file, or an npm tarball holding ``member``)
    input_size: tuple[int, int]         # (H, W)
    input_range: tuple[float, float]    # the float values pixel 0 and 255 map to (RGB)
    output_names: tuple[str, ...]       # ours, in the tflite's output order
    tflite_outputs: tuple[str, ...]     # the tflite's own output tensor names, same order
    description: str
    member: str = ""                    # file inside the downloaded archive
    archive_sha256: str = ""
    convertible: bool = True            # False: reference model, run only as .tflite in LiteRT

    @property
    def input_shape(self) -> tuple[int, int, int]:
        return (*self.input_size, 3)

    def normalise(self, rgb: np.ndarray) -> np.ndarray:
        """RGB pixels 0..255 (any numeric dtype) -> the float32 values this model expects."""
        lo, hi = self.input_range
        x = np.asarray(rgb, dtype=np.float32)
        if (lo, hi) == (0.0, 255.0):
            return x
        return x * np.float32((hi - lo) / 255.0) + np.float32(lo)


REGISTRY: dict[str, ModelSpec] = {s.name: s for s in (
    ModelSpec(
        "cpm", "cpm_pefm/model.tflite",
        "2cc9d188e5d116a9d1cb08c86d743a3d2ad0a0c3052e6860a10bded18862da93",
        "https://raw.githubusercontent.com/edvardHua/PoseEstimationForMobile/HEAD/release/cpm_model/model.tflite",
        (192, 192), (0.0, 255.0), ("belief_maps",), ("Convolutional_Pose_Machine/stage_5_out",),
        "Convolutional Pose Machine (PoseEstimationForMobile): 96x96x14 belief maps, LSP-14 order"),
    ModelSpec(
        "detector", "blazepose/pose_detection.tflite",
        "a63c614bef30d35947f13be361820b1e4e3bec9cfeebf4d11216a18373108e85", _NPM_POSE,
        (224, 224), (-1.0, 1.0), ("regressors", "scores"), ("Identity", "Identity_1"),
        "BlazePose person detector: 2254 SSD anchors x (box 4 + 4 keypoints x 2), score logits",
        member="package/pose_solution_packed_assets.data", archive_sha256=_NPM_POSE_SHA256),
    *(ModelSpec(
        f"blazepose-{v}", f"blazepose/pose_landmark_{v}.tflite", sha, _NPM_POSE,
        (256, 256), (0.0, 1.0), _LANDMARK_OUTPUTS, ("Identity", "Identity_1", "Identity_2", "Identity_3", "Identity_4"),
        f"BlazePose {v} landmarks: 39x5 landmarks, presence logit, 256x256 segmentation, 64x64x39 heatmap, 39x3 world",
        member=f"package/pose_landmark_{v}.tflite", archive_sha256=_NPM_POSE_SHA256)
      for v, sha in (("lite", "f17bfbecadb61c3be1baa8b8d851cc6619c870a87167b32848ad20db306b9d61"),
                     ("full", "e9a5c5cb17f736fafd4c2ec1da3b3d331d6edbe8a0d32395855aeb2cdfd64b9f"),
                     ("heavy", "59e42d71bcd44cbdbabc419f0ff76686595fd265419566bd4009ef703ea8e1fe"))),
    ModelSpec(
        "movenet", "movenet/lite-model_movenet_singlepose_lightning_tflite_int8_4.tflite",
        "cd7cc22fa946e5d146a7b98d496853e1923e22828d3972d579973f27f91bb105",
        "https://raw.githubusercontent.com/Kazuhito00/MoveNet-Python-Example/HEAD/tflite/"
        "lite-model_movenet_singlepose_lightning_tflite_int8_4.tflite",
        (192, 192), (0.0, 255.0), ("keypoints",), ("StatefulPartitionedCall:0",),
        "MoveNet SinglePose Lightning int8 (uint8 input): 17 COCO keypoints (y, x, score); benchmarks only",
        convertible=False),
)}


def model_spec(name: str) -> ModelSpec:
    try:
        return REGISTRY[name]
    except KeyError:
        raise ModelError(f"unknown model {name!r}; known models: {', '.join(REGISTRY)}") from None


def models_dir(config: Pose2DConfig | None = None) -> Path | None:
    """The local mirror: [pose2d] models_dir, else $REALTIME_MODELS_DIR, else ../shared/models if present."""
    if config is not None and config.models_dir:
        return _resolve(config.models_dir)
    if os.environ.get("REALTIME_MODELS_DIR"):
        return _resolve(os.environ["REALTIME_MODELS_DIR"])
    default = REPO_ROOT.parent / "shared" / "models"
    return default if default.is_dir() else None


def engines_dir(config: Pose2DConfig | None = None) -> Path:
    return _resolve(config.engines_dir) if config is not None and config.engines_dir else REPO_ROOT / "engines"


def _resolve(path: str) -> Path:
    p = Path(path).expanduser()
    return p if p.is_absolute() else REPO_ROOT / p


def sha256_of(path: Path) -> str:
    h = hashlib.sha256()
    with open(path, "rb") as f:
        for block in iter(lambda: f.read(1 << 20), b""):
            h.update(block)
    return h.hexdigest()


def _verify(path: Path, expected: str, what: str) -> Path:
    actual = sha256_of(path)
    if actual != expected:
        raise ModelError(f"{path}: SHA-256 mismatch for {what}: expected {expected}, got {actual} "
                         "(a corrupt or different file; delete it or fix the mirror)")
    return path


def _download(url: str, dest: Path, expected: str) -> Path:
    """Download to a temporary name and move into place only once the SHA-256 matches."""
    dest.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp_name = tempfile.mkstemp(dir=dest.parent, suffix=".part")
    tmp = Path(tmp_name)
    try:
        with os.fdopen(fd, "wb") as out, urllib.request.urlopen(url, timeout=60) as response:
            shutil.copyfileobj(response, out)
        _verify(tmp, expected, url)
        tmp.replace(dest)
    except OSError as e:
        raise ModelError(f"could not download {url}: {e} (no internet? put the file in a mirror directory "
                         "and set [pose2d] models_dir or REALTIME_MODELS_DIR)") from None
    finally:
        tmp.unlink(missing_ok=True)
    return dest


def _extract(archive: Path, member: str, dest: Path, expected: str) -> Path:
    tmp = dest.with_suffix(dest.suffix + ".part")
    try:
        with tarfile.open(archive, "r:gz") as tar:
            src = tar.extractfile(member)
            if src is None:
                raise ModelError(f"{archive}: {member} is not a regular file")
            with src, open(tmp, "wb") as out:
                shutil.copyfileobj(src, out)
    except KeyError:
        raise ModelError(f"{archive}: has no member {member}") from None
    except (tarfile.TarError, OSError) as e:
        tmp.unlink(missing_ok=True)
        raise ModelError(f"{archive}: not a readable .tgz ({e}); delete it to download again") from None
    try:
        _verify(tmp, expected, f"{member} in {archive.name}")
        tmp.replace(dest)
    finally:
        tmp.unlink(missing_ok=True)
    return dest


def fetch(name: str, config: Pose2DConfig | None = None) -> Path:
    """A verified local copy of the model's upstream .tflite: mirror, earlier download, or the network."""
    spec = model_spec(name)
    mirror = models_dir(config)
    if mirror is not None and (mirror / spec.file).exists():
        return _verify(mirror / spec.file, spec.sha256, f"model {name!r}")
    local = engines_dir(config) / "models" / "upstream" / spec.file
    if local.exists():
        return _verify(local, spec.sha256, f"model {name!r}")
    if not spec.member:
        return _download(spec.url, local, spec.sha256)
    archive = local.parent / Path(spec.url).name
    if not archive.exists():
        _download(spec.url, archive, spec.archive_sha256)
    return _extract(archive, spec.member, local, spec.sha256)


def stamp(spec: ModelSpec) -> dict[str, str]:
    """What a built file records about its making (in ONNX metadata_props / the .pt's dict)."""
    return {"model": spec.name, "source_sha256": spec.sha256, "converter": str(CONVERTER_VERSION)}


def built_stamp(path: Path) -> dict[str, str]:
    """The stamp inside a built file ({} when absent or unreadable)."""
    try:
        if path.suffix == ".onnx":
            import onnx
            model = onnx.load(str(path), load_external_data=False)
            return {p.key: p.value for p in model.metadata_props}
        import torch
        return dict(torch.load(path, weights_only=True, mmap=True).get("stamp", {}))
    except Exception:  # a truncated or foreign file is simply not current: it gets rebuilt
        return {}


def _is_current(path: Path, spec: ModelSpec) -> bool:
    return path.exists() and built_stamp(path) == stamp(spec)


def _built_path(name: str, kind: str, config: Pose2DConfig | None) -> Path:
    return engines_dir(config) / "models" / f"{name}.{'onnx' if kind == 'onnx' else 'pt'}"


def load_graph(name: str, config: Pose2DConfig | None = None) -> "Graph":
    """The parsed IR of the model's tflite, checked against the registry's output contract."""
    from realtime.pose2d.tflite_ir import TfliteError, parse
    spec = model_spec(name)
    path = fetch(name, config)
    try:
        graph = parse(path)
    except TfliteError as e:
        raise ModelError(str(e)) from None
    found = tuple(graph.names[t] for t in graph.outputs)
    if found != spec.tflite_outputs:
        raise ModelError(f"{path}: outputs {found} differ from the registry's {spec.tflite_outputs}")
    return graph


def build(name: str, kinds: tuple[str, ...] = ("onnx", "torch"), config: Pose2DConfig | None = None,
          force: bool = False) -> dict[str, Path]:
    """Convert the model's tflite into the built files of ``kinds`` (skipping current ones unless ``force``)."""
    spec = model_spec(name)
    if not spec.convertible:
        raise ModelError(f"{name} is a reference model (int8 tflite): run it in LiteRT, it is not converted")
    unknown = [k for k in kinds if k not in ("onnx", "torch")]
    if unknown:
        raise ModelError(f"cannot build kind {unknown[0]!r} (buildable: onnx, torch)")
    todo = [k for k in kinds if force or not _is_current(_built_path(name, k, config), spec)]
    paths = {k: _built_path(name, k, config) for k in kinds}
    if not todo:
        return paths
    graph = load_graph(name, config)
    for kind in todo:
        path = paths[kind]
        if kind == "onnx":
            from realtime.pose2d import to_onnx
            to_onnx.save(graph, path, INPUT_NAME, list(spec.output_names), stamp(spec), doc=spec.description)
        else:
            from realtime.pose2d import to_torch
            to_torch.save(graph, path, list(spec.output_names), stamp(spec))
    return paths


def model_path(name: str, kind: str = "onnx", config: Pose2DConfig | None = None) -> Path:
    """The local file of ``kind`` ("onnx" | "tflite" | "torch") for model ``name``, fetching/building when missing."""
    if kind not in KINDS:
        raise ModelError(f"unknown model kind {kind!r}; one of {', '.join(KINDS)}")
    if kind == "tflite":
        return fetch(name, config)
    return build(name, (kind,), config)[kind]


def _status(name: str, config: Pose2DConfig) -> str:
    spec = model_spec(name)
    mirror = models_dir(config)
    source = "mirror" if mirror is not None and (mirror / spec.file).exists() else (
        "downloaded" if (engines_dir(config) / "models" / "upstream" / spec.file).exists() else "not fetched")
    built = [k for k in ("onnx", "torch") if _built_path(name, k, config).exists()]
    return f"{source}; built: {', '.join(built) or 'none'}"


def add_arguments(p: argparse.ArgumentParser) -> None:
    p.add_argument("action", choices=("list", "fetch", "build"))
    p.add_argument("names", nargs="*", metavar="NAME", help=f"models (default: all of {', '.join(REGISTRY)}; "
                   "build skips the reference-only ones)")
    p.add_argument("--config", help="config.toml to read [pose2d] models_dir / engines_dir from")
    p.add_argument("--kinds", default="onnx,torch",
                   help="build: comma-separated kinds (onnx, torch); torch is skipped when PyTorch is absent")
    p.add_argument("--force", action="store_true", help="build: rebuild even when current")


def run(args: argparse.Namespace) -> int:
    try:
        config = load_config(args.config).pose2d
    except ConfigError as e:
        print(f"error: {e}", file=sys.stderr)
        return 2
    names = args.names or [n for n, s in REGISTRY.items() if s.convertible or args.action != "build"]
    failed = 0
    for name in names:
        try:
            if args.action == "list":
                spec = model_spec(name)
                h, w = spec.input_size
                print(f"{name:16s} {h}x{w}x3 -> {', '.join(spec.output_names)}  [{_status(name, config)}]")
            elif args.action == "fetch":
                print(f"{name}: {fetch(name, config)}")
            else:
                kinds = tuple(k.strip() for k in args.kinds.split(",") if k.strip())
                if "torch" in kinds and not _torch_available():
                    print(f"{name}: PyTorch is not installed; skipping the torch build", file=sys.stderr)
                    kinds = tuple(k for k in kinds if k != "torch")
                for kind, path in build(name, kinds, config, force=args.force).items():
                    print(f"{name}: {kind} {path}")
        except ModelError as e:
            print(f"error: {e}", file=sys.stderr)
            failed += 1
    return 1 if failed else 0


def _torch_available() -> bool:
    import importlib.util
    return importlib.util.find_spec("torch") is not None
