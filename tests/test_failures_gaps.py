"""Failure clusters and knowledge gaps find planted topics in questions embedded by the real model."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import replace
from datetime import UTC, datetime, timedelta
from typing import Any

import numpy as np
import pytest

from daemon.failures import Case, FailureCluster, failed, failure_clusters, shared_traits
from daemon.gaps import Gap, demand, knowledge_gaps

pytestmark = pytest.mark.slow

NOW = datetime(2025, 6, 1, 12, 0, tzinfo=UTC)

DOCKER_SOCKET = [
    "docker build fails with permission denied while connecting to /var/run/docker.sock",
    "permission denied on the docker daemon socket when I run docker build",
    "got 'dial unix /var/run/docker.sock: connect: permission denied' during docker build",
    "docker build cannot reach the socket, permission denied, do I need the docker group?",
    "why does docker build say permission denied on docker.sock in my CI runner",
    "docker socket permission error breaks my image build",
]
FLAKY_FIXTURES = [
    "pytest fixture times out randomly in CI",
    "flaky timeout in a session-scoped pytest fixture",
    "my pytest fixture sometimes hangs until pytest-timeout kills the test",
    "intermittent pytest timeout failures inside a database fixture",
    "pytest fixtures time out only occasionally, how do I debug the flakiness",
]
ONE_OFF_FAILURES = [
    "regular expression that matches IPv6 addresses",
    "kubernetes pod stuck in CrashLoopBackOff after a deploy",
    "rust borrow checker complains about a closure capturing self",
    "translate this paragraph into formal French",
    "what's the derivative of x to the power x",
]
SUCCESSES = [
    # near the failing topics, so a success in a failure cluster would be caught
    "docker build permission denied on the socket, fixed by adding me to the docker group?",
    "how do I let a non-root user use the docker socket for builds",
    "pytest fixture timeout in CI, how to make it deterministic",
    # topics that only ever succeed
    "git rebase onto main without losing my commits",
    "how to squash the last three commits with interactive rebase",
    "undo a git rebase that went wrong",
    "rebase my feature branch on the latest main",
    "SQL left join versus inner join difference",
    "write a SQL query joining orders and customers",
    "why does my SQL join return duplicate rows",
    "join three tables in postgres",
    "react useEffect runs twice in development",
    "clean up a subscription in a react useEffect hook",
    "useEffect dependency array warning in react",
    "fetch data inside useEffect with async await",
    "python asyncio gather with a timeout",
    "run blocking code in an asyncio event loop",
    "cancel an asyncio task cleanly",
    "asyncio queue producer consumer example",
    "format a date as ISO 8601 in javascript",
    "center a div with flexbox",
    "read a csv file with pandas and skip the header",
    "bash loop over files with spaces in their names",
]


def _case(key: str, question: str, vector: np.ndarray[Any, Any], **fields: Any) -> Case:
    defaults: dict[str, Any] = {
        "source": "continue",
        "model": "gpt-x",
        "outcome": "success",
        "feedback": None,
        "value_score": 0.8,
        "latency_ms": 2_000.0,
        "tool_errors": 0,
        "started_at": NOW,
    }
    return Case(key=key, question=question, vector=vector, **(defaults | fields))


@pytest.fixture(scope="module")
def interactions(embedder: Any) -> list[Case]:
    """The planted failure topics, scattered one-off failures, and successes (some near the failures)."""
    cases: list[Case] = []
    for i, (question, vector) in enumerate(zip(DOCKER_SOCKET, embedder.encode(DOCKER_SOCKET), strict=True)):
        cases.append(
            _case(
                f"docker-{i}", question, vector, source="claude-code", outcome="failure", tool_errors=2, value_score=0.2
            )
        )
    for i, (question, vector) in enumerate(zip(FLAKY_FIXTURES, embedder.encode(FLAKY_FIXTURES), strict=True)):
        cases.append(_case(f"fixture-{i}", question, vector, outcome=None, feedback=-1, value_score=0.4))
    for i, (question, vector) in enumerate(zip(ONE_OFF_FAILURES, embedder.encode(ONE_OFF_FAILURES), strict=True)):
        cases.append(
            _case(f"oneoff-{i}", question, vector, outcome="failure", value_score=0.2, tool_errors=i % 2, feedback=-1)
        )
    for i, (question, vector) in enumerate(zip(SUCCESSES, embedder.encode(SUCCESSES), strict=True)):
        cases.append(_case(f"ok-{i}", question, vector, source="claude-code" if i % 2 else "continue"))
    return cases


@pytest.fixture(scope="module")
def clusters(interactions: list[Case]) -> list[FailureCluster]:
    return failure_clusters(interactions)


def _keys_with(cluster: FailureCluster, prefix: str) -> int:
    return sum(1 for key in cluster.keys if key.startswith(prefix))


def test_the_two_planted_failure_topics_are_the_two_biggest_clusters(clusters: list[FailureCluster]) -> None:
    assert len(clusters) >= 2
    biggest, second = clusters[0], clusters[1]
    assert set(biggest.keys) == {f"docker-{i}" for i in range(len(DOCKER_SOCKET))}
    assert set(second.keys) == {f"fixture-{i}" for i in range(len(FLAKY_FIXTURES))}
    assert biggest.size == len(DOCKER_SOCKET)
    assert biggest.representative in DOCKER_SOCKET
    assert biggest.questions[0] == biggest.representative
    assert len(biggest.questions) == 5


def test_shared_traits_name_what_the_planted_topic_has_in_common(clusters: list[FailureCluster]) -> None:
    docker, fixtures = clusters[0], clusters[1]
    assert "tool errors in 100%" in docker.shared
    assert "source claude-code in 100%" in docker.shared
    assert "negative feedback in 100%" in fixtures.shared
    assert not any(phrase.startswith("tool errors") for phrase in fixtures.shared)


def test_a_trait_every_interaction_has_is_not_shared(clusters: list[FailureCluster]) -> None:
    # every planted case used model gpt-x: that explains nothing about why these failed
    assert all(not phrase.startswith("model ") for cluster in clusters for phrase in cluster.shared)


def test_a_success_is_never_a_member_and_one_offs_stay_noise(
    clusters: list[FailureCluster], interactions: list[Case]
) -> None:
    members = {key for cluster in clusters for key in cluster.keys}
    assert not any(key.startswith("ok-") for key in members)
    assert not any(key.startswith("oneoff-") for key in members)
    by_key = {case.key: case for case in interactions}
    assert all(failed(by_key[key]) for key in members)


def test_a_single_failure_topic_among_one_offs_is_found(interactions: list[Case]) -> None:
    # HDBSCAN alone never returns its root cluster, so one topic among one-offs would all be noise
    without_fixtures = [case for case in interactions if not case.key.startswith("fixture-")]
    clusters = failure_clusters(without_fixtures)
    assert [set(cluster.keys) for cluster in clusters] == [{f"docker-{i}" for i in range(len(DOCKER_SOCKET))}]


def test_slow_answers_are_shared_when_the_cluster_is_slower_than_most(interactions: list[Case]) -> None:
    slowed = [replace(case, latency_ms=14_000.0) if case.key.startswith("fixture-") else case for case in interactions]
    fixtures = next(c for c in failure_clusters(slowed) if c.keys[0].startswith("fixture-"))
    assert "slow answers (median 14 s)" in fixtures.shared
    docker = next(c for c in failure_clusters(slowed) if c.keys[0].startswith("docker-"))
    assert not any(phrase.startswith("slow") for phrase in docker.shared)


def test_failed_means_failure_thumbs_down_or_low_value() -> None:
    vector = np.zeros(384, dtype=np.float32)
    assert failed(_case("a", "q", vector, outcome="failure"))
    assert failed(_case("b", "q", vector, feedback=-1))
    assert failed(_case("c", "q", vector, value_score=0.1))
    assert not failed(_case("d", "q", vector, value_score=0.1), low_value=0.05)
    assert not failed(_case("e", "q", vector, outcome=None, feedback=1, value_score=0.3))


def test_shared_traits_need_half_the_cluster_and_a_clear_lift() -> None:
    vector = np.zeros(384, dtype=np.float32)
    members = [_case(str(i), "q", vector, tool_errors=1 if i < 2 else 0) for i in range(5)]  # 40%: too few
    others = [_case(f"o{i}", "q", vector) for i in range(20)]
    assert not any(p.startswith("tool errors") for p in shared_traits(members, members + others))
    members = [_case(str(i), "q", vector, tool_errors=1 if i < 3 else 0) for i in range(5)]  # 60% vs 12%
    assert "tool errors in 60%" in shared_traits(members, members + others)
    common = [_case(f"c{i}", "q", vector, tool_errors=1) for i in range(20)]  # 60% vs 92%: not above the base rate
    assert not any(p.startswith("tool errors") for p in shared_traits(members, members + common))


def test_too_few_failures_for_a_cluster_give_none(interactions: list[Case]) -> None:
    assert failure_clusters(interactions[:2]) == []
    assert failure_clusters([c for c in interactions if c.key.startswith("ok-")]) == []


# Knowledge gaps --------------------------------------------------------------------------------------------

NGINX_ROTATION = [  # topic A: asked often, no skill
    "rotate nginx logs daily",
    "how do I set up daily log rotation for nginx access logs",
    "logrotate config for nginx that rotates every day",
    "nginx log files grow forever, rotate them each day",
    "daily rotation of /var/log/nginx/*.log with compression",
    "configure logrotate so nginx logs roll over every night",
    "make nginx reopen its logs after logrotate runs daily",
    "keep 14 days of rotated nginx logs",
]
PYTHON_VENV = [  # topic B: covered by a served skill
    "create a python virtual environment",
    "how do I make a venv for my python project",
    "activate a python venv on linux",
    "set up a virtualenv and install requirements into it",
    "python -m venv .venv then activate it",
    "isolate python dependencies with a virtual environment",
]
GPG_SIGNING = [  # topic C: covered only by a retired skill
    "sign my git commits with a gpg key",
    "configure git to gpg-sign every commit",
    "git commit signing with gpg not working",
    "set user.signingkey and enable commit signing in git",
    "verify gpg signatures on git commits",
]
POSTGRES_VACUUM = [  # topic D, asked long ago
    "when should I run VACUUM FULL in postgres",
    "postgres autovacuum is not keeping up with dead tuples",
    "tune autovacuum settings for a busy postgres table",
    "postgres table bloat, vacuum does not shrink it",
]
K8S_SECRETS = [  # topic E, as often as D but recently
    "create a kubernetes secret from an env file",
    "kubectl create secret generic from a .env file",
    "load environment variables into a kubernetes secret",
    "turn my dotenv file into a k8s secret",
]
ONE_OFF_QUESTIONS = [
    "what is the capital of australia",
    "explain big-O of quicksort",
    "convert celsius to fahrenheit in excel",
    "best way to learn touch typing",
]


def _asked(embedder: Any, prefix: str, questions: Sequence[str], days_ago: float) -> list[Case]:
    vectors = embedder.encode(list(questions))
    return [
        _case(f"{prefix}-{i}", q, v, started_at=NOW - timedelta(days=days_ago, hours=i))
        for i, (q, v) in enumerate(zip(questions, vectors, strict=True))
    ]


@pytest.fixture(scope="module")
def asked(embedder: Any) -> list[Case]:
    return (
        _asked(embedder, "nginx", NGINX_ROTATION, 1)
        + _asked(embedder, "venv", PYTHON_VENV, 1)
        + _asked(embedder, "gpg", GPG_SIGNING, 2)
        + _asked(embedder, "vacuum", POSTGRES_VACUUM, 60)
        + _asked(embedder, "secret", K8S_SECRETS, 1)
        + _asked(embedder, "oneoff", ONE_OFF_QUESTIONS, 1)
    )


@pytest.fixture(scope="module")
def skills(embedder: Any) -> tuple[list[tuple[str, np.ndarray[Any, Any]]], list[tuple[str, np.ndarray[Any, Any]]]]:
    served = [
        ("python-venv-setup", embedder.encode_one("Create and activate a Python virtual environment with venv")),
        ("css-flexbox-centering", embedder.encode_one("Center elements with CSS flexbox")),
    ]
    retired = [("git-gpg-signing", embedder.encode_one("Sign git commits with a GPG key"))]
    return served, retired


def _topic(gap: Gap, prefix: str, asked: list[Case]) -> bool:
    questions = {c.question for c in asked if c.key.startswith(f"{prefix}-")}
    return gap.topic in questions


def test_the_most_asked_uncovered_topic_is_the_top_gap(asked: list[Case], skills: Any) -> None:
    gaps = knowledge_gaps(asked, *skills, now=NOW)
    top = gaps[0]
    assert _topic(top, "nginx", asked)
    assert top.asked == len(NGINX_ROTATION)
    assert top.nearest_skill is not None and top.nearest_similarity < 0.5
    assert not top.only_retired
    assert top.last_asked == NOW - timedelta(days=1)


def test_a_topic_a_served_skill_covers_is_not_a_gap(asked: list[Case], skills: Any) -> None:
    gaps = knowledge_gaps(asked, *skills, now=NOW)
    assert not any(_topic(gap, "venv", asked) for gap in gaps)
    uncovered = knowledge_gaps(asked, [], skills[1], now=NOW)  # the same data with the skill gone
    assert any(_topic(gap, "venv", asked) for gap in uncovered)


def test_a_topic_only_a_retired_skill_covers_is_a_gap_marked_only_retired(asked: list[Case], skills: Any) -> None:
    gaps = knowledge_gaps(asked, *skills, now=NOW)
    gpg = next(gap for gap in gaps if _topic(gap, "gpg", asked))
    assert gpg.only_retired
    assert gpg.nearest_skill == "git-gpg-signing" and gpg.nearest_similarity >= 0.5
    assert not any(gap.only_retired for gap in gaps if gap is not gpg)


def test_with_equal_counts_the_more_recent_topic_ranks_first(asked: list[Case], skills: Any) -> None:
    gaps = knowledge_gaps(asked, *skills, now=NOW)
    ranks = {prefix: i for i, gap in enumerate(gaps) for prefix in ("vacuum", "secret") if _topic(gap, prefix, asked)}
    assert ranks.keys() == {"vacuum", "secret"}
    assert ranks["secret"] < ranks["vacuum"]
    # and the order flips when the old topic is the recent one
    swapped = [
        replace(c, started_at=NOW - timedelta(days=60 if c.key.startswith("secret") else 1))
        if c.key[:6] in ("secret", "vacuum")
        else c
        for c in asked
    ]
    flipped = knowledge_gaps(swapped, *skills, now=NOW)
    ranks = {
        prefix: i for i, gap in enumerate(flipped) for prefix in ("vacuum", "secret") if _topic(gap, prefix, asked)
    }
    assert ranks["vacuum"] < ranks["secret"]


def test_one_off_questions_are_not_gaps(asked: list[Case], skills: Any) -> None:
    gaps = knowledge_gaps(asked, *skills, now=NOW)
    assert not any(_topic(gap, "oneoff", asked) for gap in gaps)
    assert all(gap.asked >= 3 for gap in gaps)


def test_demand_halves_every_half_life() -> None:
    assert demand([NOW, NOW], NOW, 14.0) == pytest.approx(2.0)
    assert demand([NOW - timedelta(days=14)], NOW, 14.0) == pytest.approx(0.5)
    assert demand([None, NOW.replace(tzinfo=None) - timedelta(days=28)], NOW, 14.0) == pytest.approx(0.25)
    assert demand([NOW + timedelta(days=3)], NOW, 14.0) == pytest.approx(1.0)
