"""The published wire schema, defined once (documented in ``docs/protocol.md``).

Messages are ZeroMQ multipart ``[topic, msgpack payload]``. Payloads are plain msgpack maps
of lists and numbers so that any language (C#, Blender's Python, JavaScript) can read them
without our code. Coordinates: metres, right-handed, y up (glTF convention).
"""
from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import Any

import msgpack
import numpy as np

from realtime import skeleton

SCHEMA_VERSION = 1

TOPIC_SKELETON = b"skeleton"
TOPIC_FRAME_PREFIX = b"frame/"
#: Camera previews for viewers (``realtime.outputs.preview``): never recorded, sent only on request.
TOPIC_PREVIEW_PREFIX = b"preview/"
#: The largest preview JPEG a receiver accepts.
MAX_PREVIEW_BYTES = 4 << 20


class SchemaError(ValueError):
    """A message does not follow the wire schema; the message says which field is wrong."""


def frame_topic(source: str) -> bytes:
    return TOPIC_FRAME_PREFIX + source.encode("utf-8")


@dataclass
class Skeleton:
    joint_names: list[str] = field(default_factory=lambda: list(skeleton.JOINTS3D))
    parents: list[int] = field(default_factory=lambda: list(skeleton.PARENT_INDEX3D))
    keypoint_names: list[str] = field(default_factory=lambda: list(skeleton.LSP14))
    #: Rest-pose offset of each joint from its parent (metres), e.g. the prior's mean pose.
    rest_offsets: list[list[float]] = field(default_factory=list)
    units: str = "m"
    axes: str = "right-handed, y up, x left-to-right of the camera, z towards the camera"

    def to_wire(self) -> dict[str, Any]:
        return {"v": SCHEMA_VERSION, "type": "skeleton", "joint_names": self.joint_names,
                "parents": self.parents, "keypoint_names": self.keypoint_names,
                "rest_offsets": self.rest_offsets, "units": self.units, "axes": self.axes}

    @classmethod
    def from_wire(cls, d: Any) -> "Skeleton":
        _check_header(d, "skeleton")
        names = _get(d, "joint_names", list)
        parents = _get(d, "parents", list)
        if len(parents) != len(names) or not all(isinstance(p, int) and -1 <= p < len(names) for p in parents):
            raise SchemaError("skeleton.parents: must hold one index in [-1, J) per joint name")
        return cls(joint_names=[str(n) for n in names], parents=list(parents),
                   keypoint_names=[str(n) for n in _get(d, "keypoint_names", list)],
                   rest_offsets=_get(d, "rest_offsets", list), units=str(_get(d, "units", str)),
                   axes=str(_get(d, "axes", str)))


