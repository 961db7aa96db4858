"""What every child process shares: start-up, signals, heartbeats and events to the supervisor.

A stage module provides ``main(child: Child, **kwargs) -> int``. Its loop calls
``child.beat(**counters)`` each iteration (rate-limited here), so a stage stuck inside a
call stops beating and the supervisor restarts it. The beat also notices a supervisor that
died without stopping its children (SIGKILL, a crash): the stage then stops as on SIGTERM,
so nothing is left running (holding the camera or the publish port) and the recording is
closed properly. SIGINT is ignored in children: Ctrl-C
reaches the whole process group, and the supervisor alone decides the shutdown order
(SIGTERM to each child, captures first).
"""
from __future__ import annotations

import importlib
import logging
import multiprocessing
import os
import signal
import sys
import threading
import time
from dataclasses import dataclass, field
from typing import Any

import msgpack
import zmq

from realtime.config import Config, from_dict
from realtime.logs import fields, setup_logging
from realtime.transport.security import CurveKeys, start_authenticator
from realtime.transport.sockets import Endpoints, make_socket

#: Exit status of a stage that must not be restarted (bad source or config): the run stops.
EXIT_FATAL = 3
#: Smallest message size limit of a CURVE socket: its handshake commands (HELLO, INITIATE with the
#: peer's metadata) go through the same limit, and only an allowed peer gets past them.
CURVE_HANDSHAKE = 1024


@dataclass
class Child:
    name: str
    config: Config
    endpoints: Endpoints
    ctx: zmq.Context
    stop: threading.Event
    restarts: int = 0
    #: The run's secret: signs and checks the people messages between stages (never sent anywhere).
    secret: bytes = b""
    _control: zmq.Socket | None = None
    _authenticator: Any = None
    _last_beat: float = 0.0
    _counters: dict[str, Any] = field(default_factory=dict)
    #: The supervisor (multiprocessing's parent, also under the forkserver), None when not started by one.
    _supervisor: Any = field(default_factory=multiprocessing.parent_process)

    @property
    def log(self) -> logging.Logger:
        return logging.getLogger(f"realtime.{self.name.split('-')[0]}")

    @property
    def beat_due(self) -> bool:
        """Whether :meth:`beat` would send now (to skip computing costly counters otherwise)."""
        return time.monotonic() - self._last_beat >= self.config.runtime.heartbeat_s

    def beat(self, force: bool = False, **counters: Any) -> None:
        """Heartbeat carrying this stage's counters and CPU seconds (all its threads); sent at most
        every ``[runtime] heartbeat_s``."""
        self._counters.update(counters)
        if force or self.beat_due:
            self._last_beat = time.monotonic()
            self._send({"kind": "beat", **self._counters, "cpu_s": time.process_time()})
            if self._supervisor is not None and not self.stop.is_set() and not self._supervisor.is_alive():
                self.log.warning("supervisor gone: stopping", extra=fields(supervisor_pid=self._supervisor.pid))
                self.stop.set()

    def socket(self, kind: int, *, bind: str | None = None, connect: str | None = None, hwm: int = 2,
               max_message: int | None = None, options: dict[int, Any] | None = None) -> zmq.Socket:
        """A stage's socket (``make_socket``), with ``options`` set before it binds or connects, and
        with ``[security] curve`` on, a tcp socket made a CURVE server (when it binds, clients checked
        by this process's ZAP authenticator) or client (when it connects)."""
        listens, connects = bool(bind and bind.startswith("tcp://")), bool(connect and connect.startswith("tcp://"))
        curve = self.config.security.curve and (listens or connects)
        if curve and max_message is not None:  # the size limit applies to CURVE's handshake commands too
            max_message = max(max_message, CURVE_HANDSHAKE)
        sock = make_socket(self.ctx, kind, hwm=hwm, max_message=max_message)
        for option, value in (options or {}).items():
            sock.setsockopt(option, value)
        if curve:
            keys = CurveKeys.from_config(self.config.security, listens=listens, connects=connects)
            assert keys is not None
            if listens:
                if self._authenticator is None:
                    self._authenticator = start_authenticator(self.ctx, keys)
                keys.serve(sock)
            else:
                keys.connect_as_client(sock)
        if bind:
            sock.bind(bind)
        if connect:
            sock.connect(connect)
        return sock

    def event(self, event: str, level: int = logging.INFO, **values: Any) -> None:
        """Log an event here and report it to the supervisor (which counts and shows it)."""
        self.log.log(level, event, extra=fields(**values))
        self._send({"kind": "event", "event": event, "level": logging.getLevelName(level).lower(), **values})

    def _send(self, message: dict[str, Any]) -> None:
        assert self._control is not None
        try:
            self._control.send(msgpack.packb({"name": self.name, "pid": os.getpid(), "t": time.time(),
                                              **message}, use_bin_type=True, default=str), zmq.NOBLOCK)
        except zmq.Again:
            pass


def child_main(role: str, name: str, config: dict[str, Any], endpoints: dict[str, Any],
               restarts: int, kwargs: dict[str, Any], secret: bytes = b"") -> None:
    """Process entry point (the multiprocessing target) for the stage module ``realtime.runtime.<role>``."""
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    stop = threading.Event()
    signal.signal(signal.SIGTERM, lambda signum, frame: stop.set())
    cfg = from_dict(config)
    setup_logging(cfg.runtime.log_format, name)
    ctx = zmq.Context()
    child = Child(name=name, config=cfg, endpoints=Endpoints.from_dict(endpoints), ctx=ctx, stop=stop,
                  restarts=restarts, secret=secret)
    child._control = make_socket(ctx, zmq.PUSH, connect=child.endpoints.control, hwm=100)
    rc = 1
    try:
        module = importlib.import_module(f"realtime.runtime.{role}")
        rc = int(module.main(child, **kwargs) or 0)
    except Exception as e:
        # Failing before the first heartbeat (a model or file that cannot be loaded) would fail
        # again on every restart: report it as fatal so the run stops with this error.
        started = child._last_beat > 0
        child.log.exception("stage failed" if started else "stage could not start")
        child.event("stage_failed", logging.ERROR, error=f"{type(e).__name__}: {e}", started=started)
        rc = 1 if started else EXIT_FATAL
    finally:
        child._control.close(linger=200)
        if child._authenticator is not None:
            child._authenticator.stop()
        ctx.destroy(linger=0)
    sys.exit(rc)
