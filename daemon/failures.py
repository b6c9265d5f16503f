"""Where the assistant keeps failing: dense groups of failed questions and what their members share.

A single failure says little; six failures on near-identical questions, all with tool errors, name a
problem worth a skill (or a bug report). The analysis is a pure function of plain `Case` rows so the caller
decides what to read from storage and the tests can plant the truth.

Clustering is HDBSCAN on the unit question vectors with the euclidean metric: for unit vectors
``|a - b|^2 = 2 - 2 cos(a, b)``, so euclidean order is cosine order, and the tree-based neighbour search
stays available (it has no cosine metric). HDBSCAN rather than k-means because the number of topics is
unknown and one-off questions must stay noise instead of being forced into the nearest group.
"""

from __future__ import annotations

import math
import statistics
from collections import Counter
from collections.abc import Callable, Sequence
from dataclasses import asdict, dataclass
from datetime import datetime
from typing import Any

import numpy as np

# A trait is "shared" when at least half the cluster has it and its share there is this much above its share
# among all given cases: a trait every interaction has (one model, one source) explains nothing.
_MIN_SHARE = 0.5
_MIN_LIFT = 0.2
# "Slow" is relative to the data: slower than three quarters of all answers, so the base rate is at most 25%.
_SLOW_PERCENTILE = 75.0
_EXAMPLES = 5
# Least cosine between a member and its cluster's centre: paraphrases of one question measured 0.69-0.96 with
# all-MiniLM-L6-v2, unrelated questions that HDBSCAN pulled in 0.29-0.38.
_COHESION = 0.5


@dataclass(frozen=True)
class Case:
    """One interaction as these analyses see it: the question, its vector, and how it went."""

    key: str
    question: str
    vector: np.ndarray[Any, np.dtype[np.float32]]
    source: str
    model: str | None
    outcome: str | None
    feedback: int | None
    value_score: float
    latency_ms: float | None
    tool_errors: int
    started_at: datetime | None


@dataclass(frozen=True)
class FailureCluster:
    """A group of similar failed questions, the one nearest its centre, and the traits its members share."""

    size: int
    representative: str
    questions: list[str]
    shared: list[str]
    keys: list[str]

    def as_dict(self) -> dict[str, Any]:
        return asdict(self)


def failed(case: Case, low_value: float = 0.3) -> bool:
    """Reported failure, a thumbs down, or a value score below `low_value`."""
    return case.outcome == "failure" or case.feedback == -1 or case.value_score < low_value


def dense_groups(vectors: np.ndarray[Any, Any], min_size: int) -> list[np.ndarray[Any, np.dtype[np.intp]]]:
    """Row indices of each dense group of unit vectors, noise dropped, biggest first.

    Fewer rows than `min_size` cannot hold a group, so that returns nothing instead of letting HDBSCAN raise.
    Two corrections to plain HDBSCAN, both seen on real MiniLM vectors of a few dozen questions:
    - HDBSCAN never returns the root as a cluster, so one real topic among scattered one-offs (the common case
      on a quiet install) came back as all noise. When nothing is found, it is asked again allowing a single
      cluster, keeping only points that join it within the cohesion distance (without that bound it keeps only
      the densest two or three).
    - A cluster absorbs a nearby one-off ("kubernetes pod in CrashLoopBackOff" joined six docker-socket
      questions at cosine 0.29 to their centre, while paraphrases sit at 0.7-0.95), so members below
      `_COHESION` cosine to the centroid are dropped, and a group left below `min_size` with them.
    """
    size = max(min_size, 2)
    if len(vectors) < size:
        return []
    data = np.asarray(vectors, dtype=np.float64)
    from sklearn.cluster import HDBSCAN  # heavy: the daemon runs this in a child (daemon/isolated.py)

    labels = HDBSCAN(min_cluster_size=size, metric="euclidean", copy=True).fit_predict(data)
    if labels.max() < 0:
        single = HDBSCAN(
            min_cluster_size=size,
            metric="euclidean",
            allow_single_cluster=True,
            cluster_selection_epsilon=math.sqrt(2 - 2 * _COHESION),  # euclidean distance at that cosine
            copy=True,
        )
        labels = single.fit_predict(data)
    groups: list[np.ndarray[Any, np.dtype[np.intp]]] = []
    for label in sorted(set(labels.tolist()) - {-1}):
        members = np.flatnonzero(labels == label)
        centroid, _ = nearest_first(data[members])
        members = members[data[members] @ centroid >= _COHESION]
        if len(members) >= size:
            groups.append(members)
    return sorted(groups, key=len, reverse=True)