@dataclass(eq=False)
class Person:
    """One person, the one type from the 2D stage to the wire: what the 2D networks found (box,
    score, LSP-14 keypoints and confidences), then the lifter's 3D pose and root, then the tracker's
    id. Arrays are float numpy arrays; ``keypoints`` is another name for ``keypoints2d``."""

    keypoints2d: np.ndarray         # (14, 2) image pixels, LSP-14 order
    confidence: np.ndarray          # (14,) in [0, 1]; 0 = not found
    score: float                    # mean of the keypoint network's own confidences
    bbox: np.ndarray = field(default_factory=lambda: np.full(4, math.nan))   # (4,) x0, y0, x1, y1 pixels
    track_id: int = -1              # -1 while a detection is not yet confirmed as a track
    joints3d: np.ndarray | None = None     # (J, 3) metres, root relative; None when lifting gave no pose
    uncertainty: np.ndarray | None = None  # (J,) per-joint posterior std (metres) from the lifter
    root: np.ndarray | None = None         # (3,) root position in the camera's level frame (metres) when known
    #: The camera's downward pitch (degrees) this person was lifted at: the configured one, or the one
    #: the lifter's search chose for them; None when not lifted. It turns the level frame into camera axes.
    pitch_deg: float | None = None

    def __post_init__(self) -> None:
        self.keypoints2d = np.asarray(self.keypoints2d, np.float64)
        self.confidence = np.asarray(self.confidence, np.float64)
        self.bbox = np.asarray(self.bbox, np.float64)
        self.score = float(self.score)
        if self.keypoints2d.shape != (len(skeleton.LSP14), 2) or self.confidence.shape != (len(skeleton.LSP14),):
            raise SchemaError(f"person: keypoints2d {self.keypoints2d.shape} and confidence {self.confidence.shape}, "
                              f"expected ({len(skeleton.LSP14)}, 2) and ({len(skeleton.LSP14)},)")
        if self.bbox.shape != (4,):
            raise SchemaError(f"person: bbox has shape {self.bbox.shape}, expected (4,)")

    @property
    def keypoints(self) -> np.ndarray:
        return self.keypoints2d

    def joints3d_camera(self) -> np.ndarray | None:
        """``joints3d`` in the camera's own axes (metres, pelvis-relative): the level frame turned down
        by ``pitch_deg``, so x right, y up along the image, z towards the camera. For OpenCV's and
        Human3.6M's axes (y down, z forward) multiply by (1, -1, -1). None when not lifted."""
        return None if self.joints3d is None or self.pitch_deg is None else skeleton.level_to_camera(self.joints3d, self.pitch_deg)

    def root_camera(self) -> np.ndarray | None:
        """``root`` (the pelvis, metres from the camera) in the camera's own axes, as :meth:`joints3d_camera`."""
        return None if self.root is None or self.pitch_deg is None else skeleton.level_to_camera(self.root, self.pitch_deg)

    def to_wire(self) -> dict[str, Any]:
        return {
            "id": int(self.track_id), "score": float(self.score),
            "bbox": [float(v) for v in self.bbox],
            "keypoints2d": np.asarray(self.keypoints2d, np.float64).round(2).tolist(),
            "confidence": np.asarray(self.confidence, np.float64).round(4).tolist(),
            "joints3d": None if self.joints3d is None else np.asarray(self.joints3d, np.float64).round(5).tolist(),
            "uncertainty": None if self.uncertainty is None else np.asarray(self.uncertainty, np.float64).round(5).tolist(),
            "root": None if self.root is None else np.asarray(self.root, np.float64).round(5).tolist(),
            "pitch_deg": None if self.pitch_deg is None else round(float(self.pitch_deg), 3),
        }

    @classmethod
    def from_wire(cls, d: Any, n_joints: int | None = None) -> "Person":
        if not isinstance(d, dict):
            raise SchemaError("person: expected a map")
        kp = _array(d, "keypoints2d", (len(skeleton.LSP14), 2))
        conf = _array(d, "confidence", (len(skeleton.LSP14),))
        j3 = _array(d, "joints3d", (n_joints or -1, 3), optional=True)
        unc = _array(d, "uncertainty", (j3.shape[0] if j3 is not None else -1,), optional=True)
        root = _array(d, "root", (3,), optional=True)
        bbox = _array(d, "bbox", (4,))
        pitch = d.get("pitch_deg")      # added within version 1: absent from older senders
        if pitch is not None and (isinstance(pitch, bool) or not isinstance(pitch, (int, float))
                                  or not -90.0 <= pitch <= 90.0):
            raise SchemaError(f"field 'pitch_deg': expected degrees in [-90, 90] or null, got {pitch!r}")
        return cls(track_id=int(_get(d, "id", int)), score=float(_get(d, "score", (int, float))),
                   keypoints2d=kp, confidence=conf, joints3d=j3, uncertainty=unc, root=root, bbox=bbox,
                   pitch_deg=None if pitch is None else float(pitch))


@dataclass
class Frame:
    source: str
    seq: int                        # frame sequence number from the capture process
    t_capture: float                # unix seconds when the frame was captured (source time when known)
    t_publish: float                # unix seconds when the frame was published
    people: list[Person]
    dropped: int = 0                # frames dropped so far by this source's pipeline
    width: int = 0
    height: int = 0
    #: unix seconds each stage finished with this frame ("capture", "pose2d", "lift", "track", ...)
    stages: dict[str, float] = field(default_factory=dict)
    #: The source's camera as the lifter used it: focal length (px) and downward pitch (degrees), None
    #: where unknown (the pitch then was searched: rotate the joints by R_x(pitch) to get camera axes).
    focal_px: float | None = None
    pitch_deg: float | None = None

    def to_wire(self) -> dict[str, Any]:
        return {"v": SCHEMA_VERSION, "type": "frame", "source": self.source, "seq": int(self.seq),
                "t_capture": float(self.t_capture), "t_publish": float(self.t_publish),
                "dropped": int(self.dropped), "width": int(self.width), "height": int(self.height),
                "stages": {k: float(v) for k, v in self.stages.items()},
                "camera": {"focal_px": self.focal_px, "pitch_deg": self.pitch_deg},
                "people": [p.to_wire() for p in self.people]}

    @classmethod
    def from_wire(cls, d: Any) -> "Frame":
        _check_header(d, "frame")
        people = _get(d, "people", list)
        stages = _get(d, "stages", dict)
        if not all(isinstance(k, str) and isinstance(v, (int, float)) for k, v in stages.items()):
            raise SchemaError("frame.stages: expected a map of stage name to unix seconds")
        camera = d.get("camera") or {}
        if not isinstance(camera, dict) or not all(
                camera.get(k) is None or (isinstance(camera[k], (int, float)) and not isinstance(camera[k], bool))
                for k in ("focal_px", "pitch_deg")):
            raise SchemaError("frame.camera: expected a map of focal_px and pitch_deg (numbers or null)")
        return cls(source=str(_get(d, "source", str)), seq=int(_get(d, "seq", int)),
                   t_capture=float(_get(d, "t_capture", (int, float))),
                   t_publish=float(_get(d, "t_publish", (int, float))),
                   dropped=int(_get(d, "dropped", int)), width=int(_get(d, "width", int)),
                   height=int(_get(d, "height", int)), stages=dict(stages),
                   focal_px=None if camera.get("focal_px") is None else float(camera["focal_px"]),
                   pitch_deg=None if camera.get("pitch_deg") is None else float(camera["pitch_deg"]),
                   people=[Person.from_wire(p) for p in people])


