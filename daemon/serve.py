"""`skilld run`: the daemon's process around its loop: the home's lock, signals, the API, systemd.

The API listens on the unix socket `<home>/skilld.sock` (and on TCP when `api.enabled`); its command route
runs the same command registry (`daemon/commands.py`) as the CLI does with no daemon.
"""

from __future__ import annotations

import os
from collections.abc import Callable

from daemon import control, logs
from daemon.app import Skilld
from daemon.config import Settings
from daemon.loop import DaemonLoop
from daemon.service import Notifier, handle_signals
from storage.db import ensure_private_dir


class ServeError(Exception):
    """The daemon cannot start (another one runs on the home, the API address is taken)."""


def serve(settings: Settings, reloader: Callable[[], Settings], waiting: Callable[[str], None]) -> None:
    """Run the daemon in the foreground until SIGTERM or SIGINT; `waiting` hears whom a start waits for."""
    os.umask(0o077)  # everything the daemon writes is its user's alone
    logs.configure(settings.logging.level, settings.logging.format)
    notifier = Notifier()
    home = ensure_private_dir(settings.home)
    lock = control.HomeLock(home)
    if not lock.acquire(blocking=False):
        try:
            control.call(home, "ping", timeout=2)
            raise ServeError(f"a skilld daemon already runs on {home} (process {lock.holder()})")
        except (ConnectionError, OSError):
            waiting(f"waiting for process {lock.holder()} to finish with {home}")
            lock.acquire(blocking=True)
    try:
        app = Skilld(settings)
        app.in_daemon = True
        try:
            with handle_signals(app.stopping, app.reload_requested):
                server = _serve_api(app)
                try:
                    DaemonLoop(app).run(reloader=reloader, notifier=notifier)
                finally:
                    server.stop()
        finally:
            app.close()
            notifier.close()
    finally:
        lock.release()


def _serve_api(app: Skilld) -> control.ApiServer:
    """Start the API on the unix socket and, when enabled, on api.host:api.port."""
    from daemon.api import create_api
    from daemon.metrics import Metrics

    metrics = Metrics(app.home, app.health)
    app.learner.observe = lambda seconds: (
        metrics.extraction_failures.inc() if seconds is None else metrics.extraction_seconds.observe(seconds)
    )
    app.on_drift = metrics.record_drift
    config = app.settings.api
    api = create_api(app, metrics, control.load_token(app.home))
    try:
        server = control.ApiServer(app.home, api, config.host if config.enabled else None, config.port)
    except OSError as exc:
        raise ServeError(str(exc)) from None
    server.start()
    app.api_url = server.url
    return server
