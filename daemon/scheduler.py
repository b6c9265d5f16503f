"""Scheduled work (APScheduler): fine-tuning on a cron schedule and when the dataset has grown enough."""

from __future__ import annotations

import logging
from typing import Any

from apscheduler.schedulers.background import BackgroundScheduler
from apscheduler.triggers.cron import CronTrigger

from daemon.config import Settings
from daemon.finetune.cycle import FineTuner

log = logging.getLogger(__name__)

GROWTH_CHECK_SECONDS = 60


class Scheduler:
    """Runs fine-tuning checks in the background; a run never overlaps another."""

    def __init__(self, settings: Settings, finetuner: FineTuner, dataset_size: Any) -> None:
        self.settings = settings
        self.finetuner = finetuner
        self.dataset_size = dataset_size
        self.scheduler = BackgroundScheduler(job_defaults={"coalesce": True, "max_instances": 1})
        self.scheduler.add_job(self._scheduled, CronTrigger.from_crontab(settings.finetune.schedule), id="finetune")
        self.scheduler.add_job(self._grown, "interval", seconds=GROWTH_CHECK_SECONDS, id="finetune-growth")

    def start(self) -> None:
        self.scheduler.start()

    def stop(self) -> None:
        self.scheduler.shutdown(wait=False)

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
