"""One fine-tuning cycle: train a candidate in a child process, evaluate it, promote or reject, deploy.

A candidate is promoted only when its held-out loss beats the base model's by `finetune.promote_margin`
and its schema-valid extraction rate on held-out interactions is no worse than the model in use.
"""

from __future__ import annotations

import json
import logging
import subprocess
import sys
import threading
from collections.abc import Callable
from enum import StrEnum
from pathlib import Path
from typing import Any, Protocol

from pydantic import BaseModel, Field

from daemon.config import Settings
from storage.datasets import TRAIN, VALIDATION, Datasets, read_records
from storage.db import ensure_private_dir
from storage.models import ModelRegistry, ModelStatus

log = logging.getLogger(__name__)

Progress = Callable[[dict[str, Any]], None]


class CycleStatus(StrEnum):
    """How a cycle ended."""

    SKIPPED = "skipped"  # not run: too few examples, another run in progress, or skilld stopping
    FAILED = "failed"  # training or evaluation failed
    REJECTED = "rejected"  # trained and evaluated, not good enough
    PROMOTED = "promoted"  # the new active version, deployed


def _is_none(value: Any) -> bool:
    return value is None


class CycleResult(BaseModel):
    """What one cycle came to; `model_dump()` is what `skilld finetune --json` prints."""

    status: CycleStatus
    version: int | None = None
    adapter: str | None = None
    metrics: dict[str, Any] = {}
    reason: str | None = Field(default=None, exclude_if=_is_none)  # why it was skipped, failed or rejected
    deployment: dict[str, Any] | None = Field(default=None, exclude_if=_is_none)  # how a promoted one went live


class CycleLearner(Protocol):
    """What a cycle uses of the learner: the dataset to split, and the switch to a promoted adapter."""

    @property
    def datasets(self) -> Datasets: ...

    def use_adapter(self, adapter: Path | None) -> dict[str, Any]: ...


