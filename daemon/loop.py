"""The daemon's loop: follow the telemetry paths, read in bounded batches, score, extract beside, reload.

`skilld run` builds the application (`daemon/app.py`) and runs this loop in the foreground until a stop; the
process wiring around it (the home's lock, signals, the API) is `daemon/serve.py`.
"""

from __future__ import annotations

import logging
import os
import threading
import time
from collections.abc import Callable
from typing import TYPE_CHECKING

from daemon.config import Settings, apply_settings
from daemon.faults import Fault, classify, internal
from daemon.ingest import IngestReport
from daemon.memory import release_free_memory
from daemon.scheduler import Scheduler
from daemon.service import Notifier
from daemon.sources.watcher import Watcher
from daemon.status import dataset_examples
from storage.db import ensure_private_dir

if TYPE_CHECKING:
    from daemon.app import Skilld

log = logging.getLogger(__name__)

# A full directory rescan even when the watcher said nothing (missed events, network filesystems).
RESCAN_SECONDS = 5.0


class DaemonLoop:
    """The daemon's rounds on one application."""

    def __init__(self, app: Skilld) -> None:
        self.app = app
        self.rescan = False  # after a fault: follow the files again from their stored offsets

    def step(self, scan: bool, notifier: Notifier | None = None) -> int:
        """One round of the loop: maybe rescan, read every followed file in bounded batches, score.

        Ingestion and scoring are separate stages: a fault of the machine in one (a full disk, a locked
        database) pauses that stage with backoff (`daemon/health.py`) while the other goes on.
        """
        health = self.app.health
        lines = 0
        if not health.waiting("ingest"):
            try:
                lines = self._ingest(scan or self.rescan, notifier)
                self.rescan = False
                health.ok("ingest")
            except Exception as exc:
                self._fault("ingest", exc)
                # What was read but not committed is read again from the stored offsets (events are
                # idempotent by id, so nothing is stored twice either way).
                with self.app.lock:
                    self.app.tailer.close()
                self.rescan = True
        if not health.waiting("scoring"):
            try:
                lines += self.app.learner.score_batch()
                health.ok("scoring")
            except Exception as exc:
                self._fault("scoring", exc)
        return lines

    def _fault(self, stage: str, exc: Exception) -> None:
        """Pause a stage on a fault: the machine's, or a bug of ours (logged with its traceback once)."""
        fault = classify(exc, self.app.home)
        if fault is None:
            fault = internal(exc)
            if self.app.health.error(stage) != fault.error:  # a new failure: its traceback, once
                log.exception("stage failed", extra={"stage": stage})
        self.app.health.fault(stage, fault)

    def _ingest(self, scan: bool, notifier: Notifier | None) -> int:
        t = self.app.settings.telemetry
        while not self.app.lock.acquire(timeout=1.0):  # a long command holds the store: alive, waiting
            if self.app.stopping.is_set():
                return 0
            if notifier is not None:
                notifier.alive()
        try:
            if scan:
                self.app.tailer.scan(self.app.settings.telemetry_paths)
                self._check_telemetry()
            files = self.app.tailer.ordered()
            report = IngestReport()

            def keep_going() -> bool:  # between two committed batches: feed the watchdog, heed a stop
                if notifier is not None:
                    notifier.alive()
                return not self.app.stopping.is_set()

            lines = self.app.ingestor.pump(files, t.batch_lines, t.batch_seconds, report, keep_going)
            for followed in files if not self.app.stopping.is_set() else []:  # a stopped pump may not be at the end
                if followed.key in self.app.tailer.files:
                    self.app.tailer.retire(followed)
        finally:
            self.app.lock.release()
        if report.events or report.dead_letters:
            log.info("ingested", extra={"events": report.events, "dead_letters": report.dead_letters})
        return lines

    def _check_telemetry(self) -> None:
        """The `telemetry` stage: every configured path readable, and no file skilld cannot open."""
        fault = None
        for path in self.app.settings.telemetry_paths:
            if not path.exists():
                fault = fault or classify(FileNotFoundError(2, "gone", str(path)), path)
            elif not os.access(path, os.R_OK | (os.X_OK if path.is_dir() else 0)):
                fault = fault or classify(PermissionError(13, "denied", str(path)), path)
        for path, error in self.app.tailer.unreadable.items():
            fault = fault or Fault("unreadable", f"cannot read {path}: {error}", f"make {path} readable by its user")
        if fault is None:
            self.app.health.ok("telemetry")
        else:
            self.app.health.fault("telemetry", fault)

    def run(
        self,
        ready: threading.Event | None = None,
        reloader: Callable[[], Settings] | None = None,
        notifier: Notifier | None = None,
    ) -> None:
        """Follow the telemetry paths until asked to stop; drain the batch in flight, then return.

        `reloader` reads the configuration again when `reload_requested` is set (SIGHUP); `notifier`
        tells systemd when skilld is ready, reloading and stopping, and feeds its watchdog.
        """
        notifier = notifier or Notifier()
        for path in self.app.settings.telemetry_paths:
            if not path.exists() and path == self.app.home / "telemetry":
                ensure_private_dir(path)
        watcher = self._watcher()
        if self.app.models.interrupted():
            log.warning("a fine-tuning run was interrupted by the last stop; marked failed")
        app = self.app
        scheduler = Scheduler(app.settings, app.finetuner, lambda: dataset_examples(app.home), app.housekeeping)
        scheduler.start()
        extraction = threading.Thread(target=self._extract_forever, name="extraction", daemon=True)
        extraction.start()
        try:
            with self.app.lock:  # every file known and followed; the backlog is read after READY, batch by batch
                self.app.tailer.scan(self.app.settings.telemetry_paths)
                self._check_telemetry()
        except Exception as exc:  # a full disk at start: READY all the same, the ingest stage retries
            self._fault("ingest", exc)
            self.rescan = True
        last_scan = time.monotonic()
        busy = False
        self.app.ready.set()
        if ready is not None:
            ready.set()
        log.info(
            "skilld running",
            extra={"home": str(self.app.home), "telemetry": [str(p) for p in self.app.settings.telemetry_paths]},
        )
        notifier.ready(f"following {len(self.app.settings.telemetry_paths)} telemetry paths")
        try:
            while not self.app.stopping.is_set():
                notifier.alive()
                if self.app.reload_requested.is_set():
                    self.app.reload_requested.clear()
                    notifier.reloading()
                    if self._reload(reloader):  # the paths, polling mode or schedules may have changed
                        scheduler.reschedule()
                        watcher.stop()
                        watcher = self._watcher()
                        last_scan = 0.0
                    notifier.ready("configuration reloaded")
                woken = watcher.take()
                scan = woken or time.monotonic() - last_scan >= RESCAN_SECONDS
                if scan:
                    last_scan = time.monotonic()
                if self.step(scan, notifier) > 0:
                    busy = True
                else:
                    if busy:  # the work is done: what its batches allocated goes back to the system
                        release_free_memory()
                        busy = False
                    watcher.wait(self.app.settings.telemetry.poll_interval, self.app.stopping)
        finally:
            notifier.stopping()
            self.app.ready.clear()
            self.app.learner.cancel.set()  # an extraction or evaluation in flight stops between two tokens
            self.app.finetuner.cancel()
            watcher.stop()
            scheduler.stop()
            extraction.join(timeout=10)  # a decode stops between two tokens; an HTTP call may not
            log.info("skilld stopped")

    def _watcher(self) -> Watcher:
        t = self.app.settings.telemetry
        watcher = Watcher(self.app.settings.telemetry_paths, poll=t.poll, interval=t.poll_interval)
        watcher.start()
        return watcher

    def _reload(self, reloader: Callable[[], Settings] | None) -> bool:
        """Apply a re-read configuration; keep the running one if it is invalid. True if applied."""
        if reloader is None:
            return False
        try:
            new = reloader()
        except Exception as exc:  # a bad value, an unreadable or vanished file: never a reason to stop
            log.error("configuration not reloaded; the running one stays", extra={"error": str(exc)})
            return False
        later = apply_settings(self.app.settings, new)
        from daemon import logs

        logs.configure(self.app.settings.logging.level, self.app.settings.logging.format)
        if later:
            log.warning("configuration reloaded; some changes take effect at the next start", extra={"keys": later})
        else:
            log.info("configuration reloaded")
        return True

    def _extract_forever(self) -> None:
        """The extraction stage, beside ingestion: a model call never holds up the tailer."""
        try:
            self.app.learner.warm_up()
        except Exception:
            log.exception("the skill library could not be loaded; the first request loads it")
        try:
            self.app.learner.recheck_if_upgraded()
        except Exception:
            log.exception("the quality re-check failed; it runs again at the next start")
        learner, health = self.app.learner, self.app.health
        while not self.app.stopping.is_set():
            try:
                self.app.publish_if_changed()
                self.app.check_drift_if_due()
                worked = learner.extract_one()
                self._model_health(worked)
                if not worked:
                    learner.unload_if_idle()
                    self.app.stopping.wait(1.0)
            except Exception as exc:
                self._fault("extraction", exc)
                self.app.stopping.wait(max(health.backoff("extraction"), 1.0))

    def _model_health(self, worked: bool) -> None:
        """The extraction stage's health from its model calls: degraded while they fail (each item retries
        and then parks, `extraction.max_attempts`), ok after one succeeds or once no item is left to try."""
        learner, health = self.app.learner, self.app.health
        failure = learner.backend_failure
        if failure is not None and not worked:
            with self.app.lock:
                left = learner.learning.counts()["pending_extractions"]
            if left == 0:  # every item it failed is parked, with its reason, in status
                learner.backend_failure = failure = None
        if failure is not None:
            fault = classify(failure, self.app.home)
            if fault is not None:
                health.fault("extraction", fault)
        elif worked or not health.waiting("extraction"):
            health.ok("extraction")
