"""Internal transport: endpoints, the typed internal messages over real sockets (zero-copy frames,
people), what every receiver refuses, result re-ordering."""
from __future__ import annotations

import socket

import msgpack
import numpy as np
import pytest
import zmq

from realtime.config import Config
from realtime.outputs.reorder import Reorder
from realtime.transport.messages import (KIND_EOS, KIND_FRAME, SIGNED_BY_2D, SIGNED_BY_LIFTING, FrameMessage,
                                         MessageError, PeopleMessage)
from realtime.transport.schema import Person, SchemaError
from realtime.transport.sockets import Endpoints, make_socket


def test_endpoints_from_config_ipc_and_tcp(tmp_path):
    cfg = Config().replace("transport", scheme="ipc", ipc_dir=str(tmp_path))
    ep = Endpoints.from_config(cfg.transport, 2)
    assert ep.frames == (f"ipc://{tmp_path}/frames0", f"ipc://{tmp_path}/frames1")
    assert Endpoints.from_dict(ep.to_dict()) == ep
    tcp = Endpoints.from_config(Config().replace("transport", scheme="tcp", base_port=6100,
                                                 ipc_dir=str(tmp_path)).transport, 1)
    assert tcp.control == f"ipc://{tmp_path}/control" and tcp.frames == ("tcp://127.0.0.1:6103",)


def test_frame_travels_as_separate_part_over_ipc(tmp_path):
    ctx = zmq.Context()
    try:
        url = f"ipc://{tmp_path}/f"
        push = make_socket(ctx, zmq.PUSH, bind=url)
        pull = make_socket(ctx, zmq.PULL, connect=url)
        image = np.random.default_rng(0).integers(0, 255, (1080, 1920, 3), dtype=np.uint8)
        message = FrameMessage(KIND_FRAME, "cam0", 0, seq=7, t_capture=1.5, stages={"capture": 1.5})
        push.send_multipart([message.header(image), image], copy=False)
        assert pull.poll(5000)
        parts = pull.recv_multipart(copy=False)
        assert len(parts) == 2 and len(parts[1].buffer) == image.nbytes
        got_message, got = FrameMessage.unpack(parts)
        assert got_message == message
        assert not got.flags.owndata  # a view of the ZeroMQ buffer, not a copy
        np.testing.assert_array_equal(got, image)
        eos, none = FrameMessage.unpack([FrameMessage(KIND_EOS, "cam0", 0, reason="end_of_source").header()])
        assert eos.reason == "end_of_source" and none is None
    finally:
        ctx.destroy(linger=0)


def _people_message(**kw) -> PeopleMessage:
    person = Person(keypoints2d=np.arange(28.0).reshape(14, 2), confidence=np.full(14, 0.5), score=0.5,
                    bbox=np.array([0.0, 1.0, 27.0, 28.0]))
    return PeopleMessage(**{"kind": KIND_FRAME, "source": "cam0", "seq": 3, "epoch": 10, "iseq": 2, "t_capture": 1.0,
                            "width": 640, "height": 480, "stages": {"capture": 1.0}, "pitch_deg": 20.0,
                            "people": [person], **kw})


KEY = b"k" * 32


def test_people_message_round_trip():
    message = _people_message()
    back = PeopleMessage.unpack(message.pack(KEY, SIGNED_BY_LIFTING), KEY, SIGNED_BY_LIFTING)
    assert (back.source, back.seq, back.epoch, back.iseq, back.pitch_deg, back.focal_px) == ("cam0", 3, 10, 2, 20.0, None)
    (p,) = back.people
    assert isinstance(p, Person) and p.joints3d is None
    np.testing.assert_allclose(p.keypoints2d, message.people[0].keypoints2d)
    message.people[0].joints3d = np.zeros((16, 3))
    message.people[0].uncertainty = np.ones(16)
    message.people[0].root = np.array([0.0, 1.0, -3.0])
    message.people[0].pitch_deg = 12.5
    (p,) = PeopleMessage.unpack(message.pack(KEY, SIGNED_BY_2D), KEY, SIGNED_BY_2D).people
    assert p.joints3d.shape == (16, 3) and p.root.tolist() == [0.0, 1.0, -3.0] and p.pitch_deg == 12.5
    wire = Person.from_wire(msgpack.unpackb(msgpack.packb(p.to_wire())))      # and on to consumers
    assert wire.pitch_deg == 12.5 and np.allclose(wire.root_camera(), p.root_camera())
    c, s = np.cos(np.radians(12.5)), np.sin(np.radians(12.5))
    assert np.allclose(p.root_camera(), [0.0, c * 1.0 + s * 3.0, s * 1.0 - c * 3.0])
    old = p.to_wire()
    del old["pitch_deg"]                                                      # an older sender's person
    assert Person.from_wire(old).pitch_deg is None and Person.from_wire(old).joints3d_camera() is None
    with pytest.raises(SchemaError, match="pitch_deg"):
        Person.from_wire({**old, "pitch_deg": 95.0})


