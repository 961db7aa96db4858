"""``realtime run``: start the pipeline's processes, watch them, restart failures, shut down in order.

Processes (each a separate OS process): one capture per source, one inference (the 2D
backend), ``[runtime] workers`` lifting workers, one tracker/publisher (which also records).
Children come from a multiprocessing *forkserver* that has already imported the heavy
libraries (numpy, OpenCV, ONNX Runtime, our stages), so a crashed child is back in well under
a second instead of paying a fresh interpreter's imports. Each child sends heartbeats with its
counters; the supervisor restarts a child that exits unexpectedly or stops beating for
``hang_timeout_s``, prints the status line, and on Ctrl-C/SIGTERM stops the captures first,
lets the last frames drain to the publisher (which closes the recording), then stops the rest.
"""
from __future__ import annotations

import argparse
import logging
import multiprocessing
import os
import shutil
import signal
import sys
import time
from dataclasses import asdict, dataclass, field
from multiprocessing.process import BaseProcess
from typing import Any

import msgpack
import zmq

from realtime.config import Config, ConfigError, load_config
from realtime.runtime.child import EXIT_FATAL, child_main
from realtime.logs import fields, setup_logging
from realtime.transport.security import CurveKeys, SecurityError, run_secret
from realtime.transport.sockets import MAX_CONTROL, Endpoints, make_socket

log = logging.getLogger("realtime.supervisor")

#: Imported once in the forkserver so that children (and restarts) start fast.
PRELOAD = ["numpy", "cv2", "zmq", "msgpack", "scipy.optimize", "onnxruntime", "mcap.writer",
           "realtime.runtime.child", "realtime.runtime.capture", "realtime.runtime.inference",
           "realtime.runtime.lifting", "realtime.runtime.publisher",
           "realtime.pose2d", "realtime.lifting", "realtime.tracking"]
#: A child that has not sent its first heartbeat after this long is restarted (model loading included).
STARTUP_TIMEOUT_S = 60.0
#: How long the publisher may take to drain and close after the captures stopped.
DRAIN_TIMEOUT_S = 10.0
#: Events shown as counts on the status line.
_COUNTED_EVENTS = ("source_down", "reconnected", "source_gave_up", "stage_failed")
#: What ``--stages`` may name: the roles of the children.
STAGES = ("capture", "inference", "lifting", "publisher")
#: Give up (exit 1) when one child needs more restarts than this within RESTART_WINDOW_S.
MAX_RESTARTS = 5
RESTART_WINDOW_S = 60.0


@dataclass
class ChildState:
    name: str
    role: str
    kwargs: dict[str, Any]
    process: BaseProcess | None = None
    restarts: int = 0
    started: float = 0.0
    last_beat: float | None = None
    counters: dict[str, Any] = field(default_factory=dict)
    finished: bool = False
    restart_times: list[float] = field(default_factory=list)


