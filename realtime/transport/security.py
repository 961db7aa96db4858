"""Who may talk to the pipeline's sockets: the run's message secret and optional CURVE encryption.

Two layers (the threat model is in docs/protocol.md, "Security"):

* **The run's secret** signs the people messages between stages (``messages.SIGNED_BY_*``): random
  for each ``realtime run`` (never written anywhere), or read from ``[security] secret_file`` when
  stages run under several ``realtime run`` commands (``--stages``), which must share it.
* **CURVE** (``[security] curve = true``): every tcp socket is encrypted and only clients whose public
  key is in ``[security] allowed_clients`` may connect (ZeroMQ's ZAP, run by pyzmq's
  ``ThreadAuthenticator`` in each process that listens). The listening side holds the server's
  secret key (``server_key``); every connecting side, our own stages on other machines and the
  consumers (``realtime.client.Subscriber``, ``realtime vmc``, the Blender add-on), its own client
  key pair and the server's public key. ``realtime keys generate DIR`` makes all of them.

ipc sockets stay as they are: they are files in the run's own directory (mode 0700).
"""
from __future__ import annotations

import os
import secrets
import shutil
import stat
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

import zmq

if TYPE_CHECKING:
    from realtime.config import SecurityConfig

#: Bytes of the run's secret.
SECRET_BYTES = 32


class SecurityError(ValueError):
    """A key or secret cannot be used; the message names the file and the config key."""


def load_secret(path: str | Path, key: str = "[security] secret_file") -> bytes:
    """The shared secret in ``path`` (hex, as ``realtime keys generate`` writes it)."""
    p = Path(path).expanduser()
    try:
        text = p.read_text().strip()
    except OSError as e:
        raise SecurityError(f"{key}: cannot read {p}: {e.strerror or e}") from None
    try:
        secret = bytes.fromhex(text)
    except ValueError:
        raise SecurityError(f"{key}: {p} is not a hex secret (make one with `realtime keys generate`)") from None
    if len(secret) < 16:
        raise SecurityError(f"{key}: {p} holds {len(secret)} bytes; at least 16 are needed")
    return secret


def run_secret(config: "SecurityConfig") -> bytes:
    """The secret of this run: ``secret_file``'s, or a fresh random one."""
    return load_secret(config.secret_file) if config.secret_file else secrets.token_bytes(SECRET_BYTES)


@dataclass(frozen=True)
class CurveKeys:
    """The key material one process needs: the server's key pair (the secret part only where the
    process listens), and the key pair it connects with."""

    server_public: bytes
    server_secret: bytes | None
    client_public: bytes | None
    client_secret: bytes | None
    allowed_clients: Path | None

    @classmethod
    def from_config(cls, config: "SecurityConfig", listens: bool, connects: bool) -> "CurveKeys | None":
        """None when CURVE is off. ``listens``/``connects``: whether this process binds / connects tcp
        sockets, so only the keys it needs are required (each missing one is named)."""
        if not config.curve:
            return None
        if not config.server_key:
            raise SecurityError("[security] server_key: needed with curve = true (realtime keys generate)")
        server_public, server_secret = _certificate(config.server_key, "[security] server_key")
        client_public = client_secret = None
        allowed = None
        if listens:
            if server_secret is None:
                raise SecurityError(f"[security] server_key: {config.server_key} has no secret key; the machine "
                                    "that listens needs the .key_secret file")
            if not config.allowed_clients:
                raise SecurityError("[security] allowed_clients: needed with curve = true")
            allowed = Path(config.allowed_clients).expanduser()
            if not allowed.is_dir():
                raise SecurityError(f"[security] allowed_clients: {allowed} is not a directory of public keys")
        if connects:
            if not config.client_key:
                raise SecurityError("[security] client_key: needed with curve = true (realtime keys generate)")
            client_public, client_secret = _certificate(config.client_key, "[security] client_key")
            if client_secret is None:
                raise SecurityError(f"[security] client_key: {config.client_key} has no secret key "
                                    "(give the .key_secret file)")
        return cls(server_public, server_secret, client_public, client_secret, allowed)

    def serve(self, sock: zmq.Socket) -> None:
        """Make ``sock`` (before it binds) a CURVE server: encrypted, clients checked by ZAP."""
        assert self.server_secret is not None
        sock.curve_secretkey = self.server_secret
        sock.curve_publickey = self.server_public
        sock.curve_server = True

    def connect_as_client(self, sock: zmq.Socket) -> None:
        """Make ``sock`` (before it connects) a CURVE client of the server."""
        assert self.client_public is not None and self.client_secret is not None
        sock.curve_secretkey = self.client_secret
        sock.curve_publickey = self.client_public
        sock.curve_serverkey = self.server_public


def start_authenticator(ctx: zmq.Context, keys: CurveKeys):
    """pyzmq's ZAP handler for ``ctx``: only clients whose public key is in ``allowed_clients`` get in.
    Returns the authenticator (``stop()`` it before the context is destroyed)."""
    from zmq.auth.thread import ThreadAuthenticator

    auth = ThreadAuthenticator(ctx)
    auth.start()
    auth.configure_curve(domain="*", location=str(keys.allowed_clients))
    return auth


