"""The application: skilld's parts built from settings, and the use cases the commands run on them.

The daemon's loop is `daemon/loop.py`, its process wiring `daemon/serve.py`, the commands `daemon/commands.py`.
"""

from __future__ import annotations

import logging
import os
import threading
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

from daemon import retention
from daemon.adapters.registry import AdapterRegistry
from daemon.config import Settings
from daemon.finetune.cycle import FineTuner
from daemon.health import Health
from daemon.ingest import Ingestor, IngestReport
from daemon.interaction import Interaction
from daemon.interactions import load_interaction
from daemon.parallel import ingest_in_parallel, share_by_size
from daemon.pipeline import SCORED_CURSOR, Learner
from daemon.privacy import Privacy, Redactor, UserHasher
from daemon.recheck import RETIRED_EXAMPLES, RETIRED_SKILLS
from daemon.replay import replay_dead_letters
from daemon.sources.tailer import Tailer, find_files
from daemon.status import status_report
from storage.db import ensure_private_dir
from storage.events import EventStore
from storage.learning import SKILL_COUNT
from storage.models import ModelRegistry

log = logging.getLogger(__name__)


class PathError(Exception):
    """A path given on the command line that cannot be read."""


class Skilld:
    """skilld's stores and stages, opened on one home directory."""

    def __init__(self, settings: Settings) -> None:
        self.settings = settings
        self.home = ensure_private_dir(settings.home)
        self.store = EventStore.open(self.home)
        self.registry = AdapterRegistry(settings.telemetry.generic)
        self.privacy = Privacy(Redactor(), UserHasher.from_home(self.home), settings.privacy.user_fields)
        t = settings.telemetry
        self.tailer = Tailer(self.store, self.registry, t.max_line_bytes, t.close_inactive)
        self.ingestor = Ingestor(
            self.store, self.tailer, self.privacy, self.registry, settings.privacy.dead_letter_bytes, t.max_line_bytes
        )
        # One stage runs at a time on the store: the daemon loop and requests from the CLI take turns.
        self.lock = threading.RLock()
        self.stopping = threading.Event()
        self.health = Health()  # what is wrong now, stage by stage (daemon/health.py)
        self.ready = threading.Event()  # stores open and the tailer running: the daemon serves
        # Set by `skilld run` before its API listens: commands then run inside the daemon (no fork, no drain).
        self.in_daemon = False
        self.reload_requested = threading.Event()
        self.api_url: str | None = None  # where the daemon's API listens on TCP, for `status`
        # The library generation last published to `skills.publish_dir`, and how that went (for `status`).
        self._published = -1
        self.publishing: dict[str, Any] | None = None
        # The last drift check (the daemon's, every `insights.check_minutes`), for `status` and the metrics.
        self.drift: dict[str, Any] | None = None
        self._drift_due = 0.0
        self.on_drift: Callable[[list[dict[str, Any]]], None] = lambda checks: None
        self.learner = Learner(settings, self.store, self.registry, self.privacy, self.lock)
        self.models = ModelRegistry(self.store.conn)
        self.finetuner = FineTuner(settings, self.models, self.learner, self.lock)
        active = self.models.active()
        if active is not None and active["adapter"]:
            self.learner.adapter = Path(active["adapter"])

    def close(self) -> None:
        """Close files and stores."""
        with self.lock:
            self.tailer.close()
            self.learner.close()
            self.store.close()

    # -- one-shot work -------------------------------------------------------------------------------------
    def ingest(self, paths: list[Path], learn: bool = False, workers: int = 1) -> IngestReport:
        """Read files and directories to their end once and store their events (idempotent).

        With workers > 1 the files are shared among forked processes, each committing its own batches;
        only for a process without threads (the CLI with no daemon), as fork requires.
        """
        missing = [p for p in paths if not os.access(p, os.R_OK)]
        if missing:
            raise PathError(f"cannot read {missing[0]}: no such file or permission denied")
        files = list(find_files(paths))
        groups = share_by_size(files, workers)
        report = self._ingest_files(files) if len(groups) <= 1 else self._ingest_in_parallel(groups)
        if learn:
            self.learner.run_until_idle()
        return report

    def _ingest_in_parallel(self, groups: list[list[Path]]) -> IngestReport:
        settings = self.settings
        return ingest_in_parallel(groups, self._ingest_files, lambda files: _ingest_here(settings, files))

    def _ingest_files(self, files: list[Path]) -> IngestReport:
        report = IngestReport()
        t = self.settings.telemetry
        with self.lock:
            for path in files:
                if self.stopping.is_set():  # a stopping daemon: what was read is committed
                    break
                followed = self.tailer.follow(path)
                if followed is None:
                    continue
                report.files += 1
                while self.ingestor.pump([followed], t.batch_lines, t.batch_seconds, report):
                    if self.stopping.is_set():  # a stopping daemon: what was read is committed
                        break
                report.pending_bytes += followed.reader.pending
                self.tailer.retire(followed)
        return report

    def status(self) -> dict[str, Any]:
        """Counts and health of every stage."""
        with self.lock:
            report = {**self.health.report(), **status_report(self.store, self.home)}
            report.update(self.learner.learning.counts())
            report["skills"] = self.learner.learning.cursor(SKILL_COUNT)
            report["retired"] = {
                "skills": self.learner.learning.cursor(RETIRED_SKILLS),
                "examples": self.learner.learning.cursor(RETIRED_EXAMPLES),
            }
            report["parked"] = self.learner.learning.parked()
            report["publish"] = self.publishing
            report["serving"] = {"ready": self.learner.serving}
            report["models"] = self.learner.loaded()
            report["drift"] = self.drift
            report["finetune"] = self.finetune_state()
            report["api"] = {
                "url": self.api_url,
                "socket": str(self.home / "skilld.sock") if self.ready.is_set() else None,
            }
            return report

    def finetune_state(self) -> dict[str, Any]:
        """The model registry and the run in progress, if any."""
        versions = self.models.versions()
        active = self.models.active()
        return {
            "active_version": active["id"] if active else None,
            "adapter": active["adapter"] if active else None,
            "running": self.finetuner.progress or (self.models.running() is not None),
            "versions": versions[-10:],
        }

    def finetune(self, trigger: str = "manual", on_progress: Any = None) -> dict[str, Any]:
        """One fine-tuning cycle now; waits for it."""
        return self.finetuner.run(trigger, on_progress)

    def rollback(self) -> dict[str, Any]:
        """Return to the previous active version (or the base model) and deploy it."""
        with self.lock:
            old, new = self.models.rollback()
        adapter = Path(new["adapter"]) if new and new["adapter"] else None
        deployment = self.learner.use_adapter(adapter)
        return {
            "rolled_back": old["id"] if old else None,
            "active_version": new["id"] if new else None,
            "adapter": str(adapter) if adapter else None,
            "deployment": deployment,
        }

    def interaction(self, key: str) -> Interaction | None:
        """One interaction, folded from its stored events."""
        with self.lock:
            return load_interaction(self.store, self.registry, key)

    def interactions(self, source: str | None, limit: int) -> list[dict[str, Any]]:
        """What skilld understood of the telemetry, newest first."""
        return self.learner.understood(source, limit)

    def search(
        self, query: str, limit: int, client: str = "cli", session: str | None = None, record: bool = True
    ) -> list[dict[str, Any]]:
        """Learned skills best matching a question, ranked by relevance and usefulness; each serve recorded
        (unless `record` is False: a read that serves no client)."""
        question = self.privacy.redactor.text(query)
        config = self.settings.skills
        with self.lock:
            found = self.learner.library.search(question, limit, config.usefulness_weight, config.prior_mean)
            if record:
                self.learner.usage.served(found, client, session, question)
        return found

    def skill(self, skill_id: str, client: str, session: str | None = None) -> dict[str, Any]:
        """One skill served to a client by id (MCP's `get_skill`): recorded like a search result."""
        with self.lock:
            found = self.learner.library.get(skill_id)
            if found is None:
                raise LookupError(f"no skill {skill_id}")
            if found["retired"] is None:
                self.learner.usage.served([found], client, session, None)
            return found

    def rate(self, skill_id: str, helped: bool, note: str | None, client: str) -> dict[str, Any]:
        """Explicit evidence that a skill helped or did not; a skill confidently unhelpful is retired."""
        safe = self.privacy.redactor.text(note) if note else None
        with self.lock:
            self.learner.usage.rate(skill_id, helped, client, safe)
            self.learner.remember_skill_count()
            found = self.learner.library.get(skill_id)
        assert found is not None
        return found

    def context(self, prompt: str | None, session: str | None, client: str) -> dict[str, Any]:
        """The block of skills relevant to a prompt that an editor puts before it (`skilld context`, hooks).

        Only skills at least `skills.context_min_relevance` similar to the prompt, at most
        `skills.context_limit`, in at most `skills.context_max_chars`; none when nothing is relevant. With
        no prompt (None: a session starting), the served skills that have helped most, by name only.
        """
        from daemon.adapters.claude_code import typed_request
        from daemon.briefing import index_block, skills_block

        config = self.settings.skills
        if prompt is None:
            with self.lock:
                proven = self.learner.library.proven(config.context_limit)
            return {"markdown": index_block(proven, config.context_max_chars), "skills": []}
        if client == "claude-code":  # what its transcript records as the turn's request, matched later
            prompt = typed_request(prompt) or ""
        if not prompt.strip():
            return {"markdown": "", "skills": []}
        question = self.privacy.redactor.text(prompt)
        with self.lock:
            found = self.learner.library.search(
                question, config.context_limit, config.usefulness_weight, config.prior_mean
            )
            relevant = [s for s in found if s["relevance"] >= config.context_min_relevance]
            markdown, shown = skills_block(relevant, config.context_max_chars)
            self.learner.usage.served(shown, client, session, question)
        briefs = [{k: s[k] for k in ("id", "name", "relevance", "score")} for s in shown]
        return {"markdown": markdown, "skills": briefs}

    def explain(self, event_id: str) -> dict[str, Any]:
        """An event's interaction's value score with its components."""
        return self.learner.explain(event_id)

    def feedback(self, event_id: str, value: int, correction: str | None, drain: bool = False) -> dict[str, Any]:
        """Thumbs (and a correction) for an event's interaction; it is re-scored at once.

        With drain (a command with no daemon), an interaction that became valuable is extracted before
        returning; a running daemon's extraction stage picks it up instead.
        """
        result = self.learner.feedback(event_id, value, correction)
        if drain:
            self.learner.run_until_idle(backoff=self.settings.extraction.backoff_seconds)
        return result

    def skills(self, action: str, argument: str | None = None) -> Any:
        """`skills list|retired|show|export|import|delete|restore|recheck`."""
        if action == "recheck":
            return self.learner.recheck(force=True)
        library = self.learner.library
        with self.lock:
            if action in ("list", "retired"):
                from storage.skills import view

                return [view(s.id, s.skill) for s in (library.all() if action == "list" else library.retired())]
            if action == "show":
                skill = library.get(str(argument))
                if skill is None:
                    raise LookupError(f"no skill {argument}")
                return {**skill, "history": self.learner.usage.ledger.history(str(argument))}
            if action == "export":
                return {"exported": library.export(Path(str(argument))), "path": str(argument)}
            if action == "publish":
                from storage import agent_skills

                return agent_skills.export(list(library.all()), Path(str(argument)))
            if action == "import":
                counts = library.import_(Path(str(argument)))
            elif action == "delete":
                if not library.delete(str(argument)):
                    raise LookupError(f"no skill {argument}")
                self.learner.usage.forget([str(argument)])
                counts = {"deleted": 1}
            elif action == "restore":
                if not library.restore(str(argument)):
                    raise LookupError(f"no retired skill {argument}")
                counts = {"restored": 1}
            else:
                raise ValueError(f"unknown skills action {action}")
            self.learner.remember_skill_count()
            return counts

    def publish_if_changed(self) -> dict[str, Any] | None:
        """Keep `skills.publish_dir` equal to the served skills as Agent Skills, when the library changed.

        Only folders skilld wrote (marked) are replaced or removed. A failure (a full disk, a folder not
        writable) is shown by `status` and `health`, and tried again with backoff until it succeeds.
        """
        target = self.settings.skills.publish_dir
        generation = self.learner.generation
        if target is None or generation == self._published or self.health.waiting("publish"):
            return None
        from daemon.faults import Fault, classify
        from storage import agent_skills

        try:
            with self.lock:
                result = agent_skills.sync(list(self.learner.library.all()), target)
        except OSError as exc:
            self.publishing = {"dir": str(target), "error": str(exc)}
            fault = classify(exc, target) or Fault(
                "unwritable", f"cannot publish skills to {target}: {exc}", f"make {target} writable by its user"
            )
            self.health.fault("publish", fault)
            return None
        self._published = generation
        self.health.ok("publish")
        self.publishing = {"dir": str(target), **{k: len(v) for k, v in result.items()}}
        if any(result[k] for k in ("added", "updated", "removed")):
            log.info("skills published", extra=self.publishing)
        return result

    def experiments(self, action: str, name: str | None = None) -> Any:
        """`experiments list|show|start|stop`: the configured A/B tests of extraction and their figures."""
        experiments = self.learner.experiments
        with self.lock:
            if action == "list":
                return [
                    {
                        "name": e.name,
                        "policy": e.policy,
                        "arms": [{"name": a.name, "prompt": a.prompt, "share": a.share} for a in e.arms],
                        **(experiments.store.state(e.name) or {"state": "not started"}),
                        "trials": len(experiments.store.trials(e.name)),
                    }
                    for e in self.settings.experiments
                ]
            assert name is not None
            experiments.config(name)  # LookupError for one not configured
            if action == "show":
                return experiments.evaluate(name, self.learner.library)
            if action == "start":
                experiments.store.start(name)
            elif action == "stop":
                if not experiments.store.stop(name, decision="stopped by a person"):
                    raise LookupError(f"experiment {name} is not running")
            else:
                raise ValueError(f"unknown experiments action {action}")
            return {"name": name, **(experiments.store.state(name) or {})}

    # -- is it learning? ---------------------------------------------------------------------------------------
    def check_drift(self) -> dict[str, Any]:
        """Drift of the recent window against the reference window, now; logged when found."""
        from daemon.insights import drift
        from storage.events import now_iso

        checks = [d.as_dict() for d in drift(self.learner, self.settings.insights)]
        self.drift = {"checked_at": now_iso(), "checks": checks}
        for check in checks:
            if check["drifted"]:
                log.warning("drift", extra={"check": check["name"], "psi": check["psi"], "reason": check["reason"]})
        self.on_drift(checks)
        return self.drift

    def check_drift_if_due(self) -> dict[str, Any] | None:
        """The daemon's periodic drift check, every `insights.check_minutes`."""
        if time.monotonic() < self._drift_due:
            return None
        self._drift_due = time.monotonic() + self.settings.insights.check_minutes * 60
        return self.check_drift()

    def failures(self, since_days: float) -> list[dict[str, Any]]:
        """Clusters of failed and low-value interactions, biggest first (`skilld failures`)."""
        from daemon.insights import failures

        return [c.as_dict() for c in failures(self.learner, self.settings.insights, since_days)]

    def gaps(self, since_days: float) -> list[dict[str, Any]]:
        """Topics asked often that no served skill answers, most wanted first (`skilld gaps`)."""
        from daemon.insights import gaps

        return [g.as_dict() for g in gaps(self.learner, self.settings.insights, since_days)]

    def report(self, directory: Path | None, since_days: int) -> dict[str, Any]:
        """Write the HTML report (`skilld report`); the daemon serves the one in `<home>/report` at /report."""
        from daemon.insights import report_data
        from daemon.report import verdict, write

        data = report_data(self, since_days)
        path = write(data, directory or self.home / "report")
        return {"path": str(path), "verdict": verdict(data)}

    def dataset(self, action: str, directory: str | None = None) -> dict[str, Any]:
        """`dataset stats|export`."""
        with self.lock:
            datasets = self.learner.datasets
            if action == "stats":
                return datasets.stats()
            if action != "export" or directory is None:
                raise ValueError(f"dataset {action}: give stats, or export with a directory")
            return datasets.export(Path(directory), self.settings.dataset.validation_fraction)

    def dead_letters(self, limit: int | None = None) -> list[dict[str, Any]]:
        """Stored dead letters, oldest first."""
        with self.lock:
            return self.store.dead_letters(limit)

    def replay(self) -> dict[str, int]:
        """Feed dead letters through the adapters again (after a fix); return what became events."""
        with self.lock:
            return replay_dead_letters(self.store, self.ingestor)

    def forget(self, user_id: str) -> dict[str, Any]:
        """Remove everything derived from one user (`skilld forget --user`)."""
        from daemon.forget import forget_user

        result = forget_user(self, user_id)
        log.info("user forgotten", extra={k: v for k, v in result.items() if k != "user"})
        return result

    def housekeeping(self) -> dict[str, Any]:
        """Retention, compression of fully read telemetry, and a vacuum (the scheduled upkeep).

        A stop request ends it between two steps (and skips the vacuum, which cannot be interrupted).
        """
        config = self.settings.retention
        stop = self.stopping.is_set
        scored = self.learner.learning.cursor(SCORED_CURSOR)
        result: dict[str, Any] = {"expired": retention.expire(self.store, config, self.lock, scored, stop)}
        result["telemetry"] = retention.compress(self.store, config, self.lock, stop)
        result["vacuum"] = None if stop() else retention.vacuum(self.store, self.lock)
        log.info("housekeeping done", extra=result)
        return result


def _ingest_here(settings: Settings, files: list[Path]) -> IngestReport:
    """Ingest files in a forked child: its own stores (it must not touch the parent's SQLite connection)."""
    app = Skilld(settings)
    try:
        return app._ingest_files(files)
    finally:
        app.close()
