"""A/B test statistics: known numbers, scipy as the reference, and simulated experiments for error rates."""

from __future__ import annotations

import json
import math
from statistics import NormalDist

import numpy as np
import pytest
from scipy import stats

from daemon.abtest import (
    Comparison,
    Guard,
    assign,
    compare_means,
    compare_proportions,
    decide,
    thompson_shares,
)


def textbook_n_two_proportions(p1: float, p2: float, alpha: float, power: float) -> float:
    """Fleiss (1981) sample size per group, written out here apart from the module's code."""
    z = NormalDist()
    q1, q2 = 1 - p1, 1 - p2
    p_bar = (p1 + p2) / 2
    numerator = (
        z.inv_cdf(1 - alpha / 2) * (2 * p_bar * (1 - p_bar)) ** 0.5 + z.inv_cdf(power) * (p1 * q1 + p2 * q2) ** 0.5
    )
    return float(numerator**2 / (p1 - p2) ** 2)


def test_proportions_60_vs_75_of_100_is_significant_with_textbook_p_and_sample_size() -> None:
    c = compare_proportions("gate_pass_rate", "v1", "v2", 60, 100, 75, 100)
    assert c.control_value == pytest.approx(0.60)
    assert c.treatment_value == pytest.approx(0.75)
    assert c.effect == pytest.approx(0.15)
    assert c.p_value == pytest.approx(0.0235, abs=0.001)
    assert c.significant
    assert c.test == "two-proportion z-test"
    expected = textbook_n_two_proportions(0.60, 0.75, 0.05, 0.8)
    assert c.needed_per_arm is not None
    assert abs(c.needed_per_arm - expected) <= 1, (c.needed_per_arm, expected)
    assert json.loads(json.dumps(c.as_dict()))["needed_per_arm"] == c.needed_per_arm


def test_needed_per_arm_gives_the_promised_power_in_simulation() -> None:
    n = compare_proportions("gate_pass_rate", "v1", "v2", 60, 100, 75, 100).needed_per_arm
    assert n is not None
    rng = np.random.default_rng(7)
    hits = [
        compare_proportions("m", "a", "b", int(rng.binomial(n, 0.60)), n, int(rng.binomial(n, 0.75)), n).significant
        for _ in range(1000)
    ]
    measured = float(np.mean(hits))
    print(f"\npower at needed_per_arm={n}: {measured:.3f} (target 0.80)")
    assert 0.75 <= measured <= 0.86


def test_proportions_below_min_trials_have_no_p_value_and_are_not_significant() -> None:
    c = compare_proportions("gate_pass_rate", "v1", "v2", 1, 19, 19, 19)
    assert c.p_value is None
    assert not c.significant
    same = compare_proportions("gate_pass_rate", "v1", "v2", 0, 50, 0, 50)
    assert same.p_value == 1.0
    assert same.needed_per_arm is None
    with pytest.raises(ValueError, match="successes <= trials"):
        compare_proportions("gate_pass_rate", "v1", "v2", 5, 4, 1, 4)


def test_means_match_scipy_welch_and_the_normal_approximation_sample_size() -> None:
    rng = np.random.default_rng(11)
    a = rng.normal(0.70, 0.10, size=40).tolist()
    b = rng.normal(0.76, 0.20, size=55).tolist()
    c = compare_means("grounding", "v1", "v2", a, b)
    reference = stats.ttest_ind(b, a, equal_var=False)
    assert c.p_value == pytest.approx(float(reference.pvalue), rel=1e-9)
    assert c.effect == pytest.approx(np.mean(b) - np.mean(a))
    assert c.significant == (float(reference.pvalue) < 0.05)
    assert c.test == "Welch t-test"
    pooled_sd = math.sqrt((39 * np.var(a, ddof=1) + 54 * np.var(b, ddof=1)) / 93)
    expected = 2 * ((1.959964 + 0.841621) * pooled_sd / c.effect) ** 2
    assert c.needed_per_arm is not None
    assert abs(c.needed_per_arm - expected) <= 1, (c.needed_per_arm, expected)


