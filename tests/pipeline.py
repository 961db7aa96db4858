"""Running the pipeline from tests: `realtime run` as a real process, its log, its config, free ports."""
from __future__ import annotations

import re
import signal
import socket
import subprocess
import sys
import threading
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def free_port_run(count: int) -> int:
    """A port p with p .. p + count - 1 all free now."""
    for _ in range(50):
        base = free_port()
        try:
            socks = []
            for port in range(base, base + count):
                sock = socket.socket()
                socks.append(sock)
                sock.bind(("127.0.0.1", port))
            return base
        except OSError:
            continue
        finally:
            for sock in socks:
                sock.close()
    raise RuntimeError("no run of free ports")


def pipeline_config(tmp_path: Path) -> Path:
    """The repository's config with a quick status line and ipc sockets in this test's directory."""
    text = (REPO / "config.toml").read_text()
    text = re.sub(r"(?m)^status_every_s = .*$", "status_every_s = 1.0", text)
    text = re.sub(r"(?m)^hang_timeout_s = .*$", "hang_timeout_s = 3.0", text)
    text = re.sub(r'(?m)^# ipc_dir = .*$', f'ipc_dir = "{tmp_path / "ipc"}"', text)
    path = tmp_path / "config.toml"
    path.write_text(text)
    return path


class Run:
    """`python -m realtime run ...` with its log collected line by line in the background."""

    def __init__(self, *args: str, own_group: bool = False) -> None:
        self.endpoint = f"tcp://127.0.0.1:{free_port()}"
        self.proc = subprocess.Popen([sys.executable, "-m", "realtime", "run", "--headless", "--publish",
                                      self.endpoint, *args], cwd=REPO, stderr=subprocess.PIPE, text=True,
                                     start_new_session=own_group)
        self.lines: list[str] = []
        self._reader = threading.Thread(target=self._read, daemon=True)
        self._reader.start()

    def _read(self) -> None:
        for line in self.proc.stderr:
            self.lines.append(line.rstrip())

    @property
    def log(self) -> str:
        return "\n".join(self.lines)

    def pid_of(self, child: str) -> int:
        pids = re.findall(rf"started {child} pid=(\d+)", self.log)
        assert pids, f"no {child} in the log:\n{self.log}"
        return int(pids[-1])

    def stop(self, timeout: float = 30.0) -> int:
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
        rc = self.proc.wait(timeout)
        self._reader.join(5)
        return rc


def generate_keys(tmp_path: Path) -> Path:
    """`realtime keys generate` into tmp_path/keys (and a second time: refused, nothing overwritten)."""
    keys = tmp_path / "keys"
    done = subprocess.run([sys.executable, "-m", "realtime", "keys", "generate", str(keys)], cwd=REPO,
                          capture_output=True, text=True, timeout=60)
    assert done.returncode == 0, done.stderr
    assert "curve = true" in done.stdout
    again = subprocess.run([sys.executable, "-m", "realtime", "keys", "generate", str(keys)], cwd=REPO,
                           capture_output=True, text=True, timeout=60)
    assert again.returncode == 2 and "never overwritten" in again.stderr
    return keys


def curve_config(config: Path, keys: Path) -> None:
    """Turn CURVE on in ``config`` with the keys ``generate_keys`` made."""
    text = re.sub(r"(?m)^curve = false$", "curve = true", config.read_text())
    for key, value in (("secret_file", keys / "secret"), ("server_key", keys / "server.key_secret"),
                       ("client_key", keys / "pipeline.key_secret"), ("allowed_clients", keys / "allowed")):
        text = re.sub(rf"(?m)^# {key} = .*$", f'{key} = "{value}"', text)
    config.write_text(text)