def add_arguments(p: argparse.ArgumentParser) -> None:
    p.add_argument("--source", action="append", metavar="SRC",
                   help="video file, webcam:N, rtsp://..., http://... or 'demo' (repeat for several sources; "
                        "default: [source] uri)")
    p.add_argument("--config", metavar="TOML", help="config file (default: config.toml of the repository)")
    p.add_argument("--record", metavar="PATH.mcap",
                   help="record the published stream to this MCAP file; strftime fields are filled in at the start "
                        "(e.g. session-%%Y%%m%%d-%%H%%M%%S.mcap). An existing file is never overwritten "
                        "without --overwrite")
    p.add_argument("--overwrite", action="store_true", help="let --record replace an existing file")
    p.add_argument("--backend", help="2D backend: auto, tensorrt, torch or onnxruntime")
    p.add_argument("--model", help="2D keypoint network (see [pose2d] model; realtime models list)")
    p.add_argument("--detector", help="person detector (see [pose2d] detector; realtime models list)")
    p.add_argument("--workers", type=int, help="number of lifting worker processes")
    p.add_argument("--camera-pitch", type=float, metavar="DEG",
                   help="known downward camera pitch in degrees (see [lifting] camera_pitch_deg)")
    p.add_argument("--max-frames", type=_positive_int, default=0, metavar="N",
                   help="stop after N processed frames per source (N >= 1)")
    p.add_argument("--loop", action="store_true", help="restart file sources at their end")
    p.add_argument("--no-pace", action="store_true",
                   help="decode files as fast as the pipeline takes them instead of at their frame rate")
    p.add_argument("--publish", metavar="ENDPOINT", help="ZeroMQ PUB endpoint (default: [transport] publish)")
    p.add_argument("--log-format", choices=("text", "json"), help="log lines as text or JSON")
    p.add_argument("--stages", metavar="LIST", default=",".join(STAGES),
                   help="comma-separated stages to run here (default: all). With [transport] scheme = \"tcp\", "
                        "'--stages lifting' adds lifting workers on another machine to a pipeline running at "
                        "[transport] host (docs/runtime.md)")
    p.add_argument("--view", nargs="?", type=int, const=0, metavar="PORT",
                   help="serve the browser viewer on [viewer] bind, PORT or [viewer] port, with camera "
                        "previews on (realtime view; docs/viewer.md)")
    p.add_argument("--headless", action="store_true",
                   help="status only as log lines (default on a terminal: one live status line)")


def _positive_int(text: str) -> int:
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected a whole number, got {text!r}") from None
    if value < 1:
        raise argparse.ArgumentTypeError(f"must be at least 1, got {value}")
    return value


def config_from_args(args: argparse.Namespace) -> Config:
    """The config file with command-line overrides, each validated like the file (Config.replace)."""
    cfg = load_config(args.config)
    overrides: dict[str, dict[str, Any]] = {
        "source": {"uri": args.source[0] if args.source else None, "loop": True if args.loop else None,
                   "realtime": False if args.no_pace else None},
        "pose2d": {"backend": args.backend, "model": args.model, "detector": args.detector},
        "runtime": {"workers": args.workers, "log_format": args.log_format},
        "lifting": {"camera_pitch_deg": args.camera_pitch},
        "record": {"path": args.record},
        "transport": {"publish": args.publish},
        "viewer": {"port": args.view or None, "preview": True if args.view is not None else None},
    }
    for section, values in overrides.items():
        values = {k: v for k, v in values.items() if v is not None}
        if values:
            cfg = cfg.replace(section, **values)
    return cfg


