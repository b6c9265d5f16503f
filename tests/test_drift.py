"""Drift of value scores, source mix and topic mix, checked against planted truth."""

from __future__ import annotations

import json
import math

import numpy as np
import numpy.typing as npt
import pytest

from daemon.drift import Drift, categorical_drift, numeric_drift, psi, topic_drift

SOURCES = ["continue", "claude-code", "codex"]
Vectors = npt.NDArray[np.float64]


def _sources(rng: np.random.Generator, shares: list[float], n: int = 300) -> list[str]:
    return [str(s) for s in rng.choice(SOURCES, size=n, p=shares)]


def _unit(x: Vectors) -> Vectors:
    unit: Vectors = x / np.linalg.norm(x, axis=-1, keepdims=True)
    return unit


def _questions(rng: np.random.Generator, centres: Vectors, weights: list[float], n: int = 300) -> Vectors:
    """Unit vectors scattered around the chosen centres, as question embeddings cluster around topics."""
    picked = rng.choice(len(centres), size=n, p=weights)
    noise = 0.8 * rng.standard_normal((n, centres.shape[1])) / np.sqrt(centres.shape[1])
    return _unit(centres[picked] + noise)


def test_psi_is_zero_for_identical_shares_and_symmetric() -> None:
    assert psi([0.2, 0.3, 0.5], [0.2, 0.3, 0.5]) == 0.0
    forward, backward = psi([0.5, 0.5], [0.25, 0.75]), psi([0.25, 0.75], [0.5, 0.5])
    assert forward == pytest.approx(0.25 * math.log(2) + 0.25 * math.log(1.5))
    assert forward == pytest.approx(backward)


def test_psi_with_an_empty_bin_is_finite_and_uses_the_floor() -> None:
    value = psi([0.5, 0.5, 0.0], [0.4, 0.4, 0.2])
    assert math.isfinite(value)
    expected = 2 * (-0.1 * math.log(0.8)) + (0.2 - 1e-4) * math.log(0.2 / 1e-4)
    assert value == pytest.approx(expected)


def test_psi_rejects_shares_over_different_bins() -> None:
    with pytest.raises(ValueError, match="same bins"):
        psi([0.5, 0.5], [1.0])


def test_value_scores_from_the_same_distribution_are_stable() -> None:
    rng = np.random.default_rng(1)
    drift = numeric_drift("value_score", rng.beta(2, 5, 400), rng.beta(2, 5, 400))
    assert not drift.drifted
    assert drift.reason == "stable"
    assert drift.psi < 0.1
    assert drift.p_value is not None and drift.p_value > 0.01


@pytest.mark.parametrize("shift", ["mirrored", "mean_plus_0.15"])
def test_shifted_value_scores_drift(shift: str) -> None:
    rng = np.random.default_rng(2)
    reference = rng.beta(2, 5, 400)
    recent = rng.beta(5, 2, 400) if shift == "mirrored" else np.clip(rng.beta(2, 5, 400) + 0.15, 0, 1)
    drift = numeric_drift("value_score", reference, recent)
    assert drift.drifted
    assert drift.psi >= 0.2
    assert drift.p_value is not None and drift.p_value < 0.01
    assert drift.ks is not None and drift.ks > 0.2
    assert drift.psi == round(drift.psi, 4)
    assert drift.reason.startswith("PSI ")


def test_equal_distributions_are_flagged_at_most_two_percent_of_the_time() -> None:
    flagged = 0
    for seed in range(200):
        rng = np.random.default_rng(seed)
        flagged += numeric_drift("value_score", rng.beta(2, 5, 300), rng.beta(2, 5, 300)).drifted
    rate = flagged / 200
    print(f"false-alarm rate over 200 seeds, 300 samples a window: {rate:.1%}")
    assert rate <= 0.02


def test_a_tiny_shift_in_a_huge_sample_is_not_flagged_by_the_p_value_alone() -> None:
    rng = np.random.default_rng(3)
    drift = numeric_drift("value_score", rng.beta(2, 5, 20_000), rng.beta(2, 5, 20_000) + 0.02)
    assert drift.p_value is not None and drift.p_value < 0.01
    assert drift.psi < 0.2
    assert not drift.drifted