def optional_client_keys(server_key: str | Path | None, client_key: str | Path | None) -> CurveKeys | None:
    """:func:`client_keys` from a consumer command's ``--server-key``/``--client-key`` (``realtime vmc``,
    ``realtime view``): None when neither is given, an error naming both when only one is."""
    if not server_key and not client_key:
        return None
    if not (server_key and client_key):
        raise SecurityError("--server-key and --client-key go together (a CURVE publisher needs both)")
    return client_keys(server_key, client_key)


def stage_client_keys(config: "SecurityConfig", endpoint: str) -> CurveKeys | None:
    """Keys one of the pipeline's own processes subscribes to ``endpoint`` with: the config's
    ``client_key`` when ``[security] curve`` is on and the endpoint is tcp (ipc is never CURVE), else None."""
    return CurveKeys.from_config(config, listens=False, connects=True) if endpoint.startswith("tcp://") else None


def client_keys(server_key: str | Path, client_key: str | Path) -> CurveKeys:
    """Keys for a consumer connecting to a CURVE publisher (``Subscriber(curve=...)``, ``realtime vmc``)."""
    server_public, _ = _certificate(server_key, "server key")
    client_public, client_secret = _certificate(client_key, "client key")
    if client_secret is None:
        raise SecurityError(f"client key: {client_key} has no secret key (give the .key_secret file)")
    return CurveKeys(server_public, None, client_public, client_secret, None)


def _certificate(path: str | Path, key: str) -> tuple[bytes, bytes | None]:
    import zmq.auth

    p = Path(path).expanduser()
    if not p.is_file():
        raise SecurityError(f"{key}: {p}: no such key file")
    try:
        public, secret = zmq.auth.load_certificate(str(p))
    except (ValueError, OSError) as e:
        raise SecurityError(f"{key}: {p} is not a ZeroMQ certificate ({e})") from None
    return public, secret


def generate(directory: str | Path, clients: tuple[str, ...] = ("pipeline", "consumer")) -> dict[str, Path]:
    """Everything a CURVE deployment needs, in ``directory`` (created, mode 0700):
    ``secret`` (the run secret), ``server.key`` / ``server.key_secret``, one key pair per client name
    (``pipeline``: our own stages that connect from other machines; ``consumer``: subscribers), and
    ``allowed/`` with the clients' public keys. Existing files are never overwritten."""
    import zmq.auth

    d = Path(directory).expanduser()
    names = ["secret", "server.key", "server.key_secret", *(f"{c}.key{s}" for c in clients for s in ("", "_secret"))]
    existing = [n for n in names if (d / n).exists()]
    if existing:
        raise SecurityError(f"{d / existing[0]} already exists: keys are never overwritten (choose another directory)")
    d.mkdir(parents=True, exist_ok=True)
    os.chmod(d, stat.S_IRWXU)
    allowed = d / "allowed"
    allowed.mkdir(exist_ok=True)
    for name in ("server", *clients):
        zmq.auth.create_certificates(str(d), name)
    for c in clients:
        shutil.copy(d / f"{c}.key", allowed / f"{c}.key")
    secret = d / "secret"
    fd = os.open(secret, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    with os.fdopen(fd, "w") as f:
        f.write(secrets.token_hex(SECRET_BYTES) + "\n")
    for name in names:
        if name.endswith("_secret"):
            os.chmod(d / name, stat.S_IRUSR | stat.S_IWUSR)
    return {"directory": d, "secret": secret, "server": d / "server.key_secret", "allowed": allowed,
            **{c: d / f"{c}.key_secret" for c in clients}}


# -- realtime keys ------------------------------------------------------------------------------------------

def add_arguments(p) -> None:
    p.add_argument("action", choices=("generate",), help="generate: the run secret and CURVE key pairs")
    p.add_argument("directory", help="where to write them (created; existing keys are never overwritten)")


def run(args) -> int:
    import sys

    try:
        made = generate(args.directory)
    except (SecurityError, OSError) as e:
        print(f"error: {e}", file=sys.stderr)
        return 2
    d = made["directory"]
    print(f"""wrote {d}: secret, server.key[_secret], pipeline.key[_secret], consumer.key[_secret], allowed/

config.toml on the machine that runs capture, inference and the publisher:
  [security]
  curve = true
  secret_file = "{made['secret']}"
  server_key = "{made['server']}"
  client_key = "{made['pipeline']}"
  allowed_clients = "{made['allowed']}"
On a machine adding lifting workers: the same, with a copy of secret, server.key (public only) and
pipeline.key_secret. Consumers: server.key and consumer.key_secret, e.g.
  realtime vmc --connect tcp://HOST:5560 --server-key {d / 'server.key'} --client-key {made['consumer']}
Another consumer: `realtime keys generate` elsewhere is not needed; copy its public key into allowed/.""")
    return 0