def run(args: argparse.Namespace) -> int:
    try:
        cfg = config_from_args(args)
    except ConfigError as e:
        print(f"realtime run: {e}", file=sys.stderr)
        return 2
    setup_logging(cfg.runtime.log_format, "supervisor")
    stages = tuple(s.strip() for s in args.stages.split(",") if s.strip())
    unknown = [s for s in stages if s not in STAGES]
    if unknown or not stages:
        print(f"realtime run: --stages: unknown stage {unknown[0]!r}; choose from {', '.join(STAGES)}"
              if unknown else "realtime run: --stages: name at least one stage", file=sys.stderr)
        return 2
    if set(stages) != set(STAGES) and cfg.transport.scheme != "tcp":
        print("realtime run: --stages: running only some stages needs [transport] scheme = \"tcp\" "
              "(the others run on another machine)", file=sys.stderr)
        return 2
    if set(stages) != set(STAGES) and not cfg.security.secret_file:
        print("realtime run: --stages: stages split across runs need one shared [security] secret_file "
              "(`realtime keys generate DIR` writes one) so they can trust each other's messages", file=sys.stderr)
        return 2
    try:
        secret = run_secret(cfg.security)
        listens = bool({"capture", "inference", "publisher"} & set(stages))
        connects = cfg.transport.scheme == "tcp" and bool({"inference", "lifting"} & set(stages))
        connects |= args.view is not None and cfg.transport.publish.startswith("tcp://")  # the viewer subscribes
        CurveKeys.from_config(cfg.security, listens=listens, connects=connects)
    except SecurityError as e:
        print(f"realtime run: {e}", file=sys.stderr)
        return 2
    if cfg.record.path and "publisher" in stages:
        try:
            cfg = cfg.replace("record", path=_record_path(cfg.record.path, args.overwrite))
        except ValueError as e:
            print(f"realtime run: --record: {e}", file=sys.stderr)
            return 2
    if {"lifting", "publisher"} & set(stages) or cfg.pose2d.refine_3d:
        from realtime.lifting import LiftingSetup, PriorError
        try:  # the pose prior every lifting part will load: one clear error now, not a child failing later
            LiftingSetup.from_config(cfg.lifting)
        except PriorError as e:
            print(f"realtime run: {e}", file=sys.stderr)
            return 2
    uris = args.source or [cfg.source.uri]
    if "capture" in stages:
        try:
            _check_sources(cfg, uris)
        except Exception as e:  # SourceError: say which source and why, then stop
            log.error("%s", e)
            return 2
    view = None
    if args.view is not None:  # the viewer's socket now: a port in use is one line, before anything starts
        from realtime.viewer.server import listen, page_url

        try:
            view = listen(cfg.viewer.bind, cfg.viewer.port)
        except OSError as e:
            print(f"realtime run: --view: cannot listen on {cfg.viewer.bind}:{cfg.viewer.port}: {e.strerror or e} "
                  "(give another port: --view PORT)", file=sys.stderr)
            return 2
        print(f"viewer: open {page_url(cfg.viewer.bind, cfg.viewer.port)} in a browser", file=sys.stderr, flush=True)
    live = sys.stderr.isatty() and not args.headless
    try:
        supervisor = Supervisor(cfg, uris, max_frames=args.max_frames, live_status=live, stages=stages, secret=secret,
                                view=view)
    except OSError as e:  # the ipc directory cannot be made or written
        print(f"realtime run: [transport] ipc_dir: {e}", file=sys.stderr)
        return 2
    return supervisor.run()


def _record_path(path: str, overwrite: bool) -> str:
    """``--record`` with its strftime fields filled in and its directory made; an existing file (or the
    parts an earlier run left, which hold its data) is refused unless ``overwrite``."""
    from pathlib import Path

    from realtime.record import part_path

    p = Path(time.strftime(path) if "%" in path else path).expanduser()
    if not overwrite:
        if p.exists():
            raise ValueError(f"{p} exists; choose another name (a date in it: session-%Y%m%d-%H%M%S.mcap) "
                             "or pass --overwrite")
        stale = [q for q in (part_path(p, r) for r in range(1, 100)) if q.exists()]
        if stale:
            raise ValueError(f"{stale[0]} exists: the parts of an earlier run's recording (`realtime record join "
                             f"{p} {len(stale)}` joins them); choose another name or pass --overwrite")
    try:  # a new directory is made, as for the recording's own parts
        p.parent.mkdir(parents=True, exist_ok=True)
    except OSError as e:
        raise ValueError(f"{p.parent}: cannot make the directory ({e.strerror})") from None
    if not os.access(p.parent, os.W_OK):
        raise ValueError(f"{p.parent}: not writable")
    return str(p)


def _check_sources(cfg: Config, uris: list[str]) -> None:
    """Fail fast, before any process starts, on a file source that is missing or not a video, and on
    a webcam that is malformed or cannot be opened (network sources are retried, so not checked)."""
    from realtime.capture import VideoSource, resolve_uri, source_kind
    from realtime.capture.source import check_webcam

    for uri in uris:
        kind = source_kind(resolve_uri(uri))
        if kind == "file":
            VideoSource(uri, realtime=False).close()
        elif kind == "webcam":
            check_webcam(resolve_uri(uri))


