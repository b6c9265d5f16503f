"""Is skilld learning? The data the analyses need, read from the stores: drift of the recent window against
the reference one (`daemon/drift.py`), failure clusters (`daemon/failures.py`), knowledge gaps
(`daemon/gaps.py`) and everything the report shows (`daemon/report.py`).

The windows are by the time an interaction happened (its telemetry's time). Vectors come from the interaction
history in Qdrant (each scored question is embedded once, when scored); nothing is embedded again here.
"""

from __future__ import annotations

from collections import Counter
from datetime import UTC, date, datetime, timedelta
from typing import TYPE_CHECKING, Any

import numpy as np

from daemon.config import InsightsConfig
from daemon.drift import Drift, DriftWindows, judge_drift
from daemon.failures import Case, FailureCluster, failure_clusters
from daemon.gaps import Gap, knowledge_gaps
from daemon.isolated import in_child
from storage.learning import ScoreRow
from storage.vectors.base import INTERACTIONS, RETIRED_SKILLS, SKILLS, point_id

if TYPE_CHECKING:
    from daemon.app import Skilld
    from daemon.pipeline import Learner
    from daemon.report import ReportData

# At most this many interactions per window are read: enough for the tests, bounded for a busy workstation.
WINDOW_LIMIT = 2000
COMPONENTS = ("outcome", "feedback", "reusability", "complexity", "novelty")


def _iso(moment: datetime) -> str:
    return moment.astimezone(UTC).isoformat(timespec="milliseconds")


def _vectors(learner: Learner, keys: list[str]) -> dict[str, tuple[np.ndarray[Any, Any], dict[str, Any]]]:
    """The stored question vectors (with their payloads) of these interactions, by key."""
    found: dict[str, tuple[np.ndarray[Any, Any], dict[str, Any]]] = {}
    for start in range(0, len(keys), 256):
        ids = [point_id("interaction", key) for key in keys[start : start + 256]]
        for hit in learner.vectors.retrieve(INTERACTIONS, ids, with_vectors=True):
            if hit.vector is not None:
                found[str(hit.payload.get("key"))] = (np.asarray(hit.vector, dtype=np.float32), hit.payload)
    return found


def drift(learner: Learner, config: InsightsConfig, now: datetime | None = None) -> list[Drift]:
    """Value scores, source mix and topic mix of the recent window against the reference window."""
    now = now or datetime.now(UTC)
    split = now - timedelta(days=config.window_days)
    start = split - timedelta(days=config.reference_days)
    with learner.lock:
        recent = learner.learning.scores_between(_iso(split), _iso(now), WINDOW_LIMIT)
        reference = learner.learning.scores_between(_iso(start), _iso(split), WINDOW_LIMIT)
        vectors = _vectors(learner, [r.interaction_key for r in [*recent, *reference]]) if recent and reference else {}
    old = [vectors[r.interaction_key][0] for r in reference if r.interaction_key in vectors]
    new = [vectors[r.interaction_key][0] for r in recent if r.interaction_key in vectors]
    shape = (0, 384)
    windows = DriftWindows(
        [r.score for r in reference], [r.score for r in recent],
        [r.source for r in reference], [r.source for r in recent],
        np.stack(old) if old else np.zeros(shape), np.stack(new) if new else np.zeros(shape),
    )  # fmt: skip
    judge = (windows, config.psi_threshold, config.alpha, config.min_samples)
    return in_child(judge_drift, *judge) if windows.judgeable(config.min_samples) else judge_drift(*judge)


def cases(learner: Learner, since_days: float, now: datetime | None = None) -> list[Case]:
    """The interactions scored in the last `since_days`, as the failure and gap analyses see them."""
    now = now or datetime.now(UTC)
    with learner.lock:
        rows = learner.learning.scores_between(_iso(now - timedelta(days=since_days)), _iso(now), WINDOW_LIMIT)
        vectors = _vectors(learner, [r.interaction_key for r in rows])
    found: list[Case] = []
    for row in rows:
        if row.interaction_key not in vectors:
            continue
        with learner.lock:  # one at a time: the daemon's other stages go on between two
            interaction = learner.interaction(row.interaction_key)
        if interaction is None:  # its events expired (retention) after it was scored
            continue
        vector, payload = vectors[row.interaction_key]
        found.append(
            Case(
                key=row.interaction_key,
                question=str(payload.get("query") or interaction.query or ""),
                vector=vector,
                source=interaction.source,
                model=interaction.model,
                outcome=interaction.outcome,
                feedback=interaction.feedback,
                value_score=row.score,
                latency_ms=interaction.latency_ms,
                tool_errors=int(interaction.signals.get("tool_errors", 0) or 0),
                started_at=interaction.started_at,
            )
        )
    return found


