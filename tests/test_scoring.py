"""The value score: the seed's five components and weights, explained, with its documented fixes."""

from __future__ import annotations

import pytest

from daemon.config import ScoringConfig
from daemon.interaction import Interaction
from daemon.scoring import (
    complexity,
    has_code,
    has_explanation,
    outcome_quality,
    reusability,
    user_feedback,
    value_score,
)

ANSWER = "Use slicing, which copies the list and leaves the original untouched:\n```python\nys = xs[::-1]\n```"


def chat(**fields: object) -> Interaction:
    return Interaction.model_validate(
        {"key": "k", "source": "continue", "kind": "chat", "query": "q?", "response": ANSWER, **fields}
    )


def test_a_thumbs_up_chat_with_explained_code_is_high_value() -> None:
    score = value_score(chat(feedback=1), similar_queries=0, best_skill_similarity=None, config=ScoringConfig())
    assert (score.outcome, score.feedback, score.reusability, score.complexity, score.novelty) == (1, 1, 0.3, 0.2, 1)
    assert score.score == pytest.approx(0.4 + 0.2 + 0.06 + 0.02 + 0.1)
    assert score.reasons["outcome"] == "success in 1 iteration(s) (inferred from positive feedback)"


def test_a_chat_without_any_signal_is_neutral_and_below_the_threshold() -> None:
    score = value_score(chat(), 0, None, ScoringConfig())
    assert score.outcome == 0.5 and score.feedback == 0.5 and score.score < 0.7
    assert value_score(chat(), 0, None, ScoringConfig(neutral_outcome=0.9)).outcome == 0.9


@pytest.mark.parametrize(
    ("fields", "expected"),
    [
        ({"outcome": "success", "iterations": 2}, 1.0),
        ({"outcome": "success", "iterations": 4}, 0.8),
        ({"outcome": "success", "iterations": 9}, 0.6),
        ({"outcome": "partial"}, 0.4),
        ({"outcome": "failure"}, 0.2),
        ({"accepted": False}, 0.2),
        ({"feedback": -1}, 0.2),
        ({"accepted": True}, 1.0),
    ],
)
def test_outcome_quality_follows_the_seed(fields: dict[str, object], expected: float) -> None:
    assert outcome_quality(chat(**fields), 0.5)[0] == expected


@pytest.mark.parametrize(
    ("fields", "expected"),
    [
        ({"feedback": 1}, 1.0),
        ({"feedback": -1}, 0.0),
        ({"accepted": True}, 0.8),
        ({"copied": True}, 0.8),
        ({"modified": True}, 0.6),
        ({"accepted": False}, 0.2),
        ({}, 0.5),
        ({"feedback": 0, "copied": True}, 0.8),
    ],
)
def test_implicit_feedback_counts_when_there_is_no_explicit_thumb(fields: dict[str, object], expected: float) -> None:
    assert user_feedback(chat(**fields))[0] == expected


@pytest.mark.parametrize(("similar", "expected"), [(0, 0.3), (1, 0.5), (2, 0.5), (3, 0.7), (5, 1.0), (9, 1.0)])
def test_reusability_from_similar_earlier_questions(similar: int, expected: float) -> None:
    assert reusability(similar)[0] == expected


def test_novelty_is_the_inverse_of_the_nearest_skill_above_the_threshold() -> None:
    config = ScoringConfig()
    assert value_score(chat(), 0, 0.95, config).novelty == pytest.approx(0.05)
    assert value_score(chat(), 0, 0.89, config).novelty == 1.0
    assert value_score(chat(), 0, None, config).novelty == 1.0


def test_complexity_reads_explicit_fields_and_infers_code_from_text() -> None:
    busy = chat(steps=3, tool_count=2, files_modified=["a", "b", "c", "d"], has_code=True, has_explanation=True)
    assert complexity(busy)[0] == 1.0
    assert complexity(chat(response="ok"))[0] == 0.0
    assert has_code(ANSWER) and has_explanation(ANSWER)
    assert not has_code("plain words only") and not has_explanation("```\ncode only\n```")


def test_weights_are_configuration() -> None:
    config = ScoringConfig.model_validate(
        {"weights": {"outcome": 1, "feedback": 0, "reusability": 0, "complexity": 0, "novelty": 0}}
    )
    assert value_score(chat(feedback=1), 0, None, config).score == 1.0
