"""realtime.client.Subscriber against a real PUB socket: typed messages, bad ones rejected, stream goes on."""
from __future__ import annotations

import time

import msgpack
import numpy as np
import zmq

from realtime.client import Subscriber
from realtime.transport import schema


def _frame(seq: int) -> schema.Frame:
    person = schema.Person(track_id=3, score=0.9, keypoints2d=np.full((14, 2), 10.0), confidence=np.ones(14),
                           joints3d=np.zeros((16, 3)), uncertainty=np.full(16, 0.02), root=np.array([0, 0, -3.0]),
                           bbox=(1, 2, 3, 4))
    return schema.Frame(source="cam0", seq=seq, t_capture=100.0, t_publish=100.05, people=[person],
                        stages={"capture": 100.0, "pose2d": 100.03})


def _connected(pub: zmq.Socket, sub: Subscriber) -> None:
    """Publish skeletons until the subscriber sees one (PUB drops until the subscription arrives)."""
    for _ in range(200):
        pub.send_multipart([schema.TOPIC_SKELETON, schema.pack(schema.Skeleton())])
        if sub.recv(timeout_s=0.05) is not None:
            return
    raise AssertionError("subscriber never connected")


def test_subscriber_rejects_malformed_and_keeps_going():
    ctx = zmq.Context()
    pub = ctx.socket(zmq.PUB)
    port = pub.bind_to_random_port("tcp://127.0.0.1")
    sub = Subscriber(f"tcp://127.0.0.1:{port}", ctx=ctx)
    try:
        _connected(pub, sub)
        wrong_version = _frame(1).to_wire() | {"v": 99}
        missing = _frame(2).to_wire()
        del missing["people"][0]["keypoints2d"]
        bad_shape = _frame(3).to_wire()
        bad_shape["people"][0]["joints3d"] = [[0.0, 1.0]]
        topic = schema.frame_topic("cam0")
        for parts in ([topic, b"\xc1 not msgpack"],
                      [topic, msgpack.packb(wrong_version)],
                      [topic, msgpack.packb(missing)],
                      [topic, msgpack.packb(bad_shape)],
                      [topic],
                      [schema.TOPIC_SKELETON, schema.pack(_frame(4))],
                      [topic, schema.pack(_frame(5))]):
            pub.send_multipart(parts)
        got = sub.recv(timeout_s=5.0)
        assert got is not None
        topic_name, frame = got
        assert topic_name == "frame/cam0" and isinstance(frame, schema.Frame) and frame.seq == 5
        assert frame.people[0].track_id == 3 and frame.people[0].joints3d.shape == (16, 3)
        assert sub.rejected == 6
        assert "version 99" not in sub.last_error  # the last rejection was the topic mismatch
        assert "does not match" in sub.last_error
        assert sub.received_at >= time.time() - 10
    finally:
        sub.close()
        pub.close(0)
        ctx.term()


def test_wrong_version_error_names_versions():
    payload = msgpack.packb(_frame(1).to_wire() | {"v": 99})
    try:
        schema.unpack(payload)
    except schema.SchemaError as e:
        assert "99" in str(e) and str(schema.SCHEMA_VERSION) in str(e)
    else:
        raise AssertionError("a wrong version was accepted")