def test_people_messages_signed_by_another_key_or_sender_are_refused():
    """The publisher takes only messages a lifting worker of this run signed: not one signed with
    another key, not the 2D stage's (which a peer posing as a worker can read), not a changed body."""
    message = _people_message()
    with pytest.raises(MessageError, match="signature does not match"):
        PeopleMessage.unpack(message.pack(b"x" * 32, SIGNED_BY_LIFTING), KEY, SIGNED_BY_LIFTING)
    with pytest.raises(MessageError, match="signature does not match"):
        PeopleMessage.unpack(message.pack(KEY, SIGNED_BY_2D), KEY, SIGNED_BY_LIFTING)
    body, tag = message.pack(KEY, SIGNED_BY_LIFTING)
    forged = body.replace(b"cam0", b"cam1")
    with pytest.raises(MessageError, match="signature does not match"):
        PeopleMessage.unpack([forged, tag], KEY, SIGNED_BY_LIFTING)
    with pytest.raises(MessageError, match="2 parts"):
        PeopleMessage.unpack([body], KEY, SIGNED_BY_LIFTING)


@pytest.mark.parametrize("change, message", [
    ({"epoch": 2 ** 63}, "field 'epoch'"),
    ({"iseq": -1}, "field 'iseq'"),
    ({"kind": "stop"}, "field 'kind'"),
    ({"width": 10 ** 6}, "field 'width'"),
    ({"pitch_deg": 120.0}, "field 'pitch_deg'"),
    ({"t_capture": float("nan")}, "field 't_capture'"),
])
def test_people_messages_with_out_of_range_fields_are_refused(change, message):
    import msgpack

    d = msgpack.unpackb(_people_message().body())
    d.update(change)
    with pytest.raises(MessageError, match=message):
        PeopleMessage.from_body(msgpack.packb(d))


def test_malformed_messages_are_one_clear_error():
    import msgpack

    good = msgpack.unpackb(_people_message().body())
    cases = [(b"\xc1garbage", "not valid msgpack"), (msgpack.packb([1, 2]), "expected a map"),
             (msgpack.packb({**good, "people": [{**good["people"][0], "keypoints2d": b"short"}]}),
              "person 0: field 'keypoints2d' is not 28 float32 values"),
             (msgpack.packb({**good, "people": [{**good["people"][0], "confidence": np.full(14, 2.0, np.float32).tobytes()}]}),
              "person 0: field 'confidence' has values outside"),
             (msgpack.packb({**good, "people": ["x"] * 300}), "300 people, at most"),
             (msgpack.packb({**good, "people": [{**good["people"][0], "pitch_deg": -91.0}]}),
              "person 0: field 'pitch_deg'")]
    for data, message in cases:
        with pytest.raises(MessageError, match=message):
            PeopleMessage.from_body(data)
    header = FrameMessage(KIND_FRAME, "cam0", 0).header(np.zeros((4, 4, 3), np.uint8))
    with pytest.raises(MessageError, match="image part has 10 bytes"):
        FrameMessage.unpack([header, b"x" * 10])
    with pytest.raises(MessageError, match="2 parts"):
        FrameMessage.unpack([header])


def test_reorder_waits_boundedly_then_counts_lost():
    r = Reorder(wait_s=0.05)
    r.push(1, 1, "b", now=0.0)
    assert r.pop(0.01) == []              # waiting for 0
    r.push(1, 0, "a", now=0.02)
    assert r.pop(0.02) == ["a", "b"]
    r.push(1, 3, "d", now=0.03)           # 2 never comes (a killed worker had it)
    assert r.pop(0.04) == []
    assert r.deadline() == pytest.approx(0.08)
    assert r.pop(0.09) == ["d"] and r.lost == 1
    r.push(1, 2, "late", now=0.1)         # too late: dropped and counted
    assert r.pop(0.1) == [] and r.lost == 2
    r.push(2, 0, "new epoch", now=0.2)    # inference restarted: numbering starts again
    assert r.pop(0.2) == ["new epoch"]


