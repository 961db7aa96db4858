"""Typed configuration: one frozen dataclass per ``config.toml`` section.

Every option is documented in ``config.toml``. Loading checks each key against the dataclass
fields, so a misspelt key or a wrong value is reported with its ``[section] key`` name rather
than surfacing later deep inside a stage.
"""
from __future__ import annotations

import dataclasses
import math
import tomllib
import typing
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

#: The repository root (where config.toml, engines/ and tools/ live in a checkout).
REPO_ROOT = Path(__file__).resolve().parent.parent
DEFAULT_CONFIG = REPO_ROOT / "config.toml"


class ConfigError(ValueError):
    """A configuration value is wrong; the message names the section and key."""


def opt(default: Any, *, choices: tuple | None = None, min: float | None = None,
        max: float | None = None, help: str = "") -> Any:
    """A config field with its validation rules (checked by :func:`load_config`)."""
    meta = {"choices": choices, "min": min, "max": max, "help": help}
    if isinstance(default, list):
        return field(default_factory=lambda: list(default), metadata=meta)
    return field(default=default, metadata=meta)


def _pose2d_models(role: str) -> tuple[str, ...]:
    """The 2D networks of one role, from the one model table (``realtime/pose2d/registry.py``)."""
    from realtime.pose2d.registry import names
    return names(role)


@dataclass(frozen=True)
class SourceConfig:
    uri: str = opt("demo", help="video file, webcam:N, rtsp://..., http://..., or 'demo'")
    loop: bool = opt(False)
    realtime: bool = opt(True, help="pace file sources at their own frame rate")
    reconnect_initial_s: float = opt(0.5, min=0.01)
    reconnect_max_s: float = opt(10.0, min=0.1)
    stream_decode_threads: int = opt(1, min=0, max=64, help="decoder threads for network streams; 0 = FFmpeg's")
    focal_px: float = opt(0.0, min=0.0, help="camera focal length in pixels; 0 = unknown, use 0.8 x width")
    name: str = opt("", help="source id in topics (frame/<name>); '' = cam0, cam1, ...")


@dataclass(frozen=True)
class Pose2DConfig:
    model: str = opt("movenet-lightning", choices=_pose2d_models("keypoints"),
                     help="2D keypoint network (realtime models list)")
    detector: str = opt("nanodet", choices=_pose2d_models("detector"), help="person detector")
    backend: str = opt("auto", choices=("auto", "tensorrt", "torch", "onnxruntime"))
    models_dir: str = opt("", help="local mirror of upstream model files; '' = ../shared/models if present")
    engines_dir: str = opt("", help="where converted models and engine caches go; '' = engines/")
    max_people: int = opt(10, min=1, max=64)
    detector_regions_per_frame: float = opt(
        0.3, min=0.001, max=64.0, help="video: the detector's regions (whole frame, tiles) taken round-robin, this "
                                       "many per frame on average; the first frame looks everywhere")
    detector_async: bool = opt(True, help="video: the detector's network runs on its own thread beside the keypoint "
                                          "network; its people join the next frame")
    detector_score: float = opt(math.nan, min=0.0, max=1.0, help="detection score threshold; nan = the detector's own")
    detector_tiles: int = opt(2, min=1, max=8,
                              help="rows of overlapping square tiles the detector also sees (1 = whole frame only)")
    keypoint_threshold: float = opt(0.1, min=0.0, max=1.0)
    keep_fraction: float = opt(0.75, min=0.0, max=1.0,
                               help="a followed person stays reported down to this fraction of person_score")
    lost_frames: int = opt(3, min=1, help="a followed person is dropped after this many poor frames in a row; "
                                          "the detector then looks where they were")
    person_score: float = opt(math.nan, min=0.0, max=1.0,
                              help="people whose mean keypoint confidence is below this are dropped (lost); "
                                   "nan = the model's own (cpm 0.12, the others 0.2)")
    ort_threads: int = opt(2, min=0)
    ort_split_batch: bool = opt(True, help="run the parts of a batch side by side, one thread each")
    precision: str = opt("fp16", choices=("fp16", "fp32"))
    refine_3d: bool = opt(False, help="fuse the network's belief maps with its lifted 3D pose projected back (5.4-5.5)")
    refine_weight: float = opt(0.3, min=0.0, max=1.0, help="weight w of the projected maps: (1-w) network + w projected")
    refine_sigma: float = opt(2.0, min=0.1, help="sigma of the projected maps, belief-map pixels")
    refine_iterations: int = opt(1, min=1, max=5)
    refine_leave_one_out: bool = opt(False, help="project each joint from a lift of the other joints (robust, slower)")
    refine_prior: str = opt("", help="pose prior for the feedback; '' = the committed default in engines/")