class Supervisor:
    def __init__(self, cfg: Config, uris: list[str], max_frames: int = 0, live_status: bool = False,
                 stages: tuple[str, ...] = STAGES, secret: bytes | None = None, view: Any = None) -> None:
        """``secret``: the run's message secret (None = ``[security]``'s: its file, or a random one);
        ``view``: the browser viewer's listening socket, when it is to be served (``--view``)."""
        self.cfg = cfg
        self.secret = secret if secret is not None else run_secret(cfg.security)
        self.view = view
        self.stages = stages
        self.uris = uris
        self.names = [cfg.source.name if cfg.source.name and len(uris) == 1 else f"cam{i}" for i in range(len(uris))]
        self.max_frames = max_frames
        unmatched = [c.name for c in cfg.camera if c.name not in self.names]
        if "capture" in stages and unmatched:
            log.warning("[[camera]] %s matches no source (sources: %s)", unmatched[0], ", ".join(self.names))
        self.live_status = live_status
        self.endpoints = Endpoints.from_config(cfg.transport, len(uris))
        for var in ("OMP_NUM_THREADS", "OPENBLAS_NUM_THREADS", "MKL_NUM_THREADS"):
            # Parallelism is by process (one per stage, N workers): BLAS thread pools in every child
            # would only oversubscribe the cores. Set before the forkserver starts, so children inherit it.
            os.environ.setdefault(var, "1")
        self.mp = multiprocessing.get_context("forkserver")
        torch = "inference" in stages and _wants_torch(cfg.pose2d.backend)
        self.mp.set_forkserver_preload(PRELOAD + (["torch"] if torch else []))
        self.children: dict[str, ChildState] = {}
        self._stopping = False
        self._failed = False
        self._status_t = time.monotonic()
        self._status_counts: dict[str, int] = {}
        self._status_cpu: dict[str, float] = {}
        self._events: dict[str, int] = {}
        self._sources_done_at: float | None = None

    # ---- children
    @property
    def _publisher(self) -> ChildState | None:
        return self.children.get("publisher")

    def _plan(self) -> None:
        if self.view is not None:
            from realtime.viewer.server import connect_endpoint, page_url

            self._add("viewer", "viewer", listen=self.view, connect=connect_endpoint(self.endpoints.publish),
                      url=page_url(self.cfg.viewer.bind, self.cfg.viewer.port))
        if "publisher" in self.stages:
            # the run's track-id counter lives beside its sockets: ids stay unique across publisher restarts
            self._add("publisher", "publisher", sources=self.names, record_path=self.cfg.record.path or "",
                      ids_path=os.path.join(self.endpoints.ipc_dir, "track_ids"))
        if "lifting" in self.stages:
            for i in range(self.cfg.runtime.workers):
                self._add(f"lift-{i}", "lifting")
        if "inference" in self.stages:
            self._add("inference", "inference", sources=self.names)
        if "capture" in self.stages:
            for i, (uri, name) in enumerate(zip(self.uris, self.names)):
                self._add(f"capture-{i}", "capture", uri=uri, index=i, source_name=name,
                          max_frames=self.max_frames)

    def _add(self, name: str, role: str, **kwargs: Any) -> None:
        self.children[name] = ChildState(name=name, role=role, kwargs=kwargs)

    def _start(self, c: ChildState) -> None:
        cfg = self.cfg
        kwargs = dict(c.kwargs)
        if c.role == "capture":
            cfg = cfg.replace("source", uri=kwargs.pop("uri"))
            if c.counters:  # resume where the crashed capture was, and count frames across restarts
                kwargs["start_seq"] = int(c.counters.get("seq", 0))
                if not _is_file(cfg.source.uri):  # a live source moves on: number past what it may have sent
                    kwargs["start_seq"] += int(60 * cfg.runtime.heartbeat_s) + 1
                kwargs["sent_before"] = int(c.counters.get("sent", 0))
                kwargs["dropped_before"] = int(c.counters.get("dropped", 0))
        config = asdict(cfg)
        c.process = self.mp.Process(target=child_main, name=c.name, daemon=False,
                                    args=(c.role, c.name, config, self.endpoints.to_dict(), c.restarts, kwargs,
                                          self.secret))
        c.process.start()
        c.started = time.monotonic()
        c.last_beat = None
        log.info("started %s", c.name, extra=fields(pid=c.process.pid, restarts=c.restarts))

    def _restart(self, c: ChildState, why: str) -> None:
        if self._stopping:  # a signal to the whole process group (e.g. `timeout`) ends children too
            log.info("%s ended during shutdown", c.name, extra=fields(reason=why))
            c.finished = True
            return
        now = time.monotonic()
        c.restart_times = [t for t in c.restart_times if now - t < RESTART_WINDOW_S] + [now]
        if len(c.restart_times) > MAX_RESTARTS:
            log.error("%s failed %d times in %.0f s: giving up", c.name, len(c.restart_times), RESTART_WINDOW_S,
                      extra=fields(reason=why))
            self._failed = True
            self._stopping = True
            return
        log.warning("restarting %s", c.name, extra=fields(reason=why, restarts=c.restarts + 1))
        if c.process is not None and c.process.is_alive():
            c.process.kill()
            c.process.join(2.0)
        c.restarts += 1
        self._start(c)

    # ---- main loop
    def run(self) -> int:
        ctx = zmq.Context()
        control = make_socket(ctx, zmq.PULL, bind=self.endpoints.control, hwm=1000, max_message=MAX_CONTROL)
        previous = {s: signal.signal(s, self._on_signal) for s in (signal.SIGINT, signal.SIGTERM)}
        self._plan()
        log.info("run starting", extra=fields(stages=",".join(self.stages),
                                               sources=",".join(self.uris) if "capture" in self.stages else "-",
                                               workers=self.cfg.runtime.workers,
                                               publish=self.endpoints.publish,
                                               record=self.cfg.record.path or "-",
                                               backend=self.cfg.pose2d.backend))
        try:
            for c in self.children.values():
                self._start(c)
            while not self._stopping:
                self._receive(control, 100)
                self._watch()
                self._status()
                if self._publisher is not None and self._publisher.finished:
                    log.info("end of stream: all frames published")
                    break
                if self._sources_done_too_long():
                    log.warning("sources ended but the end of stream never reached the publisher: stopping")
                    break
            self._shutdown(control)
        finally:
            for s, h in previous.items():
                signal.signal(s, h)
            control.close()
            ctx.destroy(linger=0)
            if self.endpoints.ipc_dir and not self.cfg.transport.ipc_dir:
                _remove_ipc_dir(self.endpoints.ipc_dir)
            if self.view is not None:
                self.view.close()
        self._status(force=True)
        if self.live_status:
            print(file=sys.stderr)
        return 1 if self._failed else 0

    def _sources_done_too_long(self) -> bool:
        """All captures ended more than DRAIN_TIMEOUT_S ago (their end-of-stream was lost in a restart)."""
        captures = [c for c in self.children.values() if c.role == "capture"]
        if not captures or not all(c.finished for c in captures):
            return False
        self._sources_done_at = self._sources_done_at or time.monotonic()
        return time.monotonic() - self._sources_done_at > DRAIN_TIMEOUT_S

    def _on_signal(self, signum: int, frame: Any) -> None:
        if self._stopping:
            return
        log.info("%s: shutting down", signal.Signals(signum).name)
        self._stopping = True

    def _receive(self, control: zmq.Socket, timeout_ms: int) -> None:
        if not control.poll(timeout_ms):
            return
        while control.poll(0):
            try:
                m = msgpack.unpackb(control.recv(), raw=False)
                c = self.children.get(m.get("name"))
            except Exception:
                continue
            if c is None or c.process is None or m.get("pid") != c.process.pid:
                continue  # from a process that has since been replaced
            c.last_beat = time.monotonic()
            if m.get("kind") == "beat":
                c.counters.update({k: v for k, v in m.items() if k not in ("kind", "name", "pid", "t")})
            elif m.get("kind") == "event":
                self._events[m["event"]] = self._events.get(m["event"], 0) + 1
                if m["event"] == "end_of_stream":
                    c.finished = True

    def _watch(self) -> None:
        now = time.monotonic()
        for c in self.children.values():
            p = c.process
            if p is None or c.finished:
                continue
            if p.exitcode is not None:
                if p.exitcode == 0:
                    c.finished = True
                    log.info("%s finished", c.name)
                elif p.exitcode == EXIT_FATAL:
                    log.error("%s cannot continue (see its error above): stopping the run", c.name)
                    self._failed = True
                    self._stopping = True
                else:
                    self._restart(c, _exit_reason(p.exitcode))
            elif c.last_beat is None and now - c.started > STARTUP_TIMEOUT_S:
                self._restart(c, f"no heartbeat {STARTUP_TIMEOUT_S:.0f} s after start")
            elif c.last_beat is not None and now - c.last_beat > self.cfg.runtime.hang_timeout_s:
                self._restart(c, f"hung: no heartbeat for {now - c.last_beat:.1f} s")

    def _shutdown(self, control: zmq.Socket) -> None:
        """Captures first (they send end-of-stream downstream), then drain, then everyone else."""
        captures = [c for c in self.children.values() if c.role == "capture"]
        for c in captures:
            _terminate(c)
        publisher = self._publisher
        deadline = time.monotonic() + DRAIN_TIMEOUT_S
        while (captures and publisher is not None and time.monotonic() < deadline
               and publisher.process is not None and publisher.process.is_alive()):
            self._receive(control, 100)
            if publisher.finished:
                break
        order = ["viewer", "inference"] + [n for n in self.children if n.startswith("lift-")] + ["publisher"]
        for name in order:
            if name in self.children:
                _terminate(self.children[name])
        for c in self.children.values():
            if c.process is not None:
                c.process.join(5.0)
                if c.process.is_alive():
                    log.warning("%s did not stop: killing it", c.name)
                    c.process.kill()
                    c.process.join(1.0)
        while control.poll(100):  # the last heartbeats, with final counters (sent as each child stopped)
            self._receive(control, 0)
        self._join_recording()
        log.info("stopped", extra=fields(published=self._publisher.counters.get("published", 0)
                                         if self._publisher is not None else "-"))

    def _join_recording(self) -> None:
        """After publisher restarts the recording is in parts: join them into the file asked for."""
        if self._publisher is None:
            return
        restarts, path = self._publisher.restarts, self.cfg.record.path
        if not path or not restarts:
            return
        from realtime.record import join_parts

        t0 = time.monotonic()
        try:
            joined = join_parts(path, restarts)
        except Exception as e:  # the parts stay as they are, each readable on its own
            log.error("could not join the recording's parts: they stay beside it",
                      extra=fields(path=path, error=f"{type(e).__name__}: {e}"))
            return
        log.info("recording joined", extra=fields(path=path, parts=joined.parts, messages=joined.messages,
                                                  unreadable_parts=len(joined.skipped),
                                                  seconds=round(time.monotonic() - t0, 2)))

    # ---- status line
    def _status(self, force: bool = False) -> None:
        every = self.cfg.runtime.status_every_s
        if self.live_status and every > 0:  # a log line may have replaced it: redraw it soon
            every = min(every, 1.0)
        now = time.monotonic()
        if not force and (every <= 0 or now - self._status_t < every):
            return
        dt = max(now - self._status_t, 1e-6)
        self._status_t = now
        counted = {"capture": "sent", "inference": "frames", "lifting": "frames", "publisher": "published"}
        stage_of = {"capture": "capture", "inference": "pose2d", "lifting": "lift", "publisher": "publish"}
        fps = {stage_of[role]: 0.0 for role in STAGES if role in self.stages}
        cpu = dict.fromkeys(fps, 0.0)
        for c in self.children.values():
            if c.role not in counted:  # the viewer: not a stage of the stream
                continue
            count = c.counters.get(counted[c.role], 0)
            before = self._status_counts.get(c.name, 0)
            stage = stage_of[c.role]
            fps[stage] += (count - before if count >= before else count) / dt  # a restart resets counters
            self._status_counts[c.name] = count
            used, before_s = c.counters.get("cpu_s", 0.0), self._status_cpu.get(c.name, 0.0)
            cpu[stage] += 100.0 * (used - before_s if used >= before_s else used) / dt
            self._status_cpu[c.name] = used
        pub = self._publisher.counters if self._publisher is not None else {}
        total = pub.get("latency", {}).get("total", {})
        people = pub.get("people", 0) / max(pub.get("published", 0), 1)
        drops = sum(c.counters.get("dropped", 0) for c in self.children.values()) + pub.get("lost", 0)
        line = "fps " + " ".join(f"{k}={v:.1f}" for k, v in fps.items())
        if self._publisher is not None:
            line += (f" | latency p50={total.get('p50', float('nan')):.0f}ms p95={total.get('p95', float('nan')):.0f}ms"
                     f" | people/frame={people:.1f}")
        found = sum(c.counters.get("people", 0) for c in self.children.values() if c.role == "inference")
        lifted = sum(c.counters.get("lifted", 0) for c in self.children.values() if c.role in ("inference", "lifting"))
        if found:  # each person is lifted once: by the 2D stage's 3D feedback, or else by a worker
            line += f" | lifts/person={lifted / found:.2f}"
        line += (f" | dropped={drops}"
                 + " | cpu% " + " ".join(f"{k}={v:.0f}" for k, v in cpu.items())
                 + f" | restarts={sum(c.restarts for c in self.children.values())}"
                 + "".join(f" | {e}={n}" for e, n in sorted(self._events.items()) if e in _COUNTED_EVENTS))
        if self.live_status:  # one terminal line, redrawn in place: the essentials, cut to the width
            short = " | ".join(p for p in (
                f"{fps.get('publish', 0.0):.1f} fps" + (f" (2D {fps['pose2d']:.1f})" if "pose2d" in fps else ""),
                f"p95 {total['p95']:.0f} ms" if self._publisher is not None and "p95" in total else "",
                f"{people:.1f} people" if self._publisher is not None else "",
                f"dropped {drops}", f"restarts {sum(c.restarts for c in self.children.values())}",
                *(f"{e} {n}" for e, n in sorted(self._events.items()) if e in _COUNTED_EVENTS)) if p)
            width = shutil.get_terminal_size((80, 24)).columns - 1
            print("\r\033[K" + short[:width], end="", file=sys.stderr, flush=True)
        elif self.cfg.runtime.log_format == "json":  # the same numbers as fields, for log processors
            log.info("status %s", line, extra=fields(fps={k: round(v, 2) for k, v in fps.items()},
                                                     cpu_percent={k: round(v) for k, v in cpu.items()},
                                                     latency_ms=pub.get("latency", {}), dropped=drops))
        else:
            log.info("status %s", line)


def _is_file(uri: str) -> bool:
    from realtime.capture import resolve_uri, source_kind

    return source_kind(resolve_uri(uri)) == "file"


def _wants_torch(backend: str) -> bool:
    """Whether the 2D stage will import torch (then the forkserver imports it once for every restart);
    ``auto`` on a box without an NVIDIA device never does."""
    from realtime.pose2d.backends import may_have_gpu

    return backend in ("torch", "tensorrt") or (backend == "auto" and may_have_gpu())


def _terminate(c: ChildState) -> None:
    if c.process is not None and c.process.is_alive():
        c.process.terminate()


def _exit_reason(code: int) -> str:
    if code < 0:
        return f"killed by {signal.Signals(-code).name}"
    return f"exited with status {code}"


def _remove_ipc_dir(path: str) -> None:
    for name in os.listdir(path):
        try:
            os.unlink(os.path.join(path, name))
        except OSError:
            pass
    try:
        os.rmdir(path)
    except OSError:
        pass