def test_tcp_endpoints_bind_on_the_configured_interface(tmp_path):
    from realtime.config import TransportConfig
    from realtime.transport.sockets import Endpoints

    cfg = TransportConfig(scheme="tcp", host="10.0.0.5", bind="0.0.0.0", base_port=6000, ipc_dir=str(tmp_path))
    ep = Endpoints.from_config(cfg, 2)
    assert (ep.lift_in, ep.lift_out, ep.frames) == ("tcp://10.0.0.5:6001", "tcp://10.0.0.5:6002",
                                                    ("tcp://10.0.0.5:6003", "tcp://10.0.0.5:6004"))
    assert ep.bind_address(ep.lift_in) == "tcp://0.0.0.0:6001"
    assert ep.control == f"ipc://{tmp_path}/control" == ep.bind_address(ep.control)  # a supervisor's own
    assert Endpoints.from_dict(ep.to_dict()) == ep
    local = Endpoints.from_config(TransportConfig(ipc_dir=str(tmp_path)), 1)
    assert local.bind_address(local.lift_in) == local.lift_in == f"ipc://{tmp_path}/lift_in"


@pytest.mark.parametrize("scheme", ["ipc", "tcp"])
def test_the_smallest_message_limits_still_let_each_peer_connect(tmp_path, scheme):
    """libzmq applies a socket's largest message size to the peer's handshake (its READY command,
    ~30 bytes) too: each small limit the stages use must still let their peers in, and the messages
    through. (A 16-byte limit on the preview socket once dropped every connection silently.)"""
    from realtime.outputs.preview import PreviewMaker, PreviewRelay
    from realtime.transport.sockets import MAX_FRAME, MAX_REQUEST, MAX_SUBSCRIPTION

    ctx = zmq.Context()
    n = iter(range(100))

    def endpoint() -> str:
        if scheme == "ipc":
            return f"ipc://{tmp_path}/s{next(n)}"
        with socket.socket() as s:
            s.bind(("127.0.0.1", 0))
            return f"tcp://127.0.0.1:{s.getsockname()[1]}"

    try:
        # capture's frame socket (ROUTER, requests of at most MAX_REQUEST) <- inference's DEALER
        ep = endpoint()
        router = make_socket(ctx, zmq.ROUTER, bind=ep, max_message=MAX_REQUEST)
        dealer = make_socket(ctx, zmq.DEALER, connect=ep, max_message=MAX_FRAME)
        dealer.send_multipart([b"ready", b"1"])
        assert router.poll(3000), "the ROUTER with MAX_REQUEST never got the request"
        who, *request = router.recv_multipart()
        assert request == [b"ready", b"1"]
        # the publisher's preview ROUTER -> capture's DEALER (answers of one byte)
        ep = endpoint()
        relay = make_socket(ctx, zmq.ROUTER, bind=ep, max_message=PreviewRelay.MAX_MESSAGE)
        maker = make_socket(ctx, zmq.DEALER, connect=ep, max_message=PreviewMaker.MAX_MESSAGE)
        maker.send(b"?")
        assert relay.poll(3000)
        who, question = relay.recv_multipart()
        relay.send_multipart([who, b"1"])
        assert maker.poll(3000) and maker.recv() == b"1", "the preview DEALER never got its answer"
        # the publisher's XPUB (subscriptions of at most MAX_SUBSCRIPTION) <- SUB and XSUB consumers
        ep = endpoint()
        pub = make_socket(ctx, zmq.XPUB, bind=ep, max_message=MAX_SUBSCRIPTION)
        sub = make_socket(ctx, zmq.SUB, connect=ep, max_message=MAX_FRAME)
        sub.setsockopt(zmq.SUBSCRIBE, b"frame/" + b"c" * 24)       # the longest a source name may be
        xsub = make_socket(ctx, zmq.XSUB, connect=ep, max_message=MAX_FRAME)
        xsub.send(b"\x01skeleton")
        got = set()
        while len(got) < 2 and pub.poll(3000):
            got.add(pub.recv())
        assert got == {b"\x01frame/" + b"c" * 24, b"\x01skeleton"}
    finally:
        ctx.destroy(linger=0)
