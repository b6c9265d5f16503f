"""The value score: five components with the seed's weights, each explained.

Differences from the seed, on purpose: a stream with no outcome field infers it from thumbs and
acceptance (otherwise a real editor plugin's chats could never become skills); implicit feedback
(accepted, copied, modified) counts when there is no explicit thumb (the seed returned 0.5 for "no
feedback" before ever looking at them); novelty compares the query's embedding with the skills, whose
vectors embed their source questions, so each interaction is embedded once.
"""

from __future__ import annotations

import re
from dataclasses import asdict, dataclass

from daemon.config import ScoringConfig
from daemon.interaction import Interaction

_CODE = re.compile(r"```|^(?: {4}|\t)\S|`[^`\n]{2,}`", re.MULTILINE)
_FENCED = re.compile(r"```.*?(?:```|\Z)", re.DOTALL)


@dataclass(frozen=True)
class ValueScore:
    """A score in [0, 1], its five components, and why each has its value."""

    score: float
    outcome: float
    feedback: float
    reusability: float
    complexity: float
    novelty: float
    reasons: dict[str, str]

    def as_dict(self) -> dict[str, object]:
        return asdict(self)


def outcome_quality(interaction: Interaction, neutral: float) -> tuple[float, str]:
    """Success (faster is better), partial, failure; inferred from thumbs or acceptance when not reported."""
    outcome = interaction.outcome
    inferred = ""
    if outcome is None:
        if interaction.feedback == 1 or interaction.accepted is True:
            outcome, inferred = "success", " (inferred from positive feedback)"
        elif interaction.feedback == -1 or interaction.accepted is False:
            outcome, inferred = "failure", " (inferred from negative feedback)"
        else:
            return neutral, "no outcome and no feedback: neutral"
    if outcome == "success":
        iterations = interaction.iterations or 1
        value = 1.0 if iterations <= 3 else 0.8 if iterations <= 5 else 0.6
        return value, f"success in {iterations} iteration(s){inferred}"
    if outcome == "partial":
        return 0.4, f"partial success{inferred}"
    return 0.2, f"failure{inferred}"


def user_feedback(interaction: Interaction) -> tuple[float, str]:
    """Explicit thumbs first, then implicit signals."""
    if interaction.feedback == 1:
        return 1.0, "thumbs up"
    if interaction.feedback == -1:
        return 0.0, "thumbs down"
    if interaction.accepted is True:
        return 0.8, "accepted"
    if interaction.copied:
        return 0.8, "copied to clipboard"
    if interaction.modified:
        return 0.6, "modified before use"
    if interaction.accepted is False:
        return 0.2, "rejected"
    return 0.5, "no feedback"


def reusability(similar_queries: int) -> tuple[float, str]:
    """How often similar questions were asked before (cosine >= the configured threshold)."""
    value = 1.0 if similar_queries >= 5 else 0.7 if similar_queries >= 3 else 0.5 if similar_queries >= 1 else 0.3
    return value, f"{similar_queries} similar earlier question(s)"


def has_code(text: str) -> bool:
    """Whether an answer contains code (fences, indented blocks, inline code)."""
    return bool(_CODE.search(text))


def has_explanation(text: str) -> bool:
    """Whether an answer has prose beyond its code."""
    prose = _FENCED.sub(" ", text)
    return len(re.findall(r"[A-Za-z]{2,}", prose)) >= 8


def complexity(interaction: Interaction) -> tuple[float, str]:
    """Multi-step, tools, multi-file, code plus explanation (explicit fields first, else read from the text)."""
    response = interaction.response or ""
    factors: list[tuple[float, str]] = []
    if (interaction.steps or 1) > 1:
        factors.append((0.3, "multi-step"))
    if interaction.tools_used or (interaction.tool_count or 0) > 0:
        factors.append((0.2, "used tools"))
    if max(len(interaction.files_modified), interaction.file_count or 0) > 3:
        factors.append((0.3, "changed more than 3 files"))
    code = interaction.has_code if interaction.has_code is not None else has_code(response)
    explained = interaction.has_explanation if interaction.has_explanation is not None else has_explanation(response)
    if code and explained:
        factors.append((0.2, "code with explanation"))
    value = min(sum(f for f, _ in factors), 1.0)
    return value, ", ".join(reason for _, reason in factors) or "simple"


def novelty(best_skill_similarity: float | None, threshold: float) -> tuple[float, str]:
    """1 when no skill is within the threshold, else 1 - the highest similarity."""
    if best_skill_similarity is None or best_skill_similarity < threshold:
        return 1.0, "no similar skill yet"
    return 1.0 - best_skill_similarity, f"a skill is {best_skill_similarity:.2f} similar"


def value_score(
    interaction: Interaction, similar_queries: int, best_skill_similarity: float | None, config: ScoringConfig
) -> ValueScore:
    """The weighted value score of one interaction."""
    w = config.weights
    parts = {
        "outcome": outcome_quality(interaction, config.neutral_outcome),
        "feedback": user_feedback(interaction),
        "reusability": reusability(similar_queries),
        "complexity": complexity(interaction),
        "novelty": novelty(best_skill_similarity, config.similar_skill),
    }
    total = (
        w.outcome * parts["outcome"][0]
        + w.feedback * parts["feedback"][0]
        + w.reusability * parts["reusability"][0]
        + w.complexity * parts["complexity"][0]
        + w.novelty * parts["novelty"][0]
    )
    weight_sum = w.outcome + w.feedback + w.reusability + w.complexity + w.novelty
    score = round(total / weight_sum if weight_sum else 0.0, 4)
    component = {name: round(value, 4) for name, (value, _) in parts.items()}
    return ValueScore(
        score,
        component["outcome"],
        component["feedback"],
        component["reusability"],
        component["complexity"],
        component["novelty"],
        {name: reason for name, (_, reason) in parts.items()},
    )
