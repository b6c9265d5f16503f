"""A stop while the model works: an extraction gives up between two tokens and stays queued; a training run
ends failed, its child process gone, nothing deployed (README, "Running as a service" and "Fine-tuning").

Each test runs the daemon's real loop (`DaemonLoop.run`) in a thread and asks it to stop the way SIGTERM's
handler does (`app.stopping`), from inside the model work itself, so the stop lands mid-decode or mid-training
every time; what passes the stop on to the model call and the training child is the loop's own code.
"""

from __future__ import annotations

import logging
import signal
import threading
import time
from pathlib import Path
from typing import Any

import pytest

from daemon.app import Skilld
from daemon.config import Settings
from daemon.loop import DaemonLoop
from daemon.recheck import GATE_CHECKED
from extractors.extractor import Extractor
from extractors.gate import GATE_VERSION
from extractors.llama_cpp import LlamaCppBackend
from tests.helpers import rows, write_lines
from tests.test_finetune import fill_dataset

pytestmark = pytest.mark.slow

STOPPED_TRAINING = "stopped: skilld was asked to stop during training"


def _run_loop(app: Skilld) -> threading.Thread:
    """The daemon's loop on app, in a thread, once it follows its telemetry paths."""
    ready = threading.Event()
    thread = threading.Thread(target=DaemonLoop(app).run, kwargs={"ready": ready}, name="daemon-loop", daemon=True)
    thread.start()
    assert ready.wait(30), "the daemon loop did not start"
    return thread


def test_a_stop_during_an_extraction_gives_up_between_two_tokens_and_the_item_stays_queued(
    settings: Settings,
    telemetry: Path,
    embedder: Any,
    llama: LlamaCppBackend,
    monkeypatch: pytest.MonkeyPatch,
    caplog: pytest.LogCaptureFixture,
) -> None:
    caplog.set_level(logging.INFO)
    settings.scoring.threshold = 0.0  # the one interaction is queued, whatever its score
    write_lines(
        telemetry / "aidb-events.jsonl",
        [
            {
                "event_type": "query",
                "query": "How can I undo my last git commit but keep the changes?",
                "response": "Run `git reset --soft HEAD~1`: the commit is gone and its changes stay staged.",
                "success": True,
                "timestamp": "2026-11-01T10:00:00Z",
            }
        ],
    )
    app = Skilld(settings)
    app.learner._embedder = embedder
    app.ingest([telemetry])
    while app.learner.score_batch():
        pass
    item = app.learner.learning.next_item()
    assert item is not None
    # The bundled model, wired as Learner.extractor wires the backend it opens: its decoder heeds learner.cancel.
    app.learner._extractor = Extractor(
        llama, max_tokens=settings.llm.max_tokens, max_chars=settings.llm.max_input_chars
    )
    monkeypatch.setattr(llama.decoder, "cancel", app.learner.cancel)
    decoded: list[int] = []
    passed_on: list[bool] = []
    stopped_at: list[float] = []
    logits = llama.decoder._logits

    def stop_after_five_tokens(recent: list[int]) -> Any:
        decoded.append(len(recent))
        if len(recent) == 5:  # five tokens in, SIGTERM: the loop must pass the stop on to the model call
            stopped_at.append(time.monotonic())
            app.stopping.set()
            passed_on.append(app.learner.cancel.wait(10))
        return logits(recent)

    monkeypatch.setattr(llama.decoder, "_logits", stop_after_five_tokens)
    loop = _run_loop(app)
    loop.join(30)
    assert not loop.is_alive(), "the daemon loop did not end after the stop"
    exited_after = time.monotonic() - stopped_at[0]
    assert passed_on == [True]
    assert decoded == [0, 1, 2, 3, 4, 5]  # the token in flight at the stop, then no other
    assert "extraction interrupted by stop; it stays queued" in caplog.text
    assert app.learner.learning.extraction_of(item.interaction_key) == {
        "state": "pending",
        "skill_id": None,
        "reason": None,
    }
    assert rows(app.home, "SELECT attempts FROM extraction_queue") == [(0,)]  # not a failed attempt
    status = app.status()
    assert (status["skills"], status["dataset_examples"], status["parked_extractions"]) == (0, 0, 0)
    assert exited_after < 30, exited_after  # TimeoutStopSec
    app.close()

    restarted = Skilld(settings)
    again = restarted.learner.learning.next_item()
    restarted.close()
    assert again is not None and again.interaction_key == item.interaction_key  # extracted at the next start


def test_a_stop_during_training_ends_the_run_failed_with_its_child_gone_and_nothing_deployed(
    settings: Settings, embedder: Any
) -> None:
    settings.finetune.min_examples = 4
    settings.finetune.max_steps = 1000  # far more than can run before the stop
    settings.finetune.max_length = 128
    settings.dataset.validation_fraction = 0.2
    app = Skilld(settings)
    fill_dataset(app, embedder)
    app.learner.learning.remember(GATE_CHECKED, GATE_VERSION)  # the records were written by today's gate
    loop = _run_loop(app)
    seen: dict[str, Any] = {}

    def stop_at_the_first_step(event: dict[str, Any]) -> None:
        if not seen:  # the child is training: SIGTERM, and the loop must pass the stop on to the run
            seen.update(step=event["step"], steps=event["steps"], child=app.finetuner.child, at=time.monotonic())
            app.stopping.set()
            seen["passed_on"] = app.finetuner.cancelled.wait(10)

    result = app.finetune("manual", stop_at_the_first_step)
    ended_after = time.monotonic() - seen["at"]
    loop.join(30)
    assert not loop.is_alive(), "the daemon loop did not end after the stop"
    assert seen["passed_on"] and (seen["step"], seen["steps"]) == (1, 1000)
    assert seen["child"].returncode == -signal.SIGTERM  # terminated, not finished
    assert result == {"status": "failed", "version": 1, "adapter": None, "metrics": {}, "reason": STOPPED_TRAINING}
    (version,) = app.models.versions()
    assert (version["status"], version["reason"], version["adapter"]) == ("failed", STOPPED_TRAINING, None)
    assert list((app.home / "models").rglob("*.gguf")) == []  # no adapter was exported
    assert app.status()["finetune"]["active_version"] is None and app.learner.adapter is None
    assert app.finetune("manual")["reason"] == "skilld is stopping"  # and no new run starts while stopping
    assert ended_after < 30, ended_after  # TimeoutStopSec
    app.close()