def test_too_few_samples_is_not_drifted_and_says_so() -> None:
    rng = np.random.default_rng(4)
    checks = [
        numeric_drift("value_score", rng.beta(2, 5, 20), rng.beta(5, 2, 20)),
        categorical_drift("source_mix", ["continue"] * 100, ["codex"] * 10),
        topic_drift(_unit(rng.standard_normal((10, 384))), _unit(rng.standard_normal((100, 384)))),
    ]
    for drift in checks:
        assert not drift.drifted
        assert drift.reason.startswith("too few samples (need 30")
        assert drift.p_value is None


def test_the_same_source_mix_is_stable() -> None:
    rng = np.random.default_rng(5)
    drift = categorical_drift("source_mix", _sources(rng, [0.7, 0.2, 0.1]), _sources(rng, [0.7, 0.2, 0.1]))
    assert not drift.drifted
    assert drift.psi < 0.1
    assert drift.ks is None
    assert (drift.reference, drift.recent) == (300, 300)


def test_a_changed_source_mix_drifts() -> None:
    rng = np.random.default_rng(6)
    drift = categorical_drift("source_mix", _sources(rng, [0.7, 0.2, 0.1]), _sources(rng, [0.3, 0.2, 0.5]))
    assert drift.drifted
    assert drift.psi >= 0.4
    assert drift.p_value is not None and drift.p_value < 1e-6


def test_a_brand_new_source_counts_as_drift_with_a_finite_psi() -> None:
    rng = np.random.default_rng(7)
    recent = _sources(rng, [0.7, 0.2, 0.1], 240) + ["aider"] * 60
    drift = categorical_drift("source_mix", _sources(rng, [0.7, 0.2, 0.1]), recent)
    assert drift.drifted
    assert math.isfinite(drift.psi)
    assert drift.psi >= 1.0  # the new source alone adds about 0.2 * ln(0.2 / 1e-4)


def test_a_shift_of_twice_the_psi_threshold_drifts_even_before_the_test_is_significant() -> None:
    recent = ["continue"] * 52 + ["codex"] * 40 + ["aider"] * 8
    drift = categorical_drift("source_mix", ["continue"] * 60 + ["codex"] * 40, recent)
    assert drift.p_value is not None and drift.p_value >= 0.01
    assert drift.psi >= 0.4
    assert drift.drifted
    assert "twice the 0.2 threshold" in drift.reason


def test_the_same_topic_mixture_is_stable() -> None:
    rng = np.random.default_rng(8)
    centres = _unit(rng.standard_normal((4, 384)))
    weights = [0.4, 0.3, 0.2, 0.1]
    drift = topic_drift(_questions(rng, centres, weights), _questions(rng, centres, weights))
    assert drift.name == "topic_mix"
    assert not drift.drifted
    assert drift.psi < 0.15


def test_a_new_topic_taking_half_the_questions_drifts() -> None:
    rng = np.random.default_rng(9)
    centres = _unit(rng.standard_normal((5, 384)))
    reference = _questions(rng, centres[:4], [0.25] * 4)
    drift = topic_drift(reference, _questions(rng, centres, [0.125] * 4 + [0.5]))
    assert drift.drifted
    assert drift.psi >= 0.4
    assert drift.p_value is not None and drift.p_value < 0.01


def test_strongly_changed_topic_weights_drift() -> None:
    rng = np.random.default_rng(10)
    centres = _unit(rng.standard_normal((4, 384)))
    reference = _questions(rng, centres, [0.25] * 4)
    drift = topic_drift(reference, _questions(rng, centres, [0.7, 0.1, 0.1, 0.1]))
    assert drift.drifted
    assert drift.psi >= 0.2
    assert drift.p_value is not None and drift.p_value < 0.01


def test_topic_drift_rejects_embeddings_of_different_widths() -> None:
    with pytest.raises(ValueError, match="equal width"):
        topic_drift(np.ones((40, 384)), np.ones((40, 128)))


def test_as_dict_is_json_ready_and_keeps_every_field() -> None:
    drift = Drift("value_score", 300, 280, 0.1234, 0.08, 0.2, False, "stable")
    payload = json.loads(json.dumps(drift.as_dict()))
    assert payload == {
        "name": "value_score",
        "reference": 300,
        "recent": 280,
        "psi": 0.1234,
        "ks": 0.08,
        "p_value": 0.2,
        "drifted": False,
        "reason": "stable",
    }
