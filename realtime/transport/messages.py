"""The messages between our own processes, typed and checked by every receiver.

Beside the public wire schema (``schema.py``, what consumers read), these are the internal ones
(docs/protocol.md, "Internal messages"):

* capture -> inference: :class:`FrameMessage`, a msgpack header and the raw image as a second part
  (sent without copying; received as a view of the ZeroMQ buffer);
* inference -> lifting workers -> publisher: :class:`PeopleMessage`, one frame's people
  (:class:`realtime.transport.schema.Person`, the pipeline's one person type) with arrays as raw
  float32 bytes, the workers adding each person's 3D pose and root.

``unpack`` checks types, shapes and ranges and raises :class:`MessageError` naming the field, so a
receiver skips (and counts) a malformed or forged message instead of failing on it later.

People messages are also signed: an HMAC-SHA256 tag (16 bytes, a second message part) over the
body, keyed by the run's secret (random per run, or ``[transport] secret_file`` for stages split
across machines) and by who sent it (:data:`SIGNED_BY_2D` or :data:`SIGNED_BY_LIFTING`). Any peer
can connect to a tcp socket; without the secret it cannot make the publisher take a message, and a
peer that poses as a lifting worker, and so reads the 2D stage's messages, cannot pass those off
as results. Values inside a signed message are still checked: the tag says who wrote it, not that
it is well formed.
"""
from __future__ import annotations

import hashlib
import hmac
import math
from dataclasses import dataclass, field
from typing import Any

import msgpack
import numpy as np

from realtime import skeleton
from realtime.transport.schema import Person

KIND_FRAME = "frame"
KIND_EOS = "eos"
KINDS = (KIND_FRAME, KIND_EOS)
#: Most people one frame message may carry, and the largest image a frame message may announce.
MAX_PEOPLE = 256
MAX_SIDE = 16384
_N2D = len(skeleton.LSP14)
_N3D = len(skeleton.JOINTS3D)


#: Whose signature a people message carries: the 2D stage's (to the lifting workers), or a lifting
#: worker's (to the publisher, which takes no other).
SIGNED_BY_2D = b"realtime/people/2d"
SIGNED_BY_LIFTING = b"realtime/people/lifted"
#: A capture process's camera preview (``realtime.outputs.preview``).
SIGNED_BY_CAPTURE = b"realtime/preview"
_TAG_BYTES = 16


class MessageError(ValueError):
    """An internal message is malformed; the message names the field."""


def _tag(key: bytes, signer: bytes, body: bytes | memoryview) -> bytes:
    return hmac.new(key, signer + b"\0" + bytes(body), hashlib.sha256).digest()[:_TAG_BYTES]


def sign(key: bytes, signer: bytes, body: bytes | memoryview) -> bytes:
    """The tag that says ``signer`` of the run with secret ``key`` sent ``body``."""
    return _tag(key, signer, body)


def verify(key: bytes, signer: bytes, body: bytes | memoryview, tag: bytes | memoryview) -> None:
    """:class:`MessageError` unless ``tag`` is ``signer``'s signature of ``body`` with ``key``."""
    if not hmac.compare_digest(bytes(tag), _tag(key, signer, body)):
        raise MessageError("signature does not match (not sent by this run's "
                           f"{ {SIGNED_BY_2D: '2D stage', SIGNED_BY_LIFTING: 'lifting workers'}.get(signer, 'capture')})")


def _field(d: dict, key: str, kind: type | tuple, *, low: float | None = None, high: float | None = None,
           optional: bool = False) -> Any:
    if key not in d or d[key] is None:
        if optional:
            return None
        raise MessageError(f"missing field {key!r}")
    value = d[key]
    kinds = kind if isinstance(kind, tuple) else (kind,)
    if isinstance(value, bool) and bool not in kinds or not isinstance(value, kinds):
        raise MessageError(f"field {key!r}: expected {'/'.join(k.__name__ for k in kinds)}, got {type(value).__name__}")
    if isinstance(value, float) and not math.isfinite(value):
        raise MessageError(f"field {key!r}: {value!r} is not finite")
    if isinstance(value, (int, float)) and not isinstance(value, bool):
        if (low is not None and value < low) or (high is not None and value > high):
            raise MessageError(f"field {key!r}: {value!r} is outside [{low}, {high}]")
    return value


def _times(d: dict, key: str) -> dict[str, float]:
    value = _field(d, key, dict)
    if len(value) > 32 or not all(isinstance(k, str) and len(k) <= 32 and isinstance(v, (int, float))
                                  and not isinstance(v, bool) and math.isfinite(v) for k, v in value.items()):
        raise MessageError(f"field {key!r}: expected at most 32 names with finite numbers")
    return {k: float(v) for k, v in value.items()}


