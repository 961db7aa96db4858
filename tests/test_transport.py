"""Internal transport: endpoints, zero-copy frame messages over real sockets, result re-ordering."""
from __future__ import annotations

import numpy as np
import pytest
import zmq

from realtime.config import Config
from realtime.runtime.reorder import Reorder
from realtime.transport.sockets import (KIND_FRAME, Endpoints, make_socket, pack_header, recv_frame, send_frame,
                                        unpack_header)


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
        send_frame(push, {"kind": KIND_FRAME, "seq": 7, "t_capture": 1.5}, image)
        assert pull.poll(5000)
        parts = pull.recv_multipart(copy=False)
        assert len(parts) == 2 and len(parts[1].buffer) == image.nbytes
        header, got = recv_frame(parts)
        assert header["seq"] == 7 and header["shape"] == [1080, 1920, 3]
        assert not got.flags.owndata  # a view of the ZeroMQ buffer, not a copy
        np.testing.assert_array_equal(got, image)
    finally:
        ctx.destroy(linger=0)


def test_header_must_be_a_map_with_kind():
    assert unpack_header(pack_header({"kind": "eos", "x": 1}))["x"] == 1
    with pytest.raises(ValueError, match="kind"):
        unpack_header(pack_header([1, 2]))


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
