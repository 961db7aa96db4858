"""Model files: upstream files (URL + SHA-256), a local mirror, fetching, and building ONNX / torch files.

The models themselves are listed once, in ``realtime/networks.py``. ``fetch`` gives a verified local copy
of a model's upstream files (a .tflite, or a TF.js model.json with its weight shards): mirror
first, then an earlier download, then the network. ``build`` converts it once into
``<engines_dir>/models/<name>.onnx`` and ``<name>.pt`` (never committed), and, for the networks with a
committed int8 calibration table, ``<name>-int8.onnx`` for the CPU backend (``realtime/pose2d/int8.py``).
A stamp inside each built file records the source SHA-256 and converter version, so a changed
upstream file or converter rebuilds, and a machine given only the built files (a GPU box) needs no upstream file.
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
from pathlib import Path
from typing import TYPE_CHECKING

from realtime.config import CHECKOUT, REPO_ROOT, ConfigError, Pose2DConfig, engines_root, load_config, resolve_path
from realtime.networks import REGISTRY, ModelSpec
from realtime.pose2d import int8

if TYPE_CHECKING:
    from realtime.pose2d.tflite_ir import Graph

#: Bump when the IR or an emitter changes what a built file contains: every built file is then rebuilt.
CONVERTER_VERSION = 3
KINDS = ("tflite", "onnx", "torch", "int8")
INPUT_NAME = "image"


class ModelError(RuntimeError):
    """A model cannot be found, verified, downloaded or built; the message says which and what to do."""


def model_spec(name: str) -> ModelSpec:
    try:
        return REGISTRY[name]
    except KeyError:
        raise ModelError(f"unknown model {name!r}; known models: {', '.join(REGISTRY)}") from None


def models_dir(config: Pose2DConfig | None = None) -> Path | None:
    """The local mirror: [pose2d] models_dir, else $REALTIME_MODELS_DIR, else ../shared/models beside a checkout."""
    if config is not None and config.models_dir:
        return resolve_path(config.models_dir)
    if os.environ.get("REALTIME_MODELS_DIR"):
        return resolve_path(os.environ["REALTIME_MODELS_DIR"])
    default = REPO_ROOT.parent / "shared" / "models"
    return default if CHECKOUT and default.is_dir() else None


def engines_dir(config: Pose2DConfig | None = None) -> Path:
    return resolve_path(config.engines_dir) if config is not None and config.engines_dir else engines_root()


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


def _files(spec: ModelSpec) -> list[tuple[str, str, str]]:
    """Every upstream file of a model: (path in the mirror, sha256, member of the archive); main file first."""
    return [(spec.file, spec.sha256, spec.member), *spec.weights]


def _fetch_file(spec: ModelSpec, file: str, sha: str, member: str, config: Pose2DConfig | None) -> Path:
    mirror = models_dir(config)
    what = f"model {spec.name!r}"
    if mirror is not None and (mirror / file).exists():
        return _verify(mirror / file, sha, what)
    local = engines_dir(config) / "models" / "upstream" / file
    if local.exists():
        return _verify(local, sha, what)
    if not member:
        return _download(spec.url, local, sha)
    archive = local.parent / Path(spec.url).name
    if not archive.exists():
        _download(spec.url, archive, spec.archive_sha256)
    return _extract(archive, member, local, sha)


def fetch(name: str, config: Pose2DConfig | None = None) -> Path:
    """A verified local copy of the model's upstream files (mirror, earlier download, or the network);
    returns the main file (the .tflite or the TF.js model.json, its weight shards beside it)."""
    spec = model_spec(name)
    paths = [_fetch_file(spec, *f, config) for f in _files(spec)]
    for (file, _, _), path in zip(_files(spec)[1:], paths[1:]):
        if path.parent != paths[0].parent:   # a mirror with the .json but not the .bin: keep them together
            raise ModelError(f"{path}: the weights of {spec.name!r} must sit beside {paths[0]}")
    return paths[0]


def stamp(spec: ModelSpec) -> dict[str, str]:
    """What a built file records about its making (in ONNX metadata_props / the .pt's dict)."""
    source = spec.sha256 if not spec.weights else hashlib.sha256(
        "".join(sha for _, sha, _ in _files(spec)).encode()).hexdigest()
    return {"model": spec.name, "source_sha256": source, "converter": str(CONVERTER_VERSION)}


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


def _is_current(path: Path, spec: ModelSpec, kind: str = "onnx") -> bool:
    return path.exists() and built_stamp(path) == _expected_stamp(spec, kind)


def _expected_stamp(spec: ModelSpec, kind: str) -> dict[str, str]:
    """An int8 file also records the calibration table it was quantised with."""
    if kind != "int8":
        return stamp(spec)
    return {**stamp(spec), "int8_table_sha256": int8.table_sha256(spec.name) if int8.has_table(spec.name) else ""}


def _built_path(name: str, kind: str, config: Pose2DConfig | None) -> Path:
    suffix = {"onnx": ".onnx", "torch": ".pt", "int8": "-int8.onnx"}[kind]
    return engines_dir(config) / "models" / f"{name}{suffix}"


def load_graph(name: str, config: Pose2DConfig | None = None) -> "Graph":
    """The parsed IR of the model's upstream file, checked against the registry's output contract."""
    from realtime.pose2d.tflite_ir import TfliteError, parse
    from realtime.pose2d.tfjs_ir import TfjsError, parse as parse_tfjs
    spec = model_spec(name)
    path = fetch(name, config)
    try:
        if spec.format == "tfjs":
            h, w = spec.input_size
            return parse_tfjs(path, spec.source_outputs, (1, 3, h, w) if spec.nchw else (1, h, w, 3),
                              nchw=spec.nchw, mean=spec.mean, scale=spec.scale)
        graph = parse(path)
    except (TfliteError, TfjsError) as e:
        raise ModelError(str(e)) from None
    found = tuple(graph.names[t] for t in graph.outputs)
    if found != spec.source_outputs:
        raise ModelError(f"{path}: outputs {found} differ from the registry's {spec.source_outputs}")
    return graph


def build(name: str, kinds: tuple[str, ...] = ("onnx", "torch"), config: Pose2DConfig | None = None,
          force: bool = False) -> dict[str, Path]:
    """Convert the model's tflite into the built files of ``kinds`` (skipping current ones unless ``force``)."""
    spec = model_spec(name)
    if not spec.convertible:
        raise ModelError(f"{name} is a reference model: run it in LiteRT, it is not converted")
    unknown = [k for k in kinds if k not in ("onnx", "torch", "int8")]
    if unknown:
        raise ModelError(f"cannot build kind {unknown[0]!r} (buildable: onnx, torch, int8)")
    if "int8" in kinds and not int8.has_table(name):
        raise ModelError(f"{name}: no int8 calibration table; int8 models exist for {', '.join(int8.CALIBRATED)}")
    asked = kinds
    if "int8" in kinds and "onnx" not in kinds:   # quantised from the float32 ONNX: built first if stale
        kinds = ("onnx", *kinds)
    todo = [k for k in kinds if (force and k in asked) or not _is_current(_built_path(name, k, config), spec, k)]
    paths = {k: _built_path(name, k, config) for k in kinds}
    if not todo:
        return paths
    graph = load_graph(name, config) if set(todo) - {"int8"} else None
    for kind in todo:
        path = paths[kind]
        if kind == "int8":
            try:
                int8.quantize(name, paths["onnx"], path, stamp(spec))
            except int8.Int8Error as e:
                raise ModelError(str(e)) from None
        elif kind == "onnx":
            from realtime.pose2d import to_onnx
            to_onnx.save(graph, path, INPUT_NAME, list(spec.outputs), stamp(spec), doc=spec.description)
        else:
            from realtime.pose2d import to_torch
            to_torch.save(graph, path, list(spec.outputs), stamp(spec))
    return paths


def model_path(name: str, kind: str = "onnx", config: Pose2DConfig | None = None) -> Path:
    """The local file of ``kind`` ("onnx" | "tflite" | "torch" | "int8") for model ``name``, fetching/building
    when missing."""
    if kind not in KINDS:
        raise ModelError(f"unknown model kind {kind!r}; one of {', '.join(KINDS)}")
    if kind == "tflite":
        return fetch(name, config)
    return build(name, (kind,), config)[kind]


def torch_module(name: str, config: Pose2DConfig | None = None):
    """The registry model ``name`` as a ``torch.nn.Module`` (building ``<engines>/models/<name>.pt`` when
    missing), in eval mode on the CPU in float32."""
    from realtime.pose2d import to_torch
    return to_torch.load(model_path(name, "torch", config))


def _status(name: str, config: Pose2DConfig) -> str:
    spec = model_spec(name)
    mirror = models_dir(config)
    source = "mirror" if mirror is not None and (mirror / spec.file).exists() else (
        "downloaded" if (engines_dir(config) / "models" / "upstream" / spec.file).exists() else "not fetched")
    if spec.role == "reference":
        return f"{source}; reference (LiteRT only)"
    built = [k for k in ("onnx", "torch", "int8") if _built_path(name, k, config).exists()]
    return f"{source}; built: {', '.join(built) or 'none'}"


def add_arguments(p: argparse.ArgumentParser) -> None:
    """``realtime models list|fetch|build [NAME ...] [options]``: each action its own parser, so
    options may come before or after the names (``build --force nanodet`` and ``build nanodet --force``)."""
    actions = p.add_subparsers(dest="action", required=True, metavar="{list,fetch,build}")
    for action, text in (("list", "the networks, their licences and what is built"),
                         ("fetch", "copy or download each network's upstream files (SHA-256 checked)"),
                         ("build", "build the ONNX, torch and int8 files from the upstream ones")):
        a = actions.add_parser(action, help=text, description=text)
        a.add_argument("names", nargs="*", metavar="NAME", help=f"models (default: all of {', '.join(REGISTRY)}; "
                       "build skips the reference-only ones)")
        a.add_argument("--config", help="config.toml to read [pose2d] models_dir / engines_dir from")
        if action == "build":
            a.add_argument("--kinds", default="onnx,torch,int8",
                           help="comma-separated kinds (onnx, torch, int8); torch is skipped when PyTorch is "
                           "absent, int8 for models without an int8 calibration table")
            a.add_argument("--force", action="store_true", help="rebuild even when current")


def run(args: argparse.Namespace) -> int:
    try:
        config = load_config(args.config).pose2d
    except ConfigError as e:
        print(f"error: {e}", file=sys.stderr)
        return 2
    names = args.names or [n for n, s in REGISTRY.items() if s.convertible or args.action != "build"]
    failed = 0
    from tqdm import tqdm

    # A progress bar while fetching or building on a terminal (none otherwise); lines go above it.
    for name in tqdm(names, desc=f"models {args.action}", unit="model", disable=True if args.action == "list" else None):
        try:
            if args.action == "list":
                spec = model_spec(name)
                h, w = spec.input_size
                tqdm.write(f"{name:19s} {spec.role:9s} {h}x{w}x3 -> {', '.join(spec.outputs)}  [{_status(name, config)}]")
                tqdm.write(f"{'':19s} {spec.description}; licence {spec.licence}")
            elif args.action == "fetch":
                tqdm.write(f"{name}: {fetch(name, config)}")
            else:
                kinds = tuple(k.strip() for k in args.kinds.split(",") if k.strip())
                if "torch" in kinds and not _torch_available():
                    tqdm.write(f"{name}: PyTorch is not installed; skipping the torch build", file=sys.stderr)
                    kinds = tuple(k for k in kinds if k != "torch")
                quantised = "int8" in kinds and int8.has_table(name)
                kinds = tuple(k for k in kinds if k != "int8")
                for kind, path in build(name, kinds, config, force=args.force).items():
                    tqdm.write(f"{name}: {kind} {path}")
                if quantised:  # a speed-up only: without it the CPU backend runs the float32 model
                    try:
                        tqdm.write(f"{name}: int8 {build(name, ('int8',), config, force=args.force)['int8']}")
                    except ModelError as e:
                        tqdm.write(f"warning: {e} (the float32 model runs instead)", file=sys.stderr)
        except ModelError as e:
            tqdm.write(f"error: {e}", file=sys.stderr)
            failed += 1
    return 1 if failed else 0


def _torch_available() -> bool:
    import importlib.util
    return importlib.util.find_spec("torch") is not None
