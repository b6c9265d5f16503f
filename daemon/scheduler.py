"""Scheduled work (APScheduler): fine-tuning on a cron schedule and when the dataset has grown enough, and
the upkeep (retention, compression of read telemetry, vacuum) on its own schedule."""

from __future__ import annotations

import logging
from collections.abc import Callable
from typing import Any

from apscheduler.schedulers.background import BackgroundScheduler
from apscheduler.triggers.cron import CronTrigger

from daemon.config import Settings
from daemon.finetune.cycle import FineTuner

log = logging.getLogger(__name__)

GROWTH_CHECK_SECONDS = 60


class Scheduler:
    """Runs fine-tuning checks in the background; a run never overlaps another."""

    def __init__(
        self,
        settings: Settings,
        finetuner: FineTuner,
        dataset_size: Callable[[], int],
        housekeeping: Callable[[], Any],
    ) -> None:
        self.settings = settings
        self.finetuner = finetuner
        self.dataset_size = dataset_size
        self.housekeeping = housekeeping
        self.scheduler = BackgroundScheduler(job_defaults={"coalesce": True, "max_instances": 1})
        self.schedules = (settings.finetune.schedule, settings.retention.schedule)
        self.scheduler.add_job(self._scheduled, CronTrigger.from_crontab(settings.finetune.schedule), id="finetune")
        self.scheduler.add_job(self._grown, "interval", seconds=GROWTH_CHECK_SECONDS, id="finetune-growth")
        self.scheduler.add_job(self._upkeep, CronTrigger.from_crontab(settings.retention.schedule), id="housekeeping")

    def start(self) -> None:
        self.scheduler.start()

    def stop(self) -> None:
        """Stop; a job in flight was told to stop by the caller and is waited for."""
        self.scheduler.shutdown(wait=True)

    def reschedule(self) -> None:
        """Follow changed schedules (after a configuration reload)."""
        finetune, upkeep = self.settings.finetune.schedule, self.settings.retention.schedule
        if (finetune, upkeep) == self.schedules:
            return
        self.scheduler.reschedule_job("finetune", trigger=CronTrigger.from_crontab(finetune))
        self.scheduler.reschedule_job("housekeeping", trigger=CronTrigger.from_crontab(upkeep))
        self.schedules = (finetune, upkeep)
        log.info("schedules changed", extra={"finetune": finetune, "housekeeping": upkeep})

    def _upkeep(self) -> None:
        try:
            self.housekeeping()
        except Exception:
            log.exception("housekeeping failed; it runs again at its next time")

    def _scheduled(self) -> None:
        result = self.finetuner.run("schedule")
        log.info("scheduled fine-tuning", extra={"status": result["status"], "reason": result.get("reason", "")})

    def _grown(self) -> None:
        config = self.settings.finetune
        size = int(self.dataset_size())
        since = size - self.finetuner.registry.examples_at_last_run()
        if size >= config.min_examples and since >= config.trigger_every:
            result = self.finetuner.run("growth")
            log.info("fine-tuning after dataset growth", extra={"status": result["status"], "new_examples": since})
