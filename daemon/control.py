"""The daemon's one local unix socket, where the CLI reaches the API while a daemon owns the stores.

Commands try the socket first; with no daemon (or a stale socket left by a killed one) they take the
home's lock and open the stores themselves, so the user sees the same results either way.
"""

from __future__ import annotations

import fcntl
import http.client
import json
import logging
import os
import secrets
import socket
import struct
import threading
import time
from pathlib import Path
from typing import Any

log = logging.getLogger(__name__)

SOCKET_NAME = "skilld.sock"
LOCK_NAME = "skilld.lock"
TOKEN_NAME = "api.token"


class DaemonError(Exception):
    """The daemon answered a request with an error; its message is the daemon's one-line reason."""


def load_token(home: Path) -> str:
    """The API's bearer token, created with mode 0600 on first use."""
    path = home / TOKEN_NAME
    if path.exists():
        token = path.read_text().strip()
        if token:
            path.chmod(0o600)
            return token
        path.unlink()
    token = secrets.token_urlsafe(32)
    with os.fdopen(os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600), "w") as handle:
        handle.write(token + "\n")
    return token


class _UnixConnection(http.client.HTTPConnection):
    def __init__(self, path: Path, timeout: float) -> None:
        super().__init__("localhost", timeout=timeout)
        self.socket_path = path

    def connect(self) -> None:
        sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        sock.settimeout(self.timeout)
        sock.connect(str(self.socket_path))
        self.sock = sock


def call(home: Path, command: str, payload: dict[str, Any] | None = None, timeout: float = 3600) -> Any:
    """Ask the running daemon to do a command; raise ConnectionError when no daemon answers."""
    path = home / SOCKET_NAME
    if not path.exists():
        raise ConnectionError("no daemon socket")
    conn = _UnixConnection(path, timeout)
    try:
        body = json.dumps(payload or {})
        headers = {"Content-Type": "application/json", "Authorization": f"Bearer {load_token(home)}"}
        try:
            conn.request("POST", f"/v1/commands/{command}", body=body, headers=headers)
        except (FileNotFoundError, ConnectionRefusedError) as exc:
            raise ConnectionError(str(exc)) from None
        response = conn.getresponse()
        data = json.loads(response.read() or b"null")
    finally:
        conn.close()
    if response.status >= 400:
        raise DaemonError(data.get("error", f"daemon answered {response.status}") if isinstance(data, dict) else data)
    return data


REFUSAL = (
    b"HTTP/1.0 403 Forbidden\r\nContent-Type: application/json\r\nConnection: close\r\n\r\n"
    b'{"error": "this skilld daemon serves its own user only"}'
)


def peer_uid(conn: socket.socket) -> int:
    """The user id of the process at the other end of a unix socket (SO_PEERCRED: pid, uid, gid)."""
    creds = conn.getsockopt(socket.SOL_SOCKET, socket.SO_PEERCRED, struct.calcsize("3i"))
    return int(struct.unpack("3i", creds)[1])


class OwnerOnlySocket(socket.socket):
    """The daemon's unix socket: a connection from another user's process is answered 403 and closed.

    The socket file is 0600 in a 0700 home already; this holds even if those modes were loosened (a
    careless chmod, a shared home). asyncio accepts through this method, so no request of theirs is read.
    """

    def accept(self) -> tuple[socket.socket, Any]:
        conn, address = super().accept()
        try:
            uid = peer_uid(conn)
        except OSError:
            uid = -1
        if uid == os.getuid():
            return conn, address
        try:
            conn.settimeout(0.5)
            conn.sendall(REFUSAL)
        except OSError:
            pass
        finally:
            conn.close()
        log.warning("refused a connection from another user", extra={"uid": uid})
        raise ConnectionAbortedError(f"peer uid {uid} is not this daemon's user")


class ApiServer:
    """Serves the API (uvicorn, from a background thread) on the unix socket and, if enabled, on TCP."""

    def __init__(self, home: Path, api: Any, host: str | None, port: int) -> None:
        import uvicorn

        self.path = home / SOCKET_NAME
        if self.path.exists():
            self.path.unlink()  # stale: we hold the home's lock, so no daemon owns it
        unix = OwnerOnlySocket(socket.AF_UNIX, socket.SOCK_STREAM)
        old = os.umask(0o177)
        try:
            unix.bind(str(self.path))
        finally:
            os.umask(old)
        os.chmod(self.path, 0o600)
        self.sockets: list[socket.socket] = [unix]
        self.address: tuple[str, int] | None = None
        if host is not None:
            # IPPROTO_TCP named explicitly: asyncio sets TCP_NODELAY only on sockets whose protocol says TCP,
            # and without it a kept-alive client waits 40 ms (delayed ACK) for every answer (measured).
            tcp = socket.socket(_family(host), socket.SOCK_STREAM, socket.IPPROTO_TCP)
            try:
                tcp.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
                tcp.bind((host, port))
            except OSError as exc:
                tcp.close()
                unix.close()
                self.path.unlink(missing_ok=True)
                raise OSError(f"api: cannot listen on {host}:{port}: {exc.strerror or exc}") from None
            self.sockets.append(tcp)
            self.address = tcp.getsockname()[:2]
        for sock in self.sockets:
            sock.listen(128)
            sock.set_inheritable(False)
        config = uvicorn.Config(
            api, log_config=None, access_log=False, timeout_graceful_shutdown=5, lifespan="on", server_header=False
        )
        self.server = uvicorn.Server(config)
        self.thread = threading.Thread(
            target=self.server.run, kwargs={"sockets": self.sockets}, name="api", daemon=True
        )

    @property
    def url(self) -> str | None:
        """The TCP address, as a URL; None when the API listens on the unix socket only."""
        if self.address is None:
            return None
        host, port = self.address
        return f"http://[{host}]:{port}" if ":" in host else f"http://{host}:{port}"

    def start(self, timeout: float = 10.0) -> None:
        self.thread.start()
        deadline = time.monotonic() + timeout
        while not self.server.started and self.thread.is_alive() and time.monotonic() < deadline:
            time.sleep(0.01)
        if not self.server.started:
            raise OSError("api: the server did not start")

    def stop(self) -> None:
        self.server.should_exit = True
        self.thread.join(timeout=6)  # requests in flight get 5 s (timeout_graceful_shutdown)
        self.path.unlink(missing_ok=True)


def _family(host: str) -> socket.AddressFamily:
    return socket.AF_INET6 if ":" in host else socket.AF_INET


class HomeLock:
    """An exclusive lock on a skilld home: held by the daemon for its life, by a command for its run."""

    def __init__(self, home: Path) -> None:
        self.path = home / LOCK_NAME
        self.fd = -1

    def acquire(self, blocking: bool) -> bool:
        """Take the lock; False if it is held elsewhere and blocking is False."""
        self.fd = os.open(self.path, os.O_RDWR | os.O_CREAT, 0o600)
        try:
            fcntl.flock(self.fd, fcntl.LOCK_EX | (0 if blocking else fcntl.LOCK_NB))
        except BlockingIOError:
            os.close(self.fd)
            self.fd = -1
            return False
        os.ftruncate(self.fd, 0)
        os.write(self.fd, str(os.getpid()).encode())
        return True

    def release(self) -> None:
        if self.fd >= 0:
            fcntl.flock(self.fd, fcntl.LOCK_UN)
            os.close(self.fd)
            self.fd = -1

    def holder(self) -> str:
        """The pid written by the lock's holder, for messages."""
        try:
            return self.path.read_text().strip() or "?"
        except OSError:
            return "?"
