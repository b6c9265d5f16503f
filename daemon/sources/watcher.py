"""Waking the tailer when telemetry directories change: watchdog's inotify observer, or polling."""

from __future__ import annotations

import logging
import threading
from collections.abc import Iterable
from pathlib import Path

from watchdog.events import FileSystemEvent, FileSystemEventHandler
from watchdog.observers import Observer
from watchdog.observers.api import BaseObserver
from watchdog.observers.polling import PollingObserver

log = logging.getLogger(__name__)


class _Wake(FileSystemEventHandler):
    def __init__(self, flag: threading.Event) -> None:
        self.flag = flag

    def on_any_event(self, event: FileSystemEvent) -> None:
        self.flag.set()


class Watcher:
    """Sets a flag whenever anything under the watched directories changes."""

    def __init__(self, paths: Iterable[Path], poll: bool = False, interval: float = 1.0) -> None:
        self.paths = list(paths)
        self.flag = threading.Event()
        self.observer: BaseObserver = PollingObserver(timeout=interval) if poll else Observer()
        self._handler = _Wake(self.flag)
        self._watched: set[Path] = set()

    def start(self) -> None:
        """Start watching the directories that exist (the loop's rescans find the others later)."""
        self._watch_existing()
        self.observer.start()

    def _watch_existing(self) -> None:
        for path in self.paths:
            directory = path if path.is_dir() else path.parent
            if directory in self._watched or not directory.is_dir():
                continue
            try:
                self.observer.schedule(self._handler, str(directory), recursive=True)
                self._watched.add(directory)
            except OSError as exc:
                log.warning("cannot watch directory", extra={"path": str(directory), "error": str(exc)})

    def take(self) -> bool:
        """Whether something changed since the last call."""
        self._watch_existing()
        if self.flag.is_set():
            self.flag.clear()
            return True
        return False

    def wait(self, timeout: float, stop: threading.Event) -> None:
        """Sleep until a change, a stop, or the timeout."""
        deadline = timeout
        step = min(0.05, timeout)
        while deadline > 0 and not self.flag.is_set() and not stop.is_set():
            self.flag.wait(step)
            deadline -= step

    def stop(self) -> None:
        """Stop watching."""
        self.observer.stop()
        self.observer.join(timeout=5)