def nearest_first(vectors: np.ndarray[Any, Any]) -> tuple[np.ndarray[Any, Any], np.ndarray[Any, np.dtype[np.intp]]]:
    """The unit centroid of `vectors` and their row order by cosine to it, closest first."""
    centroid = vectors.mean(axis=0)
    norm = float(np.linalg.norm(centroid))
    if norm > 0:
        centroid = centroid / norm
    order = np.argsort(-(vectors @ centroid), kind="stable")
    return centroid, order


def distinct_questions(questions: Sequence[str], limit: int = _EXAMPLES) -> list[str]:
    """The first `limit` distinct questions, in order: a question asked ten times is one example."""
    return list(dict.fromkeys(questions))[:limit]


def _share(cases: Sequence[Case], has: Callable[[Case], bool]) -> float:
    return sum(1 for case in cases if has(case)) / len(cases) if cases else 0.0


def _slow_threshold(cases: Sequence[Case]) -> float | None:
    latencies = [case.latency_ms for case in cases if case.latency_ms is not None]
    return float(np.percentile(latencies, _SLOW_PERCENTILE)) if latencies else None


def _traits(
    members: Sequence[Case], everyone: Sequence[Case], low_value: float
) -> list[tuple[str, Callable[[Case], bool]]]:
    """Candidate traits as (phrase prefix, test); source and model come from the members' most common values."""
    traits: list[tuple[str, Callable[[Case], bool]]] = [
        ("tool errors", lambda c: c.tool_errors > 0),
        ("negative feedback", lambda c: c.feedback == -1),
        ("reported failure", lambda c: c.outcome == "failure"),
        (f"value below {low_value:g}", lambda c: c.value_score < low_value),
    ]
    slow = _slow_threshold(everyone)
    if slow is not None:
        member_latencies = [c.latency_ms for c in members if c.latency_ms is not None]
        median_s = statistics.median(member_latencies) / 1000 if member_latencies else 0.0
        traits.append(
            (f"slow answers (median {median_s:.0f} s)", lambda c: c.latency_ms is not None and c.latency_ms > slow)
        )
    source, _ = Counter(c.source for c in members).most_common(1)[0]
    traits.append((f"source {source}", lambda c: c.source == source))
    models = Counter(c.model for c in members if c.model is not None).most_common(1)
    if models:
        model = models[0][0]
        traits.append((f"model {model}", lambda c: c.model == model))
    return traits


def shared_traits(members: Sequence[Case], everyone: Sequence[Case], low_value: float = 0.3) -> list[str]:
    """Phrases for traits over-represented in `members` relative to `everyone`, most common first."""
    found: list[tuple[float, str]] = []
    for phrase, has in _traits(members, everyone, low_value):
        share = _share(members, has)
        if share >= _MIN_SHARE and share - _share(everyone, has) >= _MIN_LIFT:
            label = phrase if phrase.startswith("slow") else f"{phrase} in {round(share * 100)}%"
            found.append((share, label))
    return [label for _, label in sorted(found, key=lambda item: -item[0])]


def failure_clusters(
    cases: Sequence[Case], *, min_cluster_size: int = 3, low_value: float = 0.3, limit: int = 10
) -> list[FailureCluster]:
    """Dense groups of failed cases, biggest first; shared traits are judged against all `cases`."""
    failures = [case for case in cases if failed(case, low_value)]
    if not failures:
        return []
    vectors = np.stack([case.vector for case in failures])
    clusters: list[FailureCluster] = []
    for group in dense_groups(vectors, min_cluster_size)[:limit]:
        _, order = nearest_first(vectors[group])
        members = [failures[i] for i in group[order]]
        clusters.append(
            FailureCluster(
                size=len(members),
                representative=members[0].question,
                questions=distinct_questions([m.question for m in members]),
                shared=shared_traits(members, cases, low_value),
                keys=[m.key for m in members],
            )
        )
    return clusters