def _unpack_map(data: bytes | memoryview) -> dict:
    try:
        d = msgpack.unpackb(bytes(data), raw=False, strict_map_key=False, max_bin_len=1 << 24,
                            max_str_len=1 << 16, max_array_len=1 << 16, max_map_len=1 << 16)
    except Exception as e:  # msgpack raises several unrelated exception types
        raise MessageError(f"not valid msgpack ({type(e).__name__})") from None
    if not isinstance(d, dict):
        raise MessageError(f"expected a map, got {type(d).__name__}")
    return d


@dataclass
class FrameMessage:
    """A captured frame (``kind`` "frame", the image travels beside it) or a source's end (``kind`` "eos")."""

    kind: str
    source: str
    index: int                      # the source's position in the run
    seq: int = 0                    # the capture's frame number
    t_capture: float = 0.0          # unix seconds
    dropped: int = 0                # frames the capture dropped so far
    stages: dict[str, float] = field(default_factory=dict)
    reason: str = ""                # "eos": why the source ended

    def header(self, image: np.ndarray | None = None) -> bytes:
        d = {"kind": self.kind, "source": self.source, "index": self.index, "seq": self.seq,
             "t_capture": self.t_capture, "dropped": self.dropped, "stages": self.stages, "reason": self.reason}
        if image is not None:
            d.update(shape=list(image.shape), dtype=image.dtype.str)
        return msgpack.packb(d, use_bin_type=True)

    @classmethod
    def unpack(cls, parts: list) -> tuple["FrameMessage", np.ndarray | None]:
        """``[header, image?]`` (ZeroMQ frames or bytes) -> the message and, for a frame, its image (a view)."""
        if not parts:
            raise MessageError("empty message")
        d = _unpack_map(_buffer(parts[0]))
        kind = _field(d, "kind", str)
        if kind not in KINDS:
            raise MessageError(f"field 'kind': {kind!r} is not one of {KINDS}")
        m = cls(kind, _field(d, "source", str), _field(d, "index", int, low=0, high=4096),
                seq=_field(d, "seq", int, low=0, optional=True) or 0,
                t_capture=float(_field(d, "t_capture", (int, float), optional=True) or 0.0),
                dropped=_field(d, "dropped", int, low=0, optional=True) or 0,
                stages=_times(d, "stages") if d.get("stages") is not None else {},
                reason=_field(d, "reason", str, optional=True) or "")
        if kind == KIND_EOS:
            return m, None
        if len(parts) != 2:
            raise MessageError(f"a frame message has 2 parts (header, image), got {len(parts)}")
        shape = _field(d, "shape", list)
        if (len(shape) != 3 or not all(isinstance(v, int) and not isinstance(v, bool) for v in shape)
                or not (1 <= shape[0] <= MAX_SIDE and 1 <= shape[1] <= MAX_SIDE) or shape[2] != 3):
            raise MessageError(f"field 'shape': {shape!r} is not an (H, W, 3) image of at most {MAX_SIDE} px a side")
        if d.get("dtype") != "|u1":
            raise MessageError(f"field 'dtype': {d.get('dtype')!r}, expected 8-bit pixels '|u1'")
        buffer = _buffer(parts[1])
        if len(buffer) != shape[0] * shape[1] * 3:
            raise MessageError(f"image part has {len(buffer)} bytes, the shape {shape} needs {shape[0] * shape[1] * 3}")
        return m, np.frombuffer(buffer, np.uint8).reshape(shape)


def _buffer(part: Any) -> memoryview | bytes:
    return part.buffer if hasattr(part, "buffer") else part