class FineTuner:
    """Runs cycles one at a time; their state lives in the model registry, so a restart sees it."""

    def __init__(
        self, settings: Settings, registry: ModelRegistry, learner: CycleLearner, lock: threading.RLock
    ) -> None:
        self.settings = settings
        self.registry = registry
        self.learner = learner
        self.lock = lock
        self.child: subprocess.Popen[str] | None = None
        self.cancelled = threading.Event()
        self.progress: dict[str, Any] = {}
        self._running = threading.Lock()

    def cancel(self) -> None:
        """Stop a training run in flight (the daemon is stopping); it is recorded as failed."""
        self.cancelled.set()
        child = self.child
        if child is not None and child.poll() is None:
            child.terminate()

    def base_model(self) -> Path:
        from extractors.llama_cpp import bundled_model_path

        return self.settings.llm.model_path or bundled_model_path()

    def run(self, trigger: str, on_progress: Progress | None = None) -> dict[str, Any]:
        """One cycle, as the command line and the API print it (`CycleResult.model_dump()`)."""
        return self.cycle(trigger, on_progress).model_dump()

    def cycle(self, trigger: str, on_progress: Progress | None = None) -> CycleResult:
        """One cycle: skipped (with the reason), promoted, rejected (with the reason) or failed."""
        busy = "skilld is stopping" if self.cancelled.is_set() else "a fine-tuning run is already in progress"
        if self.cancelled.is_set() or not self._running.acquire(blocking=False):
            return CycleResult(status=CycleStatus.SKIPPED, reason=busy)
        try:
            return self._cycle(trigger, on_progress)
        finally:
            self._running.release()
            self.progress = {}

    def _cycle(self, trigger: str, on_progress: Progress | None) -> CycleResult:
        config = self.settings.finetune
        with self.lock:
            examples = Datasets.count_examples(self.settings.home)
        if examples < config.min_examples:
            return CycleResult(
                status=CycleStatus.SKIPPED,
                metrics={"examples": examples},
                reason=f"{examples} examples in the dataset, fine-tuning needs finetune.min_examples="
                f"{config.min_examples}",
            )
        base = self.base_model()
        with self.lock:
            version = self.registry.start(str(base), examples, trigger)
        run_dir = ensure_private_dir(self.settings.home / "models" / f"v{version}")
        adapter = run_dir / f"skilld-v{version}.lora.gguf"
        try:
            train, validation = self._split(run_dir)
            job = {
                "base_model": str(base),
                "train": str(train),
                "validation": str(validation),
                "adapter": str(adapter),
                "nice": config.nice,
                "hyperparameters": config.model_dump(
                    include={
                        "learning_rate",
                        "epochs",
                        "max_steps",
                        "batch_size",
                        "lora_r",
                        "lora_alpha",
                        "target_modules",
                        "max_length",
                    }
                ),
            }
            (run_dir / "job.json").write_text(json.dumps(job, indent=2))
            metrics = self._train(run_dir, on_progress)
            with self.lock:
                self.registry.update(version, status=ModelStatus.CANDIDATE, adapter=str(adapter), metrics=metrics)
            metrics.update(self._evaluate(base, adapter, validation))
        except Exception as exc:
            with self.lock:
                self.registry.update(version, status=ModelStatus.FAILED, reason=str(exc))
            log.error("fine-tuning failed", extra={"version": version, "error": str(exc)})
            return CycleResult(status=CycleStatus.FAILED, version=version, reason=str(exc))
        return self._decide(version, adapter, metrics)

    def _split(self, run_dir: Path) -> tuple[Path, Path]:
        with self.lock:
            self.learner.datasets.export(run_dir / "data", self.settings.dataset.validation_fraction)
        train, validation = run_dir / "data" / TRAIN, run_dir / "data" / VALIDATION
        train_rows, held_out = read_records(train), read_records(validation)
        if not held_out and len(train_rows) > 1:  # a tiny dataset: hold one example out all the same
            held_out, train_rows = train_rows[-1:], train_rows[:-1]
            train.write_text("".join(json.dumps(r) + "\n" for r in train_rows))
            validation.write_text("".join(json.dumps(r) + "\n" for r in held_out))
        if not held_out or not train_rows:
            raise RuntimeError("the dataset is too small to hold examples out for evaluation")
        return train, validation

    def _train(self, run_dir: Path, on_progress: Progress | None) -> dict[str, Any]:
        """Run the training child; relay its progress; return its final metrics."""
        with open(run_dir / "train.log", "w") as errors:
            child = subprocess.Popen(
                [sys.executable, "-m", "daemon.finetune.train", str(run_dir / "job.json")],
                stdout=subprocess.PIPE,
                stderr=errors,
                text=True,
            )
            self.child = child
            if self.cancelled.is_set():  # asked to stop while the run was being prepared
                child.terminate()
            assert child.stdout is not None
            final: dict[str, Any] = {}
            for line in child.stdout:
                try:
                    event = json.loads(line)
                except ValueError:
                    continue
                if event.get("event") == "progress":
                    self.progress = event
                    log.info(
                        "training", extra={k: event[k] for k in ("step", "steps", "loss", "tokens_per_s", "eta_s")}
                    )
                    if on_progress is not None:
                        on_progress(event)
                elif event.get("event") in ("done", "error"):
                    final = event
            child.wait()
            self.child = None
        if self.cancelled.is_set():
            raise RuntimeError("stopped: skilld was asked to stop during training")
        if final.get("event") != "done":
            raise RuntimeError(
                final.get("error") or f"training exited with status {child.returncode}; see {run_dir / 'train.log'}"
            )
        return {k: v for k, v in final.items() if k != "event"}

    def _valid_rate(self, base: Path, adapter: Path | None, held_out: list[dict[str, Any]]) -> float | None:
        """Share of held-out interactions for which the model gives a schema-valid skill."""
        if not held_out:
            return None
        from extractors.base import BackendError
        from extractors.extractor import ExtractionError, Extractor
        from extractors.llama_cpp import LlamaCppBackend

        llm = self.settings.llm
        backend = LlamaCppBackend(
            base, n_ctx=llm.context, threads=llm.threads or None, repeat_penalty=llm.repeat_penalty, lora_path=adapter
        )
        backend.decoder.cancel = self.cancelled  # a stopping daemon does not wait for the evaluation
        extractor = Extractor(backend, max_tokens=llm.max_tokens, max_chars=llm.max_input_chars)
        valid = 0
        try:
            for record in held_out:
                user, assistant = record["messages"][1]["content"], record["messages"][2]["content"]
                try:
                    extractor.extract(user, assistant)
                    valid += 1
                except (BackendError, ExtractionError):
                    pass
        finally:
            backend.close()
        return valid / len(held_out)

    def _evaluate(self, base: Path, adapter: Path, validation: Path) -> dict[str, Any]:
        held_out = read_records(validation)[: self.settings.finetune.eval_examples]
        active = self.registry.active()
        current = Path(active["adapter"]) if active and active["adapter"] else None
        return {
            "valid_rate_before": self._valid_rate(base, current, held_out),
            "valid_rate_after": self._valid_rate(base, adapter, held_out),
            "eval_examples": len(held_out),
        }

    def _decide(self, version: int, adapter: Path, metrics: dict[str, Any]) -> CycleResult:
        margin = self.settings.finetune.promote_margin
        before, after = float(metrics["loss_before"]), float(metrics["loss_after"])
        improvement = (before - after) / before if before > 0 else 0.0
        metrics["loss_improvement"] = round(improvement, 5)
        reasons = []
        if not metrics.get("loss_is_finite", True):
            reasons.append("held-out loss is not finite")
        if improvement < margin:
            reasons.append(
                f"held-out loss {before:.4f} -> {after:.4f} improves by {improvement:.2%}, "
                f"less than finetune.promote_margin={margin:.2%}"
            )
        rate_before, rate_after = metrics.get("valid_rate_before"), metrics.get("valid_rate_after")
        if rate_before is not None and rate_after is not None and rate_after < rate_before:
            reasons.append(f"schema-valid extraction rate regressed {rate_before:.0%} -> {rate_after:.0%}")
        with self.lock:
            if reasons:
                reason = "; ".join(reasons)
                self.registry.update(
                    version, status=ModelStatus.REJECTED, adapter=str(adapter), metrics=metrics, reason=reason
                )
                log.info("candidate rejected", extra={"version": version, "reason": reason})
                return CycleResult(
                    status=CycleStatus.REJECTED, version=version, adapter=str(adapter), metrics=metrics, reason=reason
                )
            self.registry.update(version, adapter=str(adapter), metrics=metrics, reason="")
            self.registry.promote(version)
        deployment = self.learner.use_adapter(adapter)
        log.info("candidate promoted", extra={"version": version, "adapter": str(adapter)})
        return CycleResult(
            status=CycleStatus.PROMOTED, version=version, adapter=str(adapter), metrics=metrics, deployment=deployment
        )