@dataclass(frozen=True)
class LiftingConfig:
    prior: str = opt("", help="path to a trained pose prior; '' = the committed default in engines/")
    rotations: int = opt(80, min=1)
    camera_pitch_deg: float = opt(math.nan, min=-90.0, max=90.0,
                                  help="known downward camera pitch; nan = unknown, search elevations")
    elevations_deg: list = opt([-10.0, 0.0, 10.0, 20.0, 30.0])
    min_visible_joints: int = opt(6, min=2, max=14)
    min_confidence: float = opt(0.05, min=0.0, max=1.0)


@dataclass(frozen=True)
class TrackingConfig:
    max_cost: float = opt(0.7, min=0.0)
    confirm_frames: int = opt(3, min=1)
    coast_s: float = opt(1.0, min=0.0)
    reid_s: float = opt(3.0, min=0.0)
    keypoint_weight: float = opt(0.5, min=0.0, max=1.0, help="share of keypoint distance vs box overlap in the cost")
    keypoint_gate: float = opt(0.25, min=0.01, help="largest mean keypoint distance to the prediction, in person heights")
    min_keypoints: int = opt(3, min=1, max=14, help="detections with fewer usable keypoints are ignored")
    min_confidence: float = opt(0.05, min=0.0, max=1.0, help="keypoints below this confidence count as missing")


@dataclass(frozen=True)
class FilterConfig:
    enabled: bool = opt(True)
    space: str = opt("joints", choices=("joints", "coefficients"))
    min_cutoff: float = opt(1.0, min=0.0, help="joints: cutoff (Hz) when still")
    beta: float = opt(1.0, min=0.0, help="joints: cutoff increase (Hz) per m/s of joint speed")
    d_cutoff: float = opt(1.0, min=0.0, help="cutoff (Hz) of the speed estimate")
    root_min_cutoff: float = opt(2.0, min=0.0, help="root: cutoff (Hz) when still")
    root_beta: float = opt(0.0, min=0.0, help="root: cutoff increase (Hz) per m/s of root speed")
    reset_after_s: float = opt(0.5, min=0.0, help="a track unseen this long starts its filter afresh")


@dataclass(frozen=True)
class TransportConfig:
    scheme: str = opt("ipc", choices=("ipc", "tcp"))
    ipc_dir: str = opt("", help="directory for ipc:// sockets; '' = a fresh temp dir per run")
    host: str = opt("127.0.0.1", help="tcp: the machine running capture, inference and publisher")
    bind: str = opt("", help="tcp: the interface our listening sockets bind; '' = host")
    base_port: int = opt(5550, min=1024, max=65000)
    publish: str = opt("tcp://127.0.0.1:5560", help="where consumers subscribe")
    skeleton_every_s: float = opt(2.0, min=0.1)


@dataclass(frozen=True)
class RuntimeConfig:
    workers: int = opt(2, min=1, max=64)
    reorder_wait_ms: float = opt(50.0, min=0.0)
    batch_wait_ms: float = opt(0.0, min=0.0, max=1000.0)
    heartbeat_s: float = opt(1.0, min=0.05)
    hang_timeout_s: float = opt(10.0, min=0.5)
    status_every_s: float = opt(5.0, min=0.0)
    log_format: str = opt("text", choices=("text", "json"))


@dataclass(frozen=True)
class RecordConfig:
    path: str = opt("", help="MCAP file to record to; '' = no recording")
    flush_every_s: float = opt(1.0, min=0.05)


@dataclass(frozen=True)
class VmcConfig:
    host: str = opt("127.0.0.1")
    port: int = opt(39539, min=1, max=65535)
    track: int = opt(-1, help="track id to send, -1 = one sender per track")
    max_senders: int = opt(4, min=1, max=64, help="with track = -1: tracks get ports port, port+1, ...")


@dataclass(frozen=True)
class CameraConfig:
    """One ``[[camera]]`` table: what is known about one source's camera, by source name."""

    name: str = opt("", help="the source it describes: cam0, cam1, ... or [source] name")
    focal_px: float = opt(0.0, min=0.0, help="focal length in pixels; 0 = [source] focal_px")
    pitch_deg: float = opt(math.nan, min=-90.0, max=90.0,
                           help="downward pitch in degrees; nan = [lifting] camera_pitch_deg")


@dataclass(frozen=True)
class Config:
    source: SourceConfig = field(default_factory=SourceConfig)
    pose2d: Pose2DConfig = field(default_factory=Pose2DConfig)
    lifting: LiftingConfig = field(default_factory=LiftingConfig)
    tracking: TrackingConfig = field(default_factory=TrackingConfig)
    filter: FilterConfig = field(default_factory=FilterConfig)
    transport: TransportConfig = field(default_factory=TransportConfig)
    runtime: RuntimeConfig = field(default_factory=RuntimeConfig)
    record: RecordConfig = field(default_factory=RecordConfig)
    vmc: VmcConfig = field(default_factory=VmcConfig)
    #: ``[[camera]]`` tables: per-source camera settings over the global ones.
    camera: tuple[CameraConfig, ...] = ()

    def camera_for(self, source: str) -> tuple[float, float]:
        """``(focal_px, pitch_deg)`` of a source: its ``[[camera]]`` values where given, else the
        global ``[source] focal_px`` and ``[lifting] camera_pitch_deg`` (0 / nan = unknown)."""
        focal, pitch = self.source.focal_px, self.lifting.camera_pitch_deg
        for c in self.camera:
            if c.name == source:
                focal = c.focal_px or focal
                pitch = pitch if math.isnan(c.pitch_deg) else c.pitch_deg
        return focal, pitch

    def replace(self, section: str, **values: Any) -> "Config":
        """A copy with some keys of one section changed, validated like the file."""
        current = getattr(self, section)
        merged = dataclasses.asdict(current) | values
        return dataclasses.replace(self, **{section: _build(type(current), section, merged)})