@dataclass
class PeopleMessage:
    """One frame's people between the 2D stage, the lifting workers and the publisher (or a source's
    end of stream, ``kind`` "eos", with no people)."""

    kind: str
    source: str
    seq: int                        # the capture's frame number
    epoch: int                      # changes when the inference process restarts
    iseq: int                       # frames of this source the inference process sent, in order
    t_capture: float
    dropped: int = 0
    width: int = 0
    height: int = 0
    stages: dict[str, float] = field(default_factory=dict)
    timings: dict[str, float] = field(default_factory=dict)
    #: The source's camera: focal length (px) and downward pitch (degrees); None = unknown.
    focal_px: float | None = None
    pitch_deg: float | None = None
    #: The people already carry their 3D pose: the 2D stage's 3D feedback lifted them.
    lifted: bool = False
    people: list[Person] = field(default_factory=list)

    def pack(self, key: bytes, signer: bytes) -> list[bytes]:
        """``[body, tag]``: the msgpack body and its signature by ``signer`` with the run's ``key``."""
        body = self.body()
        return [body, sign(key, signer, body)]

    def body(self) -> bytes:
        return msgpack.packb({
            "kind": self.kind, "source": self.source, "seq": self.seq, "epoch": self.epoch, "iseq": self.iseq,
            "t_capture": self.t_capture, "dropped": self.dropped, "width": self.width, "height": self.height,
            "stages": self.stages, "timings": self.timings, "focal_px": self.focal_px, "pitch_deg": self.pitch_deg,
            "lifted": self.lifted, "people": [_pack_person(p) for p in self.people]}, use_bin_type=True)

    @classmethod
    def unpack(cls, parts: list, key: bytes, signer: bytes) -> "PeopleMessage":
        """``[body, tag]`` -> the message, if ``signer`` signed it with ``key``; else :class:`MessageError`."""
        if len(parts) != 2:
            raise MessageError(f"a people message has 2 parts (body, signature), got {len(parts)}")
        body = _buffer(parts[0])
        verify(key, signer, body, _buffer(parts[1]))
        return cls.from_body(body)

    @classmethod
    def from_body(cls, data: bytes | memoryview) -> "PeopleMessage":
        d = _unpack_map(data)
        kind = _field(d, "kind", str)
        if kind not in KINDS:
            raise MessageError(f"field 'kind': {kind!r} is not one of {KINDS}")
        people = _field(d, "people", list)
        if len(people) > MAX_PEOPLE:
            raise MessageError(f"field 'people': {len(people)} people, at most {MAX_PEOPLE}")
        return cls(
            kind, _field(d, "source", str), seq=_field(d, "seq", int, low=0, high=2 ** 62),
            epoch=_field(d, "epoch", int, low=0, high=2 ** 63 - 1), iseq=_field(d, "iseq", int, low=0, high=2 ** 62),
            t_capture=float(_field(d, "t_capture", (int, float))), dropped=_field(d, "dropped", int, low=0),
            width=_field(d, "width", int, low=0, high=MAX_SIDE), height=_field(d, "height", int, low=0, high=MAX_SIDE),
            stages=_times(d, "stages"), timings=_times(d, "timings"),
            focal_px=_optional_float(d, "focal_px", 1.0, 1e6), pitch_deg=_optional_float(d, "pitch_deg", -90.0, 90.0),
            lifted=_field(d, "lifted", bool), people=[_unpack_person(p, i) for i, p in enumerate(people)])


def _optional_float(d: dict, key: str, low: float, high: float) -> float | None:
    value = _field(d, key, (int, float), low=low, high=high, optional=True)
    return None if value is None else float(value)


def _pack_person(p: Person) -> dict[str, Any]:
    def raw(a: np.ndarray | None) -> bytes | None:
        return None if a is None else np.asarray(a, np.float32).tobytes()
    return {"score": float(p.score), "bbox": [float(v) for v in p.bbox], "keypoints2d": raw(p.keypoints2d),
            "confidence": raw(p.confidence), "joints3d": raw(p.joints3d), "uncertainty": raw(p.uncertainty),
            "root": None if p.root is None else [float(v) for v in p.root],
            "pitch_deg": None if p.pitch_deg is None else float(p.pitch_deg)}


def _array(d: dict, key: str, shape: tuple[int, ...], where: str, optional: bool = False) -> np.ndarray | None:
    value = d.get(key)
    if value is None:
        if optional:
            return None
        raise MessageError(f"{where}: missing field {key!r}")
    if not isinstance(value, bytes) or len(value) != 4 * int(np.prod(shape)):
        raise MessageError(f"{where}: field {key!r} is not {int(np.prod(shape))} float32 values")
    a = np.frombuffer(value, np.float32).reshape(shape)
    if not np.isfinite(a).all():
        raise MessageError(f"{where}: field {key!r} has non-finite values")
    return a.astype(np.float64)


def _unpack_person(d: Any, i: int) -> Person:
    where = f"person {i}"
    if not isinstance(d, dict):
        raise MessageError(f"{where}: expected a map")
    try:
        score = _field(d, "score", (int, float), low=0.0, high=1.0)
        bbox = _field(d, "bbox", list)
        root = _field(d, "root", list, optional=True)
        pitch = _optional_float(d, "pitch_deg", -90.0, 90.0)
    except MessageError as e:
        raise MessageError(f"{where}: {e}") from None
    if len(bbox) != 4 or not all(isinstance(v, (int, float)) and not isinstance(v, bool) and math.isfinite(v)
                                 for v in bbox):
        raise MessageError(f"{where}: field 'bbox' is not 4 finite numbers")
    if root is not None and (len(root) != 3 or not all(isinstance(v, (int, float)) and not isinstance(v, bool)
                                                       and math.isfinite(v) for v in root)):
        raise MessageError(f"{where}: field 'root' is not 3 finite numbers")
    confidence = _array(d, "confidence", (_N2D,), where)
    if ((confidence < 0) | (confidence > 1)).any():
        raise MessageError(f"{where}: field 'confidence' has values outside [0, 1]")
    return Person(keypoints2d=_array(d, "keypoints2d", (_N2D, 2), where), confidence=confidence, score=float(score),
                  bbox=np.asarray(bbox, np.float64), joints3d=_array(d, "joints3d", (_N3D, 3), where, optional=True),
                  uncertainty=_array(d, "uncertainty", (_N3D,), where, optional=True),
                  root=None if root is None else np.asarray(root, np.float64), pitch_deg=pitch)