def failures(learner: Learner, config: InsightsConfig, since_days: float) -> list[FailureCluster]:
    """Clusters of failed and low-value interactions of the last `since_days`, biggest first."""
    return in_child(failure_clusters, cases(learner, since_days), low_value=config.low_value)


def _skill_vectors(learner: Learner, collection: str) -> list[tuple[str, np.ndarray[Any, Any]]]:
    return [
        (str(hit.payload.get("name", hit.id)), np.asarray(hit.vector, dtype=np.float32))
        for hit in learner.vectors.scroll(collection, with_vectors=True)
        if hit.vector is not None
    ]


def gaps(learner: Learner, config: InsightsConfig, since_days: float) -> list[Gap]:
    """Topics asked often in the last `since_days` that no served skill answers, most wanted first."""
    asked = cases(learner, since_days)
    with learner.lock:
        learner.library.count()  # both skill collections exist
        served, retired = _skill_vectors(learner, SKILLS), _skill_vectors(learner, RETIRED_SKILLS)
    return in_child(knowledge_gaps, asked, served, retired, covered_at=config.covered_at, min_asked=config.min_asked)


def _per_day(days: Counter[str], since: date) -> list[tuple[date, int]]:
    return sorted((date.fromisoformat(d), n) for d, n in days.items() if d and date.fromisoformat(d) >= since)


def report_data(app: Skilld, since_days: int) -> ReportData:
    """Everything `skilld report` shows, for the last `since_days` days."""
    from daemon.report import ReportData

    learner, config = app.learner, app.settings.insights
    now = datetime.now(UTC)
    since = now - timedelta(days=since_days)
    status = app.status()
    with app.lock:
        scores: list[ScoreRow] = learner.learning.scores_between(_iso(since), _iso(now), 100_000)
        outcomes = learner.learning.queue_outcomes_by_day(_iso(since))
        skills = list(learner.library.all())
        added = learner.datasets.added_per_day()
        versions = app.models.versions()
        seconds = learner.learning.extraction_seconds(_iso(since))
    per_day: dict[date, dict[str, int]] = {}
    names = {"done": "stored", "no_skill": "no_skill", "rejected": "rejected", "parked": "parked"}
    for day, state, count in outcomes:
        if state in names:
            per_day.setdefault(date.fromisoformat(day), {})[names[state]] = count
    total, growth = 0, []
    for day, n in added:
        total += n
        growth.append((date.fromisoformat(day), total))
    judged = [s.skill for s in skills if s.skill.helped + s.skill.not_helped > 0]
    return ReportData(
        generated_at=now,
        since_days=since_days,
        headline={k: status.get(k) for k in ("events", "interactions", "scored", "high_value", "skills")}
        | {"retired": status["retired"]["skills"], "dataset_examples": status.get("dataset_examples")},
        value_scores=[r.score for r in scores],
        components={name: [getattr(r, name) for r in scores] for name in COMPONENTS},
        skills_per_day=_per_day(Counter(s.skill.created_at[:10] for s in skills), since.date()),
        extraction_outcomes_per_day=sorted(per_day.items()),
        usefulness=[
            (s.name, s.usefulness, s.usefulness_interval[0], s.usefulness_interval[1], s.helped + s.not_helped)
            for s in judged
        ],
        dataset_per_day=[(d, n) for d, n in growth if d >= since.date()],
        extraction_seconds=seconds,
        drift=[d.as_dict() for d in drift(learner, config, now)],
        failures=[c.as_dict() for c in failures(learner, config, since_days)],
        gaps=[g.as_dict() for g in gaps(learner, config, since_days)],
        finetune=[_version(v) for v in versions],
        experiments=[
            {"name": e["name"], "arms": e["arms"], "status": e["state"], "decision": e.get("decision") or ""}
            for e in app.experiments("list")
        ],
    )


def _version(row: dict[str, Any]) -> dict[str, Any]:
    """A model version as the report's fine-tuning history shows it (held-out losses from its metrics)."""
    metrics = row.get("metrics") or {}  # parsed by the model registry
    return {
        "id": row["id"],
        "created_at": row["created_at"],
        "status": row["status"],
        "loss_before": metrics.get("loss_before"),  # the base model, on the same held-out examples
        "eval_loss": metrics.get("loss_after"),  # the version's held-out loss
    }
