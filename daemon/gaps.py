"""Knowledge gaps: topics people keep asking about that no served skill covers, ranked by recent demand.

Every interaction counts, successful or not: a question answered well from scratch ten times a week is still
a skill nobody has written. Topics are HDBSCAN clusters of all question vectors (see `daemon.failures` for
why HDBSCAN on unit vectors); a cluster is covered when a served skill's vector is within `covered_at`
cosine of its centroid. A topic only a retired skill would cover is reported with `only_retired`, because
the fix there is to revisit the retirement, not to learn a new skill.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import asdict, dataclass
from datetime import UTC, datetime
from typing import Any

import numpy as np

from daemon.failures import Case, dense_groups, distinct_questions, nearest_first

SkillVector = tuple[str, np.ndarray[Any, np.dtype[np.float32]]]


@dataclass(frozen=True)
class Gap:
    """A frequently asked topic no served skill covers, with the closest skill there is."""

    topic: str
    asked: int
    last_asked: datetime | None
    nearest_skill: str | None
    nearest_similarity: float
    only_retired: bool
    score: float
    questions: list[str]

    def as_dict(self) -> dict[str, Any]:
        out = asdict(self)
        out["last_asked"] = self.last_asked.isoformat() if self.last_asked else None
        return out


def _aware(moment: datetime) -> datetime:
    """Naive timestamps are taken as UTC so stored rows and a caller's clock can always be compared."""
    return moment if moment.tzinfo is not None else moment.replace(tzinfo=UTC)


def demand(asked_at: Sequence[datetime | None], now: datetime, half_life_days: float) -> float:
    """Frequency weighed by recency: sum over asks of 0.5 ** (age_days / half_life_days).

    Each ask counts 1 when it is new and half as much every `half_life_days`, so eight asks last week outrank
    eight asks last quarter, and a steady trickle keeps a topic alive. An ask with no timestamp adds nothing
    (it cannot be shown to be current) but still counts in `Gap.asked`, which breaks ties. Future timestamps
    (clock skew) count as now.
    """
    total = 0.0
    for moment in asked_at:
        if moment is not None:
            age_days = max((_aware(now) - _aware(moment)).total_seconds() / 86_400, 0.0)
            total += 0.5 ** (age_days / half_life_days)
    return total


def _closest(centroid: np.ndarray[Any, Any], skills: Sequence[SkillVector]) -> tuple[str | None, float]:
    """The skill whose (normalised) vector has the highest cosine to `centroid`, and that cosine."""
    if not skills:
        return None, 0.0
    matrix = np.stack([np.asarray(vector, dtype=np.float64) for _, vector in skills])
    norms = np.linalg.norm(matrix, axis=1)
    similarities = (matrix @ centroid) / np.where(norms > 0, norms, 1.0)
    best = int(np.argmax(similarities))
    return skills[best][0], float(similarities[best])


def knowledge_gaps(
    cases: Sequence[Case],
    served: Sequence[SkillVector],
    retired: Sequence[SkillVector],
    *,
    covered_at: float = 0.5,
    min_asked: int = 3,
    half_life_days: float = 14.0,
    now: datetime | None = None,
    limit: int = 10,
) -> list[Gap]:
    """Topics asked at least `min_asked` times with no served skill within `covered_at`, highest `score` first.

    `now` defaults to the latest `started_at` in `cases`: the ranking does not depend on it (every score
    shares the factor 0.5 ** (now / half_life)), and the data's own clock keeps a report over old data stable.
    """
    if not cases:
        return []
    vectors = np.stack([np.asarray(case.vector, dtype=np.float64) for case in cases])
    moments = [case.started_at for case in cases if case.started_at is not None]
    clock = now or (max(moments, key=_aware) if moments else datetime.now(UTC))
    gaps: list[Gap] = []
    for group in dense_groups(vectors, min_asked):
        centroid, order = nearest_first(vectors[group])
        served_name, served_similarity = _closest(centroid, served)
        if served_similarity >= covered_at:
            continue
        retired_name, retired_similarity = _closest(centroid, retired)
        nearest, similarity = (
            (retired_name, retired_similarity)
            if retired_similarity > served_similarity
            else (served_name, served_similarity)
        )
        members = [cases[i] for i in group[order]]
        asked_at = [m.started_at for m in members]
        dated = [moment for moment in asked_at if moment is not None]
        gaps.append(
            Gap(
                topic=members[0].question,
                asked=len(members),
                last_asked=max(dated, key=_aware) if dated else None,
                nearest_skill=nearest,
                nearest_similarity=round(similarity, 4),
                only_retired=retired_similarity >= covered_at,
                score=round(demand(asked_at, clock, half_life_days), 4),
                questions=distinct_questions([m.question for m in members]),
            )
        )
    gaps.sort(key=lambda gap: (-gap.score, -gap.asked, gap.topic))
    return gaps[:limit]
