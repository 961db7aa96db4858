"""Typed configuration: one frozen dataclass per ``config.toml`` section.

Every option is documented in ``config.toml``. Loading checks each key against the dataclass
fields, so a misspelt key or a wrong value is reported with its ``[section] key`` name rather
than surfacing later deep inside a stage.
"""
from __future__ import annotations

import dataclasses
import importlib.resources
import math
import os
import re
import tomllib
import typing
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from realtime import networks
from realtime.skeleton import UPRIGHT_LEAN_DEG

#: The repository root (where config.toml, engines/ and tools/ live in a checkout).
REPO_ROOT = Path(__file__).resolve().parent.parent
#: Running from a checkout (not from an installed wheel): engines/ and ../shared are beside it.
CHECKOUT = (REPO_ROOT / "pyproject.toml").is_file()
#: The default configuration, package data (in a checkout a link to the repository's config.toml).
DEFAULT_CONFIG = Path(str(importlib.resources.files("realtime").joinpath("data", "config.toml")))


def engines_root() -> Path:
    """Where built models and caches go by default: engines/ of a checkout, else the user's cache
    directory ($XDG_CACHE_HOME or ~/.cache, then realtime-pose3d/engines)."""
    if CHECKOUT:
        return REPO_ROOT / "engines"
    cache = Path(os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache")
    return cache / "realtime-pose3d" / "engines"


def resolve_path(path: str | Path) -> Path:
    """A path from the config: ``~`` expanded; relative to the checkout (or, installed, the working
    directory)."""
    p = Path(path).expanduser()
    return p if p.is_absolute() or not CHECKOUT else REPO_ROOT / p


class ConfigError(ValueError):
    """A configuration value is wrong; the message names the section and key."""


def opt(default: Any, *, choices: tuple | None = None, min: float | None = None,
        max: float | None = None, help: str = "") -> Any:
    """A config field with its validation rules (checked by :func:`load_config`) and its one-line
    description (``help``: the first sentence of the key's comment in config.toml, shown by
    ``realtime config show``). A default of None means unset: the key is left out of the file."""
    meta = {"choices": choices, "min": min, "max": max, "help": help}
    if isinstance(default, list):
        return field(default_factory=lambda: list(default), metadata=meta)
    return field(default=default, metadata=meta)


@dataclass(frozen=True)
class SourceConfig:
    uri: str = opt("demo", help='Video file path, "webcam:N", "rtsp://...", "http://...", or "demo".')
    loop: bool = opt(False, help="File sources: start again at the end instead of ending the run.")
    realtime: bool = opt(True, help="File sources: pace frames at the file's own frame rate "
                                    "(false = as fast as decoding allows).")
    reconnect_initial_s: float = opt(0.5, min=0.01, help="Network sources: the first reconnect wait (seconds), "
                                                         "doubling after each failure.")
    reconnect_max_s: float = opt(10.0, min=0.1, help="Network sources: the longest reconnect wait (seconds).")
    give_up_after_s: float | None = opt(None, min=1.0, help="Live sources: end the source after it has been down "
                                                            "this long (seconds).")
    stream_decode_threads: int = opt(1, min=0, max=64, help="Decoder threads for network streams "
                                                            "(RTSP/HTTP...; 0 = FFmpeg's default, one per core).")
    focal_px: float | None = opt(None, min=1.0, help="Camera focal length in pixels, used to place each person's "
                                                     "root in metres and to correct lifts for perspective.")
    name: str | None = opt(None, help='Source id used in topics ("frame/<name>").')


@dataclass(frozen=True)
class Pose2DConfig:
    model: str = opt("movenet-lightning", choices=networks.names("keypoints"),
                     help="2D keypoint network for video and live sources, run on one square crop per person "
                          "and mapped to LSP-14.")
    photo_model: str = opt("movenet-thunder", choices=networks.names("keypoints"),
                           help="2D keypoint network for still images (realtime.estimate, `realtime estimate`), "
                                "where no frame rate binds.")
    detector: str = opt("nanodet", choices=networks.names("detector"), help="Person detector.")
    backend: str = opt("auto", choices=("auto", "tensorrt", "torch", "onnxruntime"),
                       help='Inference backend: "auto" picks the fastest available, tensorrt > torch (CUDA) > '
                            'onnxruntime (CPU).')
    models_dir: str | None = opt(None, help="Local mirror of the upstream model files.")
    engines_dir: str | None = opt(None, help="Where converted models (ONNX, torch) and TensorRT engine caches "
                                             "are written.")
    max_people: int = opt(64, min=1, max=256, help="Most people per photo or video frame (also the TensorRT "
                                                   "optimisation profile's max batch).")
    detector_regions_per_frame: float = opt(
        0.3, min=0.001, max=64.0, help="Video: the detector's regions (the whole frame and its tiles), taken "
                                       "round-robin, this many per frame on average.")
    file_detector_regions_per_frame: float = opt(
        1.0, min=0.001, max=64.0, help="Video files read offline (realtime.estimate_video, realtime estimate on a "
                                       "video): detector_regions_per_frame there (if more), where every frame is read "
                                       "and no frame rate binds.")
    detector_budget_people: float = opt(
        4.0, min=0.0, max=64.0, help="Video: with fewer people followed than this, the detector also gets the "
                                     "keypoint network's time of the missing ones (both costs measured as it "
                                     "runs), on top of detector_regions_per_frame; 0 = a fixed rate.")
    detector_budget_ms: float = opt(
        5.0, min=0.0, max=1000.0, help="Video: the detector looks at as many regions a frame as this many "
                                        "milliseconds of its measured time a region allow, when that is more "
                                        "than detector_regions_per_frame; 0 = off.")
    detector_async: bool = opt(True, help="Video: the detector's network runs on its own thread beside the "
                                          "keypoint network; its people join the next frame.")
    detector_score: float | None = opt(None, min=0.0, max=1.0, help="Person detector score threshold.")
    detector_tiles: int = opt(2, min=1, max=8, help="Rows of overlapping square tiles the detector also sees "
                                                    "besides the whole frame (1 = whole frame only).")
    detector_turns: bool = opt(True, help="Still images: the detector also sees the whole image turned a quarter "
                                          "each way, for people lying across it (on the floor, in bed, after a "
                                          "fall); two more detector regions a photo. Video follows a person "
                                          "who lies down, and looks upright only.")
    flip_test: bool = opt(True, help="Still images: each person found is read again in their crop mirrored and "
                                     "the two reads' keypoints are merged (the flip test): steadier joints for one "
                                     "more keypoint read a person. Video never does (its frame rate binds).")
    keypoint_threshold: float = opt(0.1, min=0.0, max=1.0, help="Keypoints below this confidence are reported "
                                                                "with confidence 0 (missing).")
    edge_confidence: float = opt(0.3, min=0.0, max=1.0, help="Keypoints on the image's edge (or beyond it) "
                                                             "below this confidence are reported missing (0 = off).")
    keep_fraction: float = opt(0.75, min=0.0, max=1.0, help="Video: a person already followed stays reported "
                                                            "down to this fraction of person_score.")
    lost_frames: int = opt(3, min=1, help="Video: a followed person below that is dropped after this many poor "
                                          "frames in a row.")
    person_score: float | None = opt(None, min=0.0, max=1.0, help="People whose mean keypoint confidence is below "
                                                                  "this are not reported.")
    ort_threads: int = opt(2, min=0, max=256, help="ONNX Runtime intra-op threads (0 = its default).")
    ort_split_batch: bool = opt(True, help="ONNX Runtime: a batch of several crops is cut into ort_threads parts "
                                           "run side by side, one thread each.")
    cpu_int8: bool = opt(False, help="ONNX Runtime (CPU), video and live sources: networks with an int8 "
                                      "calibration (the nanodet person detector) run as int8 models.")
    precision: str = opt("fp16", choices=("fp16", "fp32"), help='GPU precision for the tensorrt and torch '
                                                                'backends: "fp16" or "fp32".')
    refine_3d: bool = opt(False, help="The paper's 3D -> 2D feedback, for networks with belief maps (cpm, "
                                      "efficientpose, movenet-*).")
    refine_weight: float = opt(0.3, min=0.0, max=1.0, help="Weight of the projected maps in the fusion: "
                                                           "(1 - w) network + w projected.")
    refine_sigma: float = opt(2.0, min=0.1, help="Sigma of the projected Gaussians in belief-map pixels (the CPM's "
                                                 "own peaks: about 2).")
    refine_iterations: int = opt(1, min=1, max=5, help="Lift -> project -> fuse rounds.")
    refine_leave_one_out: bool = opt(False, help="Project each joint from a lift of the *other* joints.")

    def for_photos(self) -> "Pose2DConfig":
        """These settings for still images, where no frame rate binds: the keypoint network is
        ``photo_model`` and the detector stays float32 (``cpu_int8`` is for video)."""
        return dataclasses.replace(self, model=self.photo_model, cpu_int8=False)

    def for_files(self) -> "Pose2DConfig":
        """These settings for a video file read offline, every frame in turn: the detector looks at
        ``file_detector_regions_per_frame`` regions a frame and stays float32, as nothing is gained by
        finding people later to keep up with a camera (a live source's rate is a CPU's frame-rate
        trade-off). The keypoint network stays the video one (``model``)."""
        rate = max(self.detector_regions_per_frame, self.file_detector_regions_per_frame)   # never fewer than live
        return dataclasses.replace(self, detector_regions_per_frame=rate, cpu_int8=False)


@dataclass(frozen=True)
class LiftingConfig:
    prior: str | None = opt(None, help="Trained pose prior (.npz).")
    rotations: int = opt(80, min=1, max=3600, help="Ground-plane rotations searched (the paper: 80 is as good "
                                                   "as the global optimum).")
    camera_pitch_deg: float | None = opt(None, min=-90.0, max=90.0, help="Known camera pitch in degrees "
                                                                        "(positive = looking down).")
    elevations_deg: list[float] = opt([-10.0, 0.0, 10.0, 20.0, 30.0], min=-90.0, max=90.0,
                                      help="Elevations searched when the pitch is unknown (degrees).")
    min_visible_joints: int = opt(5, min=2, max=14, help='Fewer visible joints than this gives "no 3D pose".')
    min_confidence: float = opt(0.05, min=0.0, max=1.0, help="Keypoints with confidence below this count as "
                                                             "missing; the others count fully (no weighting).")
    roll_above_deg: float = opt(UPRIGHT_LEAN_DEG, min=0.0, max=180.0, help="A person whose torso (hips to shoulders) "
                                                                 "leans more than this many degrees from upright "
                                                                 "in the image is also lifted with the image "
                                                                 "turned to stand them up; 180 = never.")
    perspective: bool = opt(True, help="Correct each lift for perspective with the source's focal length "
                                       "(configured, or 0.8 x the image width) and the image centre: one "
                                       "more lift per person.")
    pitch_estimate_people: int = opt(0, min=0, help="Unknown pitch: people of a source lifted with the "
                                                      "elevation search before its pitch is estimated once and "
                                                      "kept (0 = search every person).")


@dataclass(frozen=True)
class TrackingConfig:
    max_cost: float = opt(0.7, min=0.0, help="Largest association cost accepted (gating); the cost is in [0, 1] "
                                             "for plausible matches.")
    confirm_frames: int = opt(3, min=1, help="Detections needed before a track is confirmed and gets an id.")
    coast_s: float = opt(1.0, min=0.0, help="Keep a track alive without detections this long (seconds).")
    reid_s: float = opt(3.0, min=0.0, help="Re-identify a lost person reappearing nearby within this window "
                                           "(seconds since last seen).")
    keypoint_weight: float = opt(0.5, min=0.0, max=1.0, help="Share of the cost given to the keypoint distance "
                                                             "(the rest is 1 - box IoU).")
    keypoint_gate: float = opt(0.25, min=0.01, help="Largest mean keypoint distance to a track's prediction, in "
                                                    "person heights (widens while unseen).")
    min_keypoints: int = opt(3, min=1, max=14, help="Detections with fewer usable keypoints are ignored.")
    min_confidence: float = opt(0.05, min=0.0, max=1.0, help="Keypoints below this confidence count as missing.")


@dataclass(frozen=True)
class FilterConfig:
    enabled: bool = opt(True, help="Temporal filtering of each track's 3D joints and root (One Euro).")
    min_cutoff: float = opt(1.0, min=0.0, help="Joints: cutoff (Hz) when still.")
    beta: float = opt(1.0, min=0.0, help="Joints: cutoff increase (Hz) per m/s of joint speed.")
    d_cutoff: float = opt(1.0, min=0.0, help="Cutoff (Hz) of the speed estimate.")
    root_min_cutoff: float = opt(2.0, min=0.0, help="Root: cutoff (Hz) when still.")
    root_beta: float = opt(0.0, min=0.0, help="Root: cutoff increase (Hz) per m/s of root speed.")
    reset_after_s: float = opt(0.5, min=0.0, help="A track unseen this long (seconds) starts its filter afresh.")


@dataclass(frozen=True)
class TransportConfig:
    scheme: str = opt("ipc", choices=("ipc", "tcp"), help='Between our own processes: "ipc" (one machine) or '
                                                          '"tcp" (split across machines).')
    ipc_dir: str | None = opt(None, help="Directory for ipc sockets.")
    host: str = opt("127.0.0.1", help="tcp: the address of the machine that runs capture, inference and the "
                                      "publisher.")
    bind: str | None = opt(None, help="tcp: the interface those sockets listen on.")
    base_port: int = opt(5550, min=1024, max=65000, help="tcp: the first of that machine's ports (base_port + 1: "
                                                         "2D people out, + 2: 3D results in, + 3 + i: frames of "
                                                         "source i).")
    publish: str = opt("tcp://127.0.0.1:5560", help="Where consumers subscribe (ZeroMQ PUB).")
    skeleton_every_s: float = opt(2.0, min=0.1, help="The skeleton message is re-sent this often (seconds) for "
                                                     "late subscribers.")


@dataclass(frozen=True)
class SecurityConfig:
    curve: bool = opt(False, help="CURVE encryption and client authentication on every tcp socket (publish, and "
                                  "the split stages').")
    secret_file: str | None = opt(None, help="Shared secret that signs the people messages between stages.")
    server_key: str | None = opt(None, help="The server's ZeroMQ certificate: the .key_secret file where sockets "
                                            "listen, the public .key elsewhere.")
    client_key: str | None = opt(None, help="The certificate (.key_secret) our own stages connect with to another "
                                            "machine's sockets.")
    allowed_clients: str | None = opt(None, help="Directory of the public keys (.key) of the clients allowed to "
                                                 "connect.")


@dataclass(frozen=True)
class RuntimeConfig:
    workers: int = opt(2, min=1, max=64, help="CPU lifting worker processes.")
    reorder_wait_ms: float = opt(50.0, min=0.0, help="Bounded wait for a late frame when re-ordering lifting "
                                                     "results (milliseconds).")
    batch_wait_ms: float = opt(0.0, min=0.0, max=1000.0, help="Several sources: how long the 2D stage may wait for "
                                                              "the other sources' frames (milliseconds).")
    heartbeat_s: float = opt(1.0, min=0.05, help="Children report a heartbeat this often (seconds).")
    hang_timeout_s: float = opt(10.0, min=0.5, help="A child silent this long is considered hung and restarted "
                                                    "(seconds).")
    status_every_s: float = opt(5.0, min=0.0, help="One-line status every N seconds (0 = never).")
    log_format: str = opt("text", choices=("text", "json"), help='Log format: "text" or "json" (structured, one '
                                                                 'object a line).')


@dataclass(frozen=True)
class RecordConfig:
    path: str | None = opt(None, help="MCAP file to record the published stream to.")
    flush_every_s: float = opt(1.0, min=0.05, help="Recording is flushed at least this often (seconds): a killed "
                                                   "process loses at most this much.")


@dataclass(frozen=True)
class VmcConfig:
    host: str = opt("127.0.0.1", help="VMC protocol (OSC over UDP) receiver host for Unity/Unreal/VTuber tools.")
    port: int = opt(39539, min=1, max=65535, help="VMC receiver port (the first one, with one sender per track).")
    track: int = opt(-1, min=-1, help="Track id to send on `port`; -1 = one sender per track.")
    max_senders: int = opt(4, min=1, max=64, help="With track = -1: at most this many senders (ports).")


@dataclass(frozen=True)
class ViewerConfig:
    bind: str = opt("127.0.0.1", help="The browser viewer (`realtime view`, `realtime run --view`) listens on this "
                                      "address.")
    port: int = opt(8070, min=1, max=65535, help="The viewer's HTTP port.")
    preview: bool = opt(False, help="Publish a downscaled JPEG of each source (topic preview/<source>) while a "
                                    "viewer asks for it.")
    preview_fps: float = opt(5.0, min=0.1, max=60.0, help="Previews per second and source, at most.")
    preview_width: int = opt(640, min=64, max=3840, help="Preview width in pixels (height in proportion; never "
                                                         "wider than the source).")
    preview_quality: int = opt(70, min=10, max=100, help="Preview JPEG quality.")
    max_fps: float = opt(15.0, min=1.0, max=60.0, help="Updates per second sent to each browser, at most.")


@dataclass(frozen=True)
class CameraConfig:
    """One ``[[camera]]`` table: what is known about one source's camera, by source name."""

    name: str = opt("", help="The source it describes: cam0, cam1, ... or its [source] name.")
    focal_px: float | None = opt(None, min=1.0, help="Focal length in pixels (unset: [source] focal_px).")
    pitch_deg: float | None = opt(None, min=-90.0, max=90.0,
                                  help="Downward pitch in degrees (unset: [lifting] camera_pitch_deg).")


@dataclass(frozen=True)
class Config:
    source: SourceConfig = field(default_factory=SourceConfig)
    pose2d: Pose2DConfig = field(default_factory=Pose2DConfig)
    lifting: LiftingConfig = field(default_factory=LiftingConfig)
    tracking: TrackingConfig = field(default_factory=TrackingConfig)
    filter: FilterConfig = field(default_factory=FilterConfig)
    transport: TransportConfig = field(default_factory=TransportConfig)
    security: SecurityConfig = field(default_factory=SecurityConfig)
    runtime: RuntimeConfig = field(default_factory=RuntimeConfig)
    record: RecordConfig = field(default_factory=RecordConfig)
    vmc: VmcConfig = field(default_factory=VmcConfig)
    viewer: ViewerConfig = field(default_factory=ViewerConfig)
    #: ``[[camera]]`` tables: per-source camera settings over the global ones.
    camera: tuple[CameraConfig, ...] = ()

    def camera_for(self, source: str) -> tuple[float | None, float | None]:
        """``(focal_px, pitch_deg)`` of a source: its ``[[camera]]`` values where given, else the
        global ``[source] focal_px`` and ``[lifting] camera_pitch_deg`` (None = unknown)."""
        focal, pitch = self.source.focal_px, self.lifting.camera_pitch_deg
        for c in self.camera:
            if c.name == source:
                focal = c.focal_px if c.focal_px is not None else focal
                pitch = c.pitch_deg if c.pitch_deg is not None else pitch
        return focal, pitch

    def replace(self, section: str, **values: Any) -> "Config":
        """A copy with some keys of one section changed, validated like the file."""
        current = getattr(self, section)
        merged = dataclasses.asdict(current) | values
        return dataclasses.replace(self, **{section: _build(type(current), section, merged)})


def _check_value(section: str, f: dataclasses.Field, hint: Any, value: Any) -> Any:
    return _check(f"[{section}] {f.name}", f.metadata, hint, value)


def _check(where: str, meta: Any, hint: Any, value: Any) -> Any:
    """``value`` checked against a field's type hint and rules; the error names ``where``."""
    args = typing.get_args(hint)
    if type(None) in args:                  # an optional key: None (unset) is allowed as it is
        if value is None:
            return None
        hint = next(a for a in args if a is not type(None))
    if hint is bool:
        if not isinstance(value, bool):
            raise ConfigError(f"{where}: expected true or false, got {value!r}")
    elif hint is int:
        if isinstance(value, bool) or not isinstance(value, int):
            raise ConfigError(f"{where}: expected an integer, got {value!r}")
    elif hint is float:
        if isinstance(value, bool) or not isinstance(value, (int, float)) or not math.isfinite(value):
            unset = " (to leave it unset, remove the key)" if isinstance(value, (str, float)) else ""
            raise ConfigError(f"{where}: expected a finite number, got {value!r}{unset}")
        value = float(value)
    elif hint is str:
        if not isinstance(value, str):
            raise ConfigError(f"{where}: expected a string, got {value!r}")
    elif typing.get_origin(hint) is list:
        if not isinstance(value, (list, tuple)):
            raise ConfigError(f"{where}: expected a list, got {value!r}")
        (item,) = typing.get_args(hint)
        return [_check(f"{where}[{i}]", meta, item, v) for i, v in enumerate(value)]
    if meta.get("choices") and value not in meta["choices"]:
        raise ConfigError(f"{where}: {value!r} is not one of {', '.join(map(str, meta['choices']))}")
    if isinstance(value, (int, float)) and not isinstance(value, bool):
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
    built = cls(**checked)
    _check_together(section, built)
    return built


def check_endpoint(where: str, value: str) -> None:
    """A ZeroMQ endpoint we bind or connect: ``tcp://HOST:PORT`` (PORT 1-65535) or ``ipc://PATH``."""
    if value.startswith("ipc://") and len(value) > len("ipc://"):
        return
    m = re.fullmatch(r"tcp://(\[[0-9A-Fa-f:.]+\]|[A-Za-z0-9*._-]+):(\d{1,5})", value)
    if m is None:
        raise ConfigError(f"{where}: {value!r} is not an endpoint: expected tcp://HOST:PORT or ipc://PATH")
    if not 1 <= int(m.group(2)) <= 65535:
        raise ConfigError(f"{where}: {value!r}: port {int(m.group(2))} is outside 1-65535")


#: Longest source name: topics carry it, and subscriptions are kept short (transport.sockets.MAX_SUBSCRIPTION).
MAX_SOURCE_NAME = 24


def _check_together(section: str, c: Any) -> None:
    """Rules between the keys of one section, each error naming the key to change."""
    if isinstance(c, (SourceConfig, CameraConfig)) and c.name and not re.fullmatch(
            rf"[A-Za-z0-9_.-]{{1,{MAX_SOURCE_NAME}}}", c.name):
        raise ConfigError(f"[{section}] name: {c.name!r}: a source name is 1-{MAX_SOURCE_NAME} letters, digits, "
                          "'_', '.' or '-' (it is part of the stream's topics)")
    if isinstance(c, RuntimeConfig) and c.hang_timeout_s < 2 * c.heartbeat_s:
        raise ConfigError(f"[runtime] hang_timeout_s: {c.hang_timeout_s} must be at least twice heartbeat_s "
                          f"({c.heartbeat_s}), or every child would be restarted as hung between two heartbeats")
    if isinstance(c, SourceConfig) and c.reconnect_initial_s > c.reconnect_max_s:
        raise ConfigError(f"[source] reconnect_initial_s: {c.reconnect_initial_s} is above reconnect_max_s "
                          f"({c.reconnect_max_s})")
    if isinstance(c, TransportConfig):
        check_endpoint("[transport] publish", c.publish)
        for key in ("host", "bind"):
            value = getattr(c, key)
            ipv6 = value is not None and value.count(":") >= 2
            if value is not None and not re.fullmatch(r"[0-9A-Fa-f:.]+" if ipv6 else r"[A-Za-z0-9*._-]+", value):
                raise ConfigError(f"[transport] {key}: {value!r} is not a host name or address (no scheme, no port)")
    if isinstance(c, VmcConfig) and not c.host:
        raise ConfigError("[vmc] host: empty")


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
    """Read a ``config.toml`` (the packaged default, the repository's in a checkout, when ``path`` is None)."""
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


def parse_setting(item: str, where: str = "setting", form: str = "KEY=VALUE") -> tuple[str, Any]:
    """``KEY=VALUE`` as a command-line flag gives it, the value in TOML syntax (strings need quotes):
    (key, value), or a ConfigError naming ``where`` and the item."""
    key, sep, value = item.partition("=")
    if not (sep and key.strip()):
        raise ConfigError(f"{where} {item!r}: expected {form}")
    try:
        return key.strip(), tomllib.loads(f"v = {value}")["v"]
    except tomllib.TOMLDecodeError:
        raise ConfigError(f"{where} {item!r}: {value!r} is not a TOML value (strings need quotes)") from None


# -- realtime config show -----------------------------------------------------------------------------------

def add_arguments(p: Any) -> None:
    p.add_argument("action", choices=("show",), help="show: the configuration in effect, key by key")
    p.add_argument("--config", help="config.toml to read (default: the packaged / repository one)")
    p.add_argument("--set", action="append", default=[], metavar="SECTION.KEY=VALUE",
                   help="a value as a command-line flag would give it (TOML syntax, e.g. pose2d.model=\"cpm\")")


def run(args: Any) -> int:
    import sys

    path = Path(args.config) if args.config else DEFAULT_CONFIG
    try:
        cfg = load_config(args.config)
        in_file = tomllib.loads(path.read_text(encoding="utf-8")) if path.exists() else {}
        flags: dict[str, dict[str, Any]] = {}
        for item in args.set:
            key, value = parse_setting(item, "--set", "SECTION.KEY=VALUE")
            section, dot, name = key.partition(".")
            if not (dot and section and name):
                raise ConfigError(f"--set {item!r}: expected SECTION.KEY=VALUE")
            flags.setdefault(section, {})[name] = value
        for section, values in flags.items():
            if section not in {f.name for f in dataclasses.fields(Config)} or section == "camera":
                raise ConfigError(f"--set [{section}]: unknown section")
            cfg = cfg.replace(section, **values)
    except ConfigError as e:
        print(f"error: {e}", file=sys.stderr)
        return 2
    print(f"# {path}" + (" with " + " ".join(args.set) if args.set else ""))
    for section in dataclasses.fields(Config):
        if section.name == "camera":
            continue
        values = getattr(cfg, section.name)
        print(f"\n[{section.name}]")
        for f in dataclasses.fields(values):
            origin = ("flag" if f.name in flags.get(section.name, {}) else
                      "file" if f.name in in_file.get(section.name, {}) else "default")
            value = getattr(values, f.name)
            shown = f"{f.name} = {_toml(value)}" if value is not None else f"# {f.name} (unset)"
            print(f"{shown:44s} # {origin:7s} {f.metadata.get('help', '')}")
    for c in cfg.camera:
        print(f"\n[[camera]]  # file\nname = {_toml(c.name)}")
        for name in ("focal_px", "pitch_deg"):
            if getattr(c, name) is not None:
                print(f"{name} = {_toml(getattr(c, name))}")
    return 0


def _toml(value: Any) -> str:
    """A value in TOML syntax."""
    import json

    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, list):
        return "[" + ", ".join(_toml(v) for v in value) + "]"
    return json.dumps(value)
