"""Life under a service manager: systemd's notify protocol, the watchdog, and the signals skilld handles.

The notify protocol is one datagram per state change on the socket systemd names in NOTIFY_SOCKET
(sd_notify(3)); without it (a terminal, a test) every call does nothing.
"""

from __future__ import annotations

import logging
import os
import signal
import socket
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from types import FrameType

log = logging.getLogger(__name__)


class Notifier:
    """Tells systemd when skilld is ready, reloading, or stopping, and keeps its watchdog fed."""

    def __init__(self) -> None:
        # Read once and removed, so child processes (training) never talk to systemd in skilld's name.
        address = os.environ.pop("NOTIFY_SOCKET", "")
        usec = os.environ.pop("WATCHDOG_USEC", "")
        pid = os.environ.pop("WATCHDOG_PID", "")
        self.address = "\0" + address[1:] if address.startswith("@") else address
        self.socket: socket.socket | None = None
        if self.address:
            self.socket = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM | socket.SOCK_CLOEXEC)
        mine = not pid or pid == str(os.getpid())
        # Ping at most once a second (and at least twice per period, as sd_watchdog_enabled(3) advises).
        self.interval = min(1.0, int(usec) / 2e6) if usec.isdigit() and int(usec) > 0 and mine else None
        self._last_ping = 0.0
        self._lock = threading.Lock()

    def send(self, *fields: str) -> None:
        if self.socket is None:
            return
        try:
            with self._lock:
                self.socket.sendto("\n".join(fields).encode(), self.address)
        except OSError as exc:  # systemd gone or the socket unreachable: nothing to tell
            log.debug("cannot notify the service manager", extra={"error": str(exc)})

    def ready(self, status: str) -> None:
        self.send("READY=1", f"STATUS={status}", f"MAINPID={os.getpid()}")

    def reloading(self) -> None:
        self.send("RELOADING=1", f"MONOTONIC_USEC={time.clock_gettime_ns(time.CLOCK_MONOTONIC) // 1000}")

    def stopping(self) -> None:
        self.send("STOPPING=1", "STATUS=stopping: finishing the batch in flight")

    def alive(self) -> None:
        """Feed the watchdog if it is due (cheap to call every loop)."""
        if self.interval is None:
            return
        now = time.monotonic()
        if now - self._last_ping >= self.interval:
            self._last_ping = now
            self.send("WATCHDOG=1")

    def close(self) -> None:
        if self.socket is not None:
            self.socket.close()
            self.socket = None


@contextmanager
def handle_signals(stop: threading.Event, reload: threading.Event) -> Iterator[None]:
    """SIGTERM and SIGINT ask for a clean stop; SIGHUP asks for the configuration to be read again."""

    def on_stop(signum: int, frame: FrameType | None) -> None:
        log.info("stopping", extra={"signal": signal.Signals(signum).name})
        stop.set()

    def on_reload(signum: int, frame: FrameType | None) -> None:
        log.info("reload requested", extra={"signal": "SIGHUP"})
        reload.set()

    previous = {sig: signal.signal(sig, on_stop) for sig in (signal.SIGTERM, signal.SIGINT)}
    previous[signal.SIGHUP] = signal.signal(signal.SIGHUP, on_reload)
    try:
        yield
    finally:
        for sig, old in previous.items():
            signal.signal(sig, old)
