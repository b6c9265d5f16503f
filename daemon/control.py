"""The daemon's one local unix socket: a small HTTP API the CLI uses while a daemon owns the stores.

Commands try the socket first; with no daemon (or a stale socket left by a killed one) they take the
home's lock and open the stores themselves, so the user sees the same results either way.
"""

from __future__ import annotations

import fcntl
import http.client
import json
import logging
import os
import socket
import socketserver
import threading
from collections.abc import Callable
from http.server import BaseHTTPRequestHandler
from pathlib import Path
from typing import Any

log = logging.getLogger(__name__)

SOCKET_NAME = "skilld.sock"
LOCK_NAME = "skilld.lock"

Handler = Callable[[dict[str, Any]], Any]


class DaemonError(Exception):
    """The daemon answered a request with an error; its message is the daemon's one-line reason."""


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
        try:
            conn.request("POST", f"/v1/{command}", body=body, headers={"Content-Type": "application/json"})
        except (FileNotFoundError, ConnectionRefusedError) as exc:
            raise ConnectionError(str(exc)) from None
        response = conn.getresponse()
        data = json.loads(response.read() or b"null")
    finally:
        conn.close()
    if response.status >= 400:
        raise DaemonError(data.get("error", f"daemon answered {response.status}") if isinstance(data, dict) else data)
    return data


class _Server(socketserver.ThreadingMixIn, socketserver.UnixStreamServer):
    daemon_threads = True
    handlers: dict[str, Handler]


class _RequestHandler(BaseHTTPRequestHandler):
    server: _Server

    def do_POST(self) -> None:
        command = self.path.removeprefix("/v1/")
        handler = self.server.handlers.get(command)
        if handler is None:
            self._reply(404, {"error": f"unknown command {command!r}"})
            return
        try:
            length = int(self.headers.get("Content-Length", "0"))
            payload = json.loads(self.rfile.read(length) or b"{}")
            self._reply(200, handler(payload))
        except (LookupError, ValueError, OSError) as exc:  # a request the user can fix: one line back
            self._reply(400, {"error": str(exc.args[0]) if exc.args else str(exc)})
        except Exception as exc:
            log.exception("request failed", extra={"command": command})
            self._reply(500, {"error": str(exc) or type(exc).__name__})

    def _reply(self, status: int, data: Any) -> None:
        body = json.dumps(data, default=str).encode()
        self.send_response(status)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, format: str, *args: Any) -> None:
        log.debug("control request: " + format, *args)


class ControlServer:
    """Serves CLI requests on `<home>/skilld.sock` (mode 0600) from a background thread."""

    def __init__(self, home: Path, handlers: dict[str, Handler]) -> None:
        self.path = home / SOCKET_NAME
        if self.path.exists():
            self.path.unlink()  # stale: we hold the home's lock, so no daemon owns it
        old = os.umask(0o177)
        try:
            self.server = _Server(str(self.path), _RequestHandler)
        finally:
            os.umask(old)
        os.chmod(self.path, 0o600)
        self.server.handlers = handlers
        self.thread = threading.Thread(target=self.server.serve_forever, name="control", daemon=True)

    def start(self) -> None:
        self.thread.start()

    def stop(self) -> None:
        self.server.shutdown()
        self.server.server_close()
        self.path.unlink(missing_ok=True)


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
