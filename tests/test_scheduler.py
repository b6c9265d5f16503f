"""The fine-tuning schedule: a cron expression from config, and a run when the dataset has grown enough."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from daemon.config import ConfigError, Settings, load_settings
from daemon.scheduler import Scheduler


class Recorder:
    """A stand-in fine-tuner: these tests are about when cycles start (tests/test_finetune.py runs real ones)."""

    def __init__(self, last_run_size: int) -> None:
        self.runs: list[str] = []
        self.registry = self
        self.last = last_run_size

    def examples_at_last_run(self) -> int:
        return self.last

    def run(self, trigger: str) -> dict[str, Any]:
        self.runs.append(trigger)
        return {"status": "skipped", "reason": "recorded"}


@pytest.mark.parametrize(
    ("size", "last", "expected"), [(1499, 1000, []), (1500, 1000, ["growth"]), (900, 0, []), (1000, 0, ["growth"])]
)
def test_a_run_starts_when_the_dataset_grew_by_trigger_every_past_min_examples(
    settings: Settings, size: int, last: int, expected: list[str]
) -> None:
    recorder = Recorder(last)
    scheduler = Scheduler(settings, recorder, lambda: size, dict)  # type: ignore[arg-type]
    scheduler._grown()
    assert recorder.runs == expected


def test_the_cron_schedule_comes_from_config(settings: Settings) -> None:
    settings.finetune.schedule = "30 3 * * mon"
    scheduler = Scheduler(settings, Recorder(0), lambda: 0, dict)  # type: ignore[arg-type]
    trigger = scheduler.scheduler.get_job("finetune").trigger
    assert str(trigger) == "cron[month='*', day='*', day_of_week='mon', hour='3', minute='30']"


def test_a_bad_schedule_fails_at_start_naming_the_key(tmp_path: Path) -> None:
    config = tmp_path / "c.toml"
    config.write_text('[finetune]\nschedule = "every sunday"\n')
    with pytest.raises(ConfigError, match=r"^config: finetune.schedule: Value error, not a crontab expression"):
        load_settings(config)