def _check_value(section: str, f: dataclasses.Field, hint: Any, value: Any) -> Any:
    where = f"[{section}] {f.name}"
    if hint is bool:
        if not isinstance(value, bool):
            raise ConfigError(f"{where}: expected true or false, got {value!r}")
    elif hint is int:
        if isinstance(value, bool) or not isinstance(value, int):
            raise ConfigError(f"{where}: expected an integer, got {value!r}")
    elif hint is float:
        if isinstance(value, str) and value.lower() == "nan":
            value = math.nan
        if isinstance(value, bool) or not isinstance(value, (int, float)):
            raise ConfigError(f"{where}: expected a number, got {value!r}")
        value = float(value)
    elif hint is str:
        if not isinstance(value, str):
            raise ConfigError(f"{where}: expected a string, got {value!r}")
    elif hint is list or typing.get_origin(hint) is list:
        if not isinstance(value, (list, tuple)):
            raise ConfigError(f"{where}: expected a list, got {value!r}")
        value = list(value)
    meta = f.metadata
    if meta.get("choices") and value not in meta["choices"]:
        raise ConfigError(f"{where}: {value!r} is not one of {', '.join(map(str, meta['choices']))}")
    if isinstance(value, (int, float)) and not isinstance(value, bool) and not math.isnan(value):
        if meta.get("min") is not None and value < meta["min"]:
            raise ConfigError(f"{where}: {value!r} is below the minimum {meta['min']}")
        if meta.get("max") is not None and value > meta["max"]:
            raise ConfigError(f"{where}: {value!r} is above the maximum {meta['max']}")
    return value


def _build(cls: type, section: str, values: dict[str, Any]) -> Any:
    hints = typing.get_type_hints(cls)
    fields = {f.name: f for f in dataclasses.fields(cls)}
    unknown = sorted(set(values) - set(fields))
    if unknown:
        raise ConfigError(f"[{section}] {unknown[0]}: unknown key (known: {', '.join(fields)})")
    checked = {k: _check_value(section, fields[k], hints[k], v) for k, v in values.items()}
    return cls(**checked)


def from_dict(data: dict[str, Any]) -> Config:
    sections = {f.name: f for f in dataclasses.fields(Config)}
    unknown = sorted(set(data) - set(sections))
    if unknown:
        raise ConfigError(f"[{unknown[0]}]: unknown section (known: {', '.join(sections)})")
    built: dict[str, Any] = {}
    for name, value in data.items():
        if name == "camera":
            built[name] = _cameras(value)
            continue
        if not isinstance(value, dict):
            raise ConfigError(f"[{name}]: expected a table of keys, got {value!r}")
        built[name] = _build(typing.get_type_hints(Config)[name], name, value)
    return Config(**built)


def _cameras(tables: Any) -> tuple[CameraConfig, ...]:
    if not isinstance(tables, (list, tuple)) or not all(isinstance(t, dict) for t in tables):
        raise ConfigError("[[camera]]: expected an array of tables ([[camera]] name = ...)")
    cameras = tuple(_build(CameraConfig, f"camera #{i + 1}", t) for i, t in enumerate(tables))
    names = [c.name for c in cameras]
    if "" in names:
        raise ConfigError(f"[[camera]] #{names.index('') + 1} name: every camera table needs the source's name")
    if len(set(names)) != len(names):
        raise ConfigError(f"[[camera]] name: {sorted(n for n in names if names.count(n) > 1)[0]!r} is given twice")
    return cameras


def load_config(path: str | Path | None = None) -> Config:
    """Read ``config.toml`` (the repository default when ``path`` is None and it exists)."""
    if path is None:
        if not DEFAULT_CONFIG.exists():
            return Config()
        path = DEFAULT_CONFIG
    path = Path(path)
    try:
        data = tomllib.loads(path.read_text(encoding="utf-8"))
    except FileNotFoundError:
        raise ConfigError(f"{path}: no such config file") from None
    except tomllib.TOMLDecodeError as e:
        raise ConfigError(f"{path}: not valid TOML: {e}") from None
    try:
        return from_dict(data)
    except ConfigError as e:
        raise ConfigError(f"{path}: {e}") from None