def test_means_with_too_few_samples_have_no_p_value() -> None:
    c = compare_means("latency_s", "v1", "v2", [1.0] * 10, [9.0] * 30)
    assert c.p_value is None
    assert not c.significant
    assert c.effect == pytest.approx(8.0)


def test_constant_samples_compare_without_nan() -> None:
    assert compare_means("m", "a", "b", [1.0] * 20, [1.0] * 20).p_value == 1.0
    assert compare_means("m", "a", "b", [1.0] * 20, [2.0] * 20).p_value == 0.0


def _guards(latency_c: list[float], latency_t: list[float]) -> tuple[list[Comparison], list[Guard]]:
    guards = [
        compare_means("latency_s", "v1", "v2", latency_c, latency_t),
        compare_proportions("no_skill_rate", "v1", "v2", 30, 200, 29, 200),
    ]
    rules = [Guard("latency_s", higher_is_better=False, tolerance=0.5), Guard("no_skill_rate", False, 0.05)]
    return guards, rules


def test_decide_promotes_a_truly_better_arm() -> None:
    rng = np.random.default_rng(3)
    primary = compare_proportions("gate_pass_rate", "v1", "v2", 120, 200, 160, 200)
    guards, rules = _guards(rng.normal(2.0, 0.3, 50).tolist(), rng.normal(2.0, 0.3, 50).tolist())
    d = decide(primary, guards, rules)
    assert d.promote == "v2", d.reason
    assert d.reason.startswith("promote v2")
    assert d.comparisons == [primary, *guards]


def test_decide_keeps_control_when_a_guard_is_worse_beyond_tolerance() -> None:
    rng = np.random.default_rng(3)
    primary = compare_proportions("gate_pass_rate", "v1", "v2", 120, 200, 160, 200)
    guards, rules = _guards(rng.normal(2.0, 0.3, 50).tolist(), rng.normal(3.0, 0.3, 50).tolist())
    d = decide(primary, guards, rules)
    assert d.promote is None
    assert "latency_s" in d.reason and "tolerance" in d.reason


def test_decide_fails_a_guard_worse_beyond_tolerance_even_without_a_p_value() -> None:
    primary = compare_proportions("gate_pass_rate", "v1", "v2", 120, 200, 160, 200)
    slow = compare_means("latency_s", "v1", "v2", [2.0] * 5, [3.0] * 5)
    assert slow.p_value is None
    d = decide(primary, [slow], [Guard("latency_s", higher_is_better=False, tolerance=0.5)])
    assert d.promote is None
    assert "latency_s" in d.reason


def test_a_guard_significantly_worse_within_its_tolerance_holds_and_beyond_it_fails() -> None:
    primary = compare_proportions("gate_pass_rate", "v1", "v2", 1200, 2000, 1600, 2000)
    merge = compare_proportions("merge_rate", "v1", "v2", 400, 2000, 320, 2000)  # 0.20 -> 0.16
    assert merge.significant
    held = decide(primary, [merge], [Guard("merge_rate", higher_is_better=True, tolerance=0.05)])
    assert held.promote == "v2"
    failed = decide(primary, [merge], [Guard("merge_rate", higher_is_better=True, tolerance=0.03)])
    assert failed.promote is None and "merge_rate worse by 0.04" in failed.reason


def test_decide_does_not_promote_equal_arms_or_a_worse_treatment() -> None:
    equal = compare_proportions("gate_pass_rate", "v1", "v2", 120, 200, 121, 200)
    assert decide(equal, [], []).promote is None
    worse = compare_proportions("gate_pass_rate", "v1", "v2", 160, 200, 120, 200)
    assert decide(worse, [], []).promote is None
    # a lower no-skill rate is the good direction
    assert decide(worse, [], [], primary_higher_is_better=False).promote == "v2"