def preview_topic(source: str) -> bytes:
    return TOPIC_PREVIEW_PREFIX + source.encode("utf-8")


@dataclass
class Preview:
    """A downscaled JPEG of one source frame, for viewers (topic ``preview/<source>``). ``seq`` is the
    frame's, so a viewer draws the people of ``frame/<source>`` with that seq over exactly this image;
    ``width`` x ``height`` is the source frame's size (the keypoints' pixels), not the JPEG's."""

    source: str
    seq: int
    t_capture: float
    width: int
    height: int
    jpeg: bytes

    def to_wire(self) -> dict[str, Any]:
        return {"v": SCHEMA_VERSION, "type": "preview", "source": self.source, "seq": int(self.seq),
                "t_capture": float(self.t_capture), "width": int(self.width), "height": int(self.height),
                "jpeg": bytes(self.jpeg)}

    @classmethod
    def from_wire(cls, d: Any) -> "Preview":
        _check_header(d, "preview")
        jpeg = _get(d, "jpeg", bytes)
        if not 0 < len(jpeg) <= MAX_PREVIEW_BYTES or not jpeg.startswith(b"\xff\xd8"):
            raise SchemaError(f"preview.jpeg: expected a JPEG of at most {MAX_PREVIEW_BYTES} bytes")
        width, height = int(_get(d, "width", int)), int(_get(d, "height", int))
        if not (0 < width <= 16384 and 0 < height <= 16384):
            raise SchemaError(f"preview: frame size {width}x{height} out of range")
        return cls(source=str(_get(d, "source", str)), seq=int(_get(d, "seq", int)),
                   t_capture=float(_get(d, "t_capture", (int, float))), width=width, height=height, jpeg=jpeg)


def pack(message: Skeleton | Frame | Preview) -> bytes:
    return msgpack.packb(message.to_wire(), use_bin_type=True)


def unpack(payload: bytes) -> Skeleton | Frame | Preview:
    """Decode and validate one payload; raises :class:`SchemaError` with a clear reason."""
    try:
        d = msgpack.unpackb(payload, raw=False, strict_map_key=False)
    except Exception as e:  # msgpack raises several unrelated exception types
        raise SchemaError(f"payload is not valid msgpack ({type(e).__name__}: {e})") from None
    kind = d.get("type") if isinstance(d, dict) else None
    if kind == "frame":
        return Frame.from_wire(d)
    if kind == "skeleton":
        return Skeleton.from_wire(d)
    if kind == "preview":
        return Preview.from_wire(d)
    raise SchemaError(f"unknown message type {kind!r}")


def _check_header(d: Any, kind: str) -> None:
    if not isinstance(d, dict):
        raise SchemaError(f"{kind}: expected a map, got {type(d).__name__}")
    v = d.get("v")
    if v != SCHEMA_VERSION:
        raise SchemaError(f"{kind}: schema version {v!r} is not supported (this client reads {SCHEMA_VERSION})")
    if d.get("type") != kind:
        raise SchemaError(f"{kind}: type field is {d.get('type')!r}")


def _get(d: dict, key: str, types: type | tuple) -> Any:
    if key not in d:
        raise SchemaError(f"missing field {key!r}")
    value = d[key]
    if isinstance(value, bool) and bool not in (types if isinstance(types, tuple) else (types,)):
        raise SchemaError(f"field {key!r}: expected {types}, got a boolean")
    if not isinstance(value, types):
        raise SchemaError(f"field {key!r}: expected {getattr(types, '__name__', types)}, got {type(value).__name__}")
    return value


def _array(d: dict, key: str, shape: tuple[int, ...], optional: bool = False) -> np.ndarray | None:
    if key not in d:
        raise SchemaError(f"missing field {key!r}")
    if d[key] is None:
        if optional:
            return None
        raise SchemaError(f"field {key!r} must not be null")
    try:
        a = np.asarray(d[key], dtype=np.float64)
    except (TypeError, ValueError):
        raise SchemaError(f"field {key!r}: expected numbers") from None
    if a.ndim != len(shape) or any(s != -1 and s != n for s, n in zip(shape, a.shape)):
        raise SchemaError(f"field {key!r}: expected shape {shape}, got {a.shape}")
    return a
