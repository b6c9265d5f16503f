"""The learning stages after ingestion: score interactions, extract skills from the valuable ones.

Each stage is durable: scoring follows a cursor over stored events (committed with the scores), and
extraction serves a SQLite queue. A crash anywhere, or `ingest --no-learn` followed by the daemon, ends
in the same state. The ML parts (embedder, vector store, model) load on first use.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable
from datetime import UTC
from pathlib import Path
from typing import TYPE_CHECKING, Any

from daemon.adapters.registry import AdapterRegistry
from daemon.config import Settings
from daemon.interaction import SIGNAL_KINDS, Interaction
from daemon.interactions import load_interaction
from daemon.memory import release_free_memory
from daemon.privacy import Privacy
from daemon.scoring import value_score
from storage.events import EventStore
from storage.learning import SKILL_COUNT, LearningStore, QueueState
from storage.vectors.base import INTERACTIONS, SKILLS, VectorPoint, VectorStore, point_id

if TYPE_CHECKING:
    from daemon.experiments import Experiments
    from daemon.usage import SkillUsage
    from extractors.base import BackendError, LLMBackend
    from extractors.extractor import Extractor
    from extractors.gate import Assessment, Candidate
    from storage.datasets import Datasets
    from storage.embeddings import Embedder
    from storage.skills import SkillLibrary

log = logging.getLogger(__name__)

SCORED_CURSOR = "scored_seq"


def learnable(interaction: Interaction) -> bool:
    """Whether an interaction is a question to score: it has one, and it is not an acceptance signal."""
    return bool(interaction.query) and interaction.kind not in SIGNAL_KINDS


class Learner:
    """Scores interactions and turns the valuable ones into skills and fine-tuning examples."""

    def __init__(
        self, settings: Settings, store: EventStore, registry: AdapterRegistry, privacy: Privacy, lock: threading.RLock
    ) -> None:
        self.settings = settings
        self.store = store
        self.learning = LearningStore(store.conn)
        self.registry = registry
        self.privacy = privacy
        self.lock = lock
        self._embedder: Embedder | None = None
        self._vectors: VectorStore | None = None
        self._library: SkillLibrary | None = None
        self._datasets: Datasets | None = None
        self._usage: SkillUsage | None = None
        self._experiments: Experiments | None = None
        # Counts changes of the library (skills added, merged, retired, restored, rated): what publishes it
        # as Agent Skills compares it with the one it last wrote.
        self.generation = 0
        self._extractor: Extractor | None = None
        self._backend: LLMBackend | None = None  # the model this learner opened, and so closes
        self.adapter: Path | None = None  # the promoted LoRA the in-process model runs with
        self.extraction_lock = threading.Lock()
        # When the extraction model last finished a call (monotonic), and how often it was unloaded when idle.
        self.model_used = time.monotonic()
        self.unloads = 0
        # The last model call's error while they fail (an endpoint refusing or hanging, a model file that
        # cannot be loaded); None once one succeeds. The daemon's health shows it.
        self.backend_failure: BackendError | None = None
        # Set on stop: an extraction in flight gives up between two tokens and stays queued.
        self.cancel = threading.Event()
        # Called with each extraction's duration in seconds, or None when it failed (metrics).
        self.observe: Callable[[float | None], None] = lambda seconds: None

    # -- parts, loaded on first use --------------------------------------------------------------------------
    @property
    def embedder(self) -> Embedder:
        if self._embedder is None:
            from storage.embeddings import Embedder

            e = self.settings.embedding
            self._embedder = Embedder(
                e.model_path, e.batch_size, runtime=e.runtime, threads=e.threads, cache_dir=e.cache_dir
            )
        return self._embedder

    @property
    def vectors(self) -> VectorStore:
        if self._vectors is None:
            from storage.vectors.factory import open_vector_store

            q = self.settings.qdrant
            vectors = open_vector_store(self.settings.home, q.url, q.api_key)
            try:  # kept only once its collection is open: a full disk here is retried from the start
                vectors.ensure_collection(INTERACTIONS, self.embedder.dimensions)
            except BaseException:
                vectors.close()
                raise
            self._vectors = vectors
        return self._vectors

    @property
    def library(self) -> SkillLibrary:
        if self._library is None:
            from storage.skills import SkillLibrary

            self._library = SkillLibrary(self.vectors, self.embedder, self.settings.skills.merge_threshold)
        return self._library

    @property
    def usage(self) -> SkillUsage:
        """Serves and ratings of skills, and their usefulness (daemon/usage.py)."""
        if self._usage is None:
            from daemon.usage import SkillUsage
            from storage.usage import UsageLedger

            self._usage = SkillUsage(UsageLedger(self.store.conn), lambda: self.library, self.settings.skills)
        return self._usage

    @property
    def experiments(self) -> Experiments:
        """A/B tests of extraction (daemon/experiments.py)."""
        if self._experiments is None:
            from daemon.experiments import Experiments
            from storage.experiments import ExperimentStore

            self._experiments = Experiments(ExperimentStore(self.store.conn), lambda: self.settings.experiments)
        return self._experiments

    @property
    def datasets(self) -> Datasets:
        if self._datasets is None:
            from storage.datasets import Datasets

            self._datasets = Datasets(
                self.settings.home, self.vectors, self.embedder, self.settings.dataset.dedup_threshold
            )
        return self._datasets

    @property
    def extractor(self) -> Extractor:
        if self._extractor is None:
            from extractors.extractor import Extractor
            from extractors.factory import open_backend

            llm = self.settings.llm
            backend = open_backend(llm, lora_path=None if llm.endpoint else self.adapter)
            self._backend = backend
            self._extractor = Extractor(backend, max_tokens=llm.max_tokens, max_chars=llm.max_input_chars)
            decoder = getattr(backend, "decoder", None)
            if decoder is not None:
                decoder.cancel = self.cancel
        return self._extractor

    def warm_up(self) -> None:
        """Load the embedder and the library when there are skills to serve, so that an editor hook's first
        request (which gives up after a second) is answered: loading takes longer than that."""
        from storage.usefulness import estimate

        with self.lock:
            if self.learning.cursor(SKILL_COUNT) > 0:
                self.library.embedder.encode_one("warm up")  # the first encoding is slow too
                estimate(0, 0)  # and the first use of scipy's Beta

    @property
    def serving(self) -> bool:
        """Whether skills are served at once (the library and its embedder are loaded)."""
        return self._library is not None

    def unload_if_idle(self) -> list[str]:
        """Free what has had no work for its idle time: the extraction model after `llm.idle_unload_seconds`,
        the embedder after `embedding.idle_unload_seconds`. The next use loads each again. Returns what was
        freed now."""
        freed = []
        idle, now = self.settings.llm.idle_unload_seconds, time.monotonic()
        due = self._extractor is not None and idle > 0 and now - self.model_used >= idle
        if due and self.extraction_lock.acquire(blocking=False):  # else an extraction began meanwhile
            try:
                if self._extractor is not None:
                    self._extractor = None
                    self._close_backend()
                    self.unloads += 1
                    freed.append("extraction")
            finally:
                self.extraction_lock.release()
        embedder_idle = self.settings.embedding.idle_unload_seconds
        embedder = self._embedder
        if embedder is not None and embedder.loaded and embedder_idle > 0 and now - embedder.used >= embedder_idle:
            embedder.release()
            freed.append("embedder")
        if freed:
            release_free_memory()
            log.info("models unloaded while idle", extra={"models": freed})
        return freed

    def loaded(self) -> dict[str, Any]:
        """Which models this process holds now, for status."""
        idle = self.settings.llm.idle_unload_seconds
        model_loaded = self._extractor is not None
        return {
            "embedder": {
                "loaded": self._embedder is not None and self._embedder.loaded,
                "runtime": self._embedder.runtime if self._embedder is not None else self.settings.embedding.runtime,
            },
            "extraction": {
                "loaded": model_loaded,
                "idle_seconds": round(time.monotonic() - self.model_used, 1) if model_loaded else None,
                "unloads_after": idle if idle > 0 else None,
                "unloaded_when_idle": self.unloads,
            },
        }

    def use_adapter(self, adapter: Path | None) -> dict[str, Any]:
        """Deploy a LoRA adapter (None: the base model) between two extractions, without a restart."""
        if self.settings.llm.endpoint:
            from extractors.deploy import deploy_to_server

            return deploy_to_server(self.settings.llm.endpoint, adapter)
        with self.extraction_lock:  # waits for an extraction in flight; the next one uses the new model
            self.adapter = adapter
            self._extractor = None
            self._close_backend()
        return {"mode": "in-process", "adapter": str(adapter) if adapter else None, "switched": True}

    def _close_backend(self) -> None:
        """Close the model this learner opened (one a test or a caller handed it stays theirs)."""
        if self._backend is not None:
            self._backend.close()
            self._backend = None

    def close(self) -> None:
        self._close_backend()
        if self._vectors is not None:
            self._vectors.close()
            self._vectors = None

    # -- scoring -----------------------------------------------------------------------------------------------
    def interaction(self, key: str) -> Interaction | None:
        """One interaction folded from its events, with feedback given to skilld directly applied."""
        interaction = load_interaction(self.store, self.registry, key)
        if interaction is None:
            return None
        given = self.learning.latest_feedback(key)
        if given is not None:  # feedback given to skilld directly wins over what the telemetry said
            interaction = interaction.model_copy(update={"feedback": given[0]})
        return interaction

    def _score(self, interactions: list[Interaction]) -> list[tuple[str, dict[str, Any], bool]]:
        """Score interactions (one embedding each) and record their queries in interaction-history."""
        config = self.settings.scoring
        vectors = self.embedder.encode([i.query or "" for i in interactions])
        rows: list[tuple[str, dict[str, Any], bool]] = []
        points: list[VectorPoint] = []
        has_skills = self.library.count() > 0
        for interaction, vector in zip(interactions, vectors, strict=True):
            own = point_id("interaction", interaction.key)
            similar = self.vectors.search(INTERACTIONS, vector, 10, threshold=config.similar_query)
            count = sum(1 for hit in similar if hit.id != own)
            best = self.vectors.search(SKILLS, vector, 1) if has_skills else []
            score = value_score(interaction, count, best[0].score if best else None, config)
            started = (
                interaction.started_at.astimezone(UTC).isoformat(timespec="milliseconds")
                if interaction.started_at
                else None
            )
            scored = {**score.as_dict(), "user": interaction.user, "started_at": started}
            rows.append((interaction.key, scored, bool(interaction.query and interaction.response)))
            points.append(
                VectorPoint(
                    own,
                    vector,
                    {
                        "key": interaction.key,
                        "source": interaction.source,
                        "kind": interaction.kind,
                        "query": (interaction.query or "")[:1000],
                        "value_score": score.score,
                        "outcome": interaction.outcome or "",
                        "user": interaction.user or "",
                        "started_at": interaction.started_at.isoformat() if interaction.started_at else "",
                    },
                )
            )
        self.vectors.upsert(INTERACTIONS, points)
        if self.usage.attribute(interactions):
            self.remember_skill_count()
        return rows

    def score_batch(self) -> int:
        """Score the interactions of the next stored events; return how many events were consumed."""
        config = self.settings.scoring
        with self.lock:
            cursor = self.learning.cursor(SCORED_CURSOR)
            events = self.learning.events_after(cursor, config.batch * 4)
            if not events:
                return 0
            keys = list(dict.fromkeys(key for _, key in events if key is not None))
            interactions = [i for i in map(self.interaction, keys) if i is not None and learnable(i)]
            rows = self._score(interactions) if interactions else []
            self.learning.save_scores(
                rows, (SCORED_CURSOR, events[-1][0]), config.threshold, self.settings.extraction.max_backlog
            )
        return len(events)

    def rescore(self, key: str) -> dict[str, Any] | None:
        """Score one interaction again now (after feedback)."""
        with self.lock:
            interaction = self.interaction(key)
            if interaction is None or not learnable(interaction):
                return None
            rows = self._score([interaction])
            self.learning.save_scores(rows, None, self.settings.scoring.threshold, self.settings.extraction.max_backlog)
            return self.learning.score_of(key)

    # -- extraction -----------------------------------------------------------------------------------------
    def model_decides_no_skill(self) -> bool:
        """Whether the model's "no reusable skill" is final (`skills.model_no_skill`; auto: for an endpoint)."""
        mode = self.settings.skills.model_no_skill
        return mode == "final" or (mode == "auto" and bool(self.settings.llm.endpoint))

    def extract_one(self, backoff: float | None = None) -> bool:
        """Extract the most valuable pending interaction; False when none is due."""
        from extractors.base import BackendError, Cancelled
        from extractors.draft import grounded_draft
        from extractors.extractor import ExtractionError
        from extractors.gate import Candidate, assess, choose
        from extractors.prompts import load_prompt
        from extractors.triage import no_skill_reason
        from storage.experiments import Trial

        with self.extraction_lock:
            with self.lock:
                item = self.learning.next_item()
                interaction = self.interaction(item.interaction_key) if item else None
            if item is None:
                return False
            key = item.interaction_key
            if interaction is None or not interaction.query or not interaction.response:
                with self.lock:
                    self.learning.finish(key, None)
                return True
            query, response, context = interaction.query, interaction.response, interaction.context or ""
            reason = no_skill_reason(query, response)
            if reason is not None:  # decided before any model call, never retried
                self._no_skill(key, reason)
                return True
            with self.lock:
                arm = self.experiments.arm_for(key) if self.settings.experiments else None
                version = arm[1].prompt if arm else self.experiments.default_prompt()
            started = time.perf_counter()
            candidates: list[Candidate] = []
            draft = grounded_draft(query, response)
            if draft is not None:
                candidates.append(Candidate(draft, "draft", "grounded", "none"))
            model_no_skill: str | None = None
            # What the arm's prompt achieved, recorded when the item ends (an experiment's trial).
            trial: dict[str, Any] = {"outcome": "failed", "passed": False, "grounding": None, "seconds": None}
            try:
                prompt = load_prompt(version) if version else None
            except FileNotFoundError:  # a promoted prompt whose file an upgrade removed: the newest one
                log.warning("prompt file missing; the newest prompt is used", extra={"prompt": version})
                prompt = None
            try:
                extraction = self.extractor.extract(query, response, prompt)
                self.backend_failure = None
                trial["seconds"] = round(extraction.seconds, 3)
                if extraction.pattern is not None:
                    candidates.append(
                        Candidate(extraction.pattern, "model", extraction.prompt_version, extraction.model)
                    )
                    verdict = assess(extraction.pattern, query, response, context, self.settings.skills.min_grounding)
                    trial.update(outcome="proposed", passed=verdict.passed, grounding=round(verdict.grounding, 4))
                model_no_skill = extraction.no_skill
                if model_no_skill is not None:
                    trial["outcome"] = "no_skill"
            except Cancelled:
                log.info("extraction interrupted by stop; it stays queued", extra={"interaction": key})
                return False
            except BackendError as exc:
                self.backend_failure = exc
                self.observe(None)
                config = self.settings.extraction
                with self.lock:
                    state = self.learning.fail(
                        key, str(exc), config.max_attempts, config.backoff_seconds if backoff is None else backoff
                    )
                log.warning("extraction failed", extra={"interaction": key, "state": state, "error": str(exc)})
                return True
            except ExtractionError as exc:  # a proposal the model could not make valid; the draft may stand
                log.info("model proposal invalid", extra={"interaction": key, "error": str(exc)})
            finally:
                self.model_used = time.monotonic()
            kept: tuple[str, bool] | None = None
            if model_no_skill is not None and self.model_decides_no_skill():
                self._no_skill(key, f"the model: {model_no_skill}", trial["seconds"])
                self.observe(time.perf_counter() - started)
            else:
                chosen, quality, why = choose(candidates, query, response, context, self.settings.skills.min_grounding)
                self.observe(time.perf_counter() - started)
                if chosen is not None and quality is not None:
                    seconds = round(time.perf_counter() - started, 2)
                    kept = self._store(interaction, item.score, chosen, quality, seconds, trial["seconds"])
                elif model_no_skill is not None:  # the model said so, and no draft passes the gate either
                    self._no_skill(key, f"the model: {model_no_skill}", trial["seconds"])
                else:
                    with self.lock:
                        self.learning.finish(key, None, QueueState.REJECTED, why, trial["seconds"])
                    log.info("skill rejected by the quality gate", extra={"interaction": key, "why": why})
            if arm is not None:
                skill_id, merged = kept if kept else (None, False)
                with self.lock:
                    self.experiments.store.record(
                        Trial(arm[0].name, key, arm[1].name, arm[1].prompt, stored=kept is not None, merged=merged,
                              skill_id=skill_id, **trial)
                    )  # fmt: skip
                    self.experiments.conclude()
            return True

    def training_prompt(self, interaction: Interaction) -> str:
        """The cleaned question of a training record, after the context its answer draws on (bounded)."""
        from extractors.context import relevant_context, training_prompt

        query, response = interaction.query or "", interaction.response or ""
        limit = self.settings.dataset.max_context_chars
        return training_prompt(query, relevant_context(query, response, interaction.context or "", limit))

    def _no_skill(self, key: str, reason: str, seconds: float | None = None) -> None:
        with self.lock:
            self.learning.finish(key, None, QueueState.NO_SKILL, reason, seconds)
        log.info("no reusable skill", extra={"interaction": key, "reason": reason})

    def _store(
        self,
        interaction: Interaction,
        score: float,
        chosen: Candidate,
        quality: Assessment,
        seconds: float,
        model_seconds: float | None = None,
    ) -> tuple[str, bool]:
        """Keep a skill that passed the gate, and its cleaned exchange as a fine-tuning example; return the
        skill's id and whether it merged into one already there."""
        from storage.skills import Evidence

        query, response = interaction.query or "", interaction.response or ""
        figures = quality.figures(chosen.origin)
        with self.lock:
            evidence = Evidence(
                pattern=chosen.pattern.model_dump(),
                interaction_key=interaction.key,
                event_ids=interaction.event_ids,
                query=query,
                success=interaction.outcome in ("success", None),
                value_score=score,
                prompt_version=chosen.prompt_version,
                model=chosen.model,
                user=interaction.user,
                quality=figures,
            )
            skill_id, merged = self.library.add(evidence)
            prompt = self.training_prompt(interaction)
            self.datasets.add_example(
                prompt,
                response,
                {
                    "interaction": interaction.key,
                    "events": interaction.event_ids,
                    "source": interaction.source,
                    "value_score": score,
                    "skill_id": skill_id,
                    "skill": chosen.pattern.name,
                    "quality": figures,
                    "context_chars": len(prompt) - len(query),
                    "prompt_version": chosen.prompt_version,
                    "model": chosen.model,
                },
            )
            self.learning.finish(interaction.key, skill_id, seconds=model_seconds)
            self.remember_skill_count()
        log.info(
            "skill extracted",
            extra={
                "interaction": interaction.key,
                "skill": skill_id,
                "origin": chosen.origin,
                "grounding": quality.grounding,
                "merged": merged,
                "seconds": seconds,
            },
        )
        return skill_id, merged

    def remember_skill_count(self) -> None:
        """Keep the library's sizes (served and retired) in SQLite, so status never needs the vector store."""
        from daemon.recheck import RETIRED_SKILLS

        self.generation += 1
        self.learning.remember(SKILL_COUNT, self.library.count())
        self.learning.remember(RETIRED_SKILLS, self.library.count_retired())

    def recheck(self, force: bool = False) -> dict[str, Any]:
        """Hold the stored skills and training records to today's quality gate; retire those that fail."""
        from daemon.recheck import GATE_CHECKED, RETIRED_EXAMPLES, Recheck
        from extractors.gate import GATE_VERSION

        with self.extraction_lock, self.lock:
            summary = Recheck(self, force).run()
            self.learning.remember(RETIRED_EXAMPLES, self.datasets.stats()["retired"])
            self.learning.remember(GATE_CHECKED, GATE_VERSION)
            self.remember_skill_count()
        log.info("quality re-check done", extra={k: v for k, v in summary.items() if k != "reasons"})
        return summary

    def recheck_if_upgraded(self) -> dict[str, Any] | None:
        """The re-check, once, when what is stored was checked by an older gate (or none): after an upgrade."""
        from daemon.recheck import GATE_CHECKED
        from extractors.gate import GATE_VERSION
        from storage.datasets import Datasets

        with self.lock:  # the daemon's loop shares the connection: one stage at a time on it
            if self.learning.cursor(GATE_CHECKED) >= GATE_VERSION:
                return None
            stored = self.learning.cursor(SKILL_COUNT) > 0 or Datasets.path(self.settings.home).exists()
            if not stored:  # a fresh home: nothing to hold to the gate, and no model to load for it
                self.learning.remember(GATE_CHECKED, GATE_VERSION)
                return None
        return self.recheck()

    def run_until_idle(self, backoff: float = 0.0) -> None:
        """Every stage until each item is done or parked (what `skilld ingest` does)."""
        self.recheck_if_upgraded()
        while self.score_batch():
            pass
        while self.extract_one(backoff=backoff):
            while self.score_batch():
                pass

    # -- user actions -----------------------------------------------------------------------------------------
    def resolve(self, event_or_key: str) -> str:
        """The interaction key of an event id (or an interaction key itself)."""
        with self.lock:
            key = self.learning.interaction_of_event(event_or_key)
            if key is None and self.store.events_of(event_or_key):
                key = event_or_key
        if key is None:
            raise LookupError(f"no event or interaction {event_or_key!r}")
        return key

    def understood(self, source: str | None, limit: int) -> list[dict[str, Any]]:
        """What skilld made of the telemetry: the newest interactions with their signals and value scores."""
        rows: list[dict[str, Any]] = []
        with self.lock:
            for key in self.store.recent_interactions(source, limit):
                interaction = self.interaction(key)
                if interaction is None:
                    continue
                score = self.learning.score_of(key)
                rows.append(
                    {
                        "key": key,
                        "source": interaction.source,
                        "kind": interaction.kind,
                        "session": interaction.session,
                        "query": interaction.query,
                        "response": interaction.response,
                        "context_chars": len(interaction.context or ""),
                        "outcome": interaction.outcome,
                        "feedback": interaction.feedback,
                        "value_score": score["score"] if score else None,
                        "learnable": learnable(interaction),
                        "extraction": self.learning.extraction_of(key),
                        "event_ids": interaction.event_ids,
                        "signals": interaction.signals,
                        "model": interaction.model,
                        "cwd": interaction.cwd,
                        "branch": interaction.branch,
                        "tools_used": interaction.tools_used,
                        "files_modified": interaction.files_modified,
                        "accepted": interaction.accepted,
                        "started_at": interaction.started_at.isoformat() if interaction.started_at else None,
                        "ended_at": interaction.ended_at.isoformat() if interaction.ended_at else None,
                    }
                )
        return rows

    def explain(self, event_or_key: str) -> dict[str, Any]:
        """An interaction's value score with its five components and their reasons."""
        key = self.resolve(event_or_key)
        with self.lock:
            score = self.learning.score_of(key)
            interaction = self.interaction(key)
        if score is None:
            raise LookupError(f"{event_or_key} has no value score yet (scoring is pending, or it has no question)")
        assert interaction is not None
        weights = self.settings.scoring.weights.model_dump()
        return {
            "interaction": key,
            "event_ids": interaction.event_ids,
            "query": interaction.query,
            "extraction": self.learning.extraction_of(key),
            **score,
            "weights": weights,
            "threshold": self.settings.scoring.threshold,
        }

    def feedback(self, event_or_key: str, value: int, correction: str | None) -> dict[str, Any]:
        """Record a thumb (and maybe a correction) and re-score the interaction at once."""
        key = self.resolve(event_or_key)
        safe = self.privacy.redactor.text(correction) if correction else None
        with self.lock:
            self.learning.add_feedback(key, value, safe)
            interaction = self.interaction(key)
            if safe and interaction is not None and interaction.query and interaction.response:
                self.datasets.add_preference(
                    self.training_prompt(interaction),
                    safe.strip(),
                    interaction.response,
                    {"interaction": key, "source": interaction.source},
                )
        score = self.rescore(key)
        return {"interaction": key, "feedback": value, "correction": safe is not None, "score": score}