def test_decide_rejects_a_guard_without_a_rule_and_fails_a_rule_without_data() -> None:
    primary = compare_proportions("gate_pass_rate", "v1", "v2", 120, 200, 160, 200)
    merge = compare_proportions("merge_rate", "v1", "v2", 40, 200, 40, 200)
    with pytest.raises(ValueError, match="merge_rate"):
        decide(primary, [merge], [])
    d = decide(primary, [], [Guard("merge_rate", True, 0.05)])
    assert d.promote is None and "merge_rate not measured" in d.reason


def _promotion_rate(p_c: float, p_t: float, trials: int, seed: int, experiments: int = 300) -> float:
    rng = np.random.default_rng(seed)
    promoted = 0
    for _ in range(experiments):
        s_c, s_t = int(rng.binomial(trials, p_c)), int(rng.binomial(trials, p_t))
        primary = compare_proportions("gate_pass_rate", "v1", "v2", s_c, trials, s_t, trials)
        promoted += decide(primary, [], []).promote == "v2"
    return promoted / experiments


def test_equal_arms_are_falsely_promoted_at_most_alpha_of_the_time() -> None:
    rate = _promotion_rate(0.6, 0.6, trials=200, seed=2024)
    print(f"\nfalse-promotion rate, 300 experiments x 200 trials/arm at 0.6 vs 0.6: {rate:.3f} (alpha 0.05)")
    assert rate <= 0.05 + 0.02


def test_a_truly_better_arm_is_promoted_most_of_the_time() -> None:
    rate = _promotion_rate(0.6, 0.72, trials=300, seed=2025)
    print(f"\npromotion rate (power), 300 experiments x 300 trials/arm at 0.6 vs 0.72: {rate:.3f}")
    assert rate >= 0.7


def test_thompson_gives_the_clearly_better_arm_most_traffic() -> None:
    shares = thompson_shares({"v1": (30, 100), "v2": (60, 100)}, seed=1)
    assert shares["v2"] > 0.95
    assert sum(shares.values()) == pytest.approx(1.0)


def test_thompson_splits_equal_arms_near_half_and_is_deterministic_with_a_seed() -> None:
    arms = {"v1": (50, 100), "v2": (50, 100)}
    shares = thompson_shares(arms, seed=5)
    assert 0.45 <= shares["v1"] <= 0.55
    assert thompson_shares(arms, seed=5) == shares
    assert thompson_shares(dict(reversed(arms.items())), seed=5) == shares
    assert thompson_shares(arms, seed=6) != shares


KEYS = [f"interaction-{i}" for i in range(20000)]


def test_assign_is_deterministic_and_follows_the_shares() -> None:
    shares = {"c": 0.5, "a": 0.2, "b": 0.3}
    arms = [assign(k, shares, salt="exp1") for k in KEYS]
    assert arms == [assign(k, shares, salt="exp1") for k in KEYS]
    for name, share in shares.items():
        assert abs(arms.count(name) / len(KEYS) - share) < 0.02, name
    # unnormalised shares mean the same split; a zero share gets nothing
    assert arms == [assign(k, {"a": 2, "b": 3, "c": 5}, salt="exp1") for k in KEYS]
    assert "z" not in {assign(k, {"a": 1.0, "z": 0.0}) for k in KEYS[:2000]}
    assert arms != [assign(k, shares, salt="exp2") for k in KEYS]


def test_changing_one_share_moves_only_the_keys_it_must() -> None:
    before = {"a": 0.2, "b": 0.3, "c": 0.5}
    after = {"a": 0.2, "b": 0.35, "c": 0.5}
    old = [assign(k, before) for k in KEYS]
    new = [assign(k, after) for k in KEYS]
    moved = [(o, n) for o, n in zip(old, new, strict=True) if o != n]
    total = sum(after.values())
    necessary = 0.5 * sum(abs(after[a] / total - before[a]) for a in before)
    assert len(moved) / len(KEYS) <= necessary + 0.01
    assert all("b" in pair for pair in moved)
