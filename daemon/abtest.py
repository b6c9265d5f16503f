"""Statistics of A/B tests between extraction arms (a prompt version or a model): compare, decide, allocate.

Pure functions, no I/O: the caller counts trials and successes (gate pass rate, no-skill rate, merge rate) or
collects samples (grounding, latency, usefulness) per arm and asks here whether the treatment is better.

- Proportions use the pooled two-proportion z-test, the textbook test for "is this rate different", and
  means use Welch's t-test, because the arms' variances (latency above all) need not be equal.
- `needed_per_arm` answers the question a reader of a non-significant result asks next: how long must the
  experiment run to detect an effect this size with the wanted power.
- `decide` promotes only on a significant primary win and is conservative on guards: a guard fails when it
  is worse by more than its tolerance whatever its p-value (a small experiment must not hide a regression);
  within its tolerance it holds, significant or not.
- `thompson_shares` turns the primary proportion into traffic shares; `assign` maps an interaction key to
  an arm by a hash, so the same key always lands on the same arm and a share change moves few keys.
"""

from __future__ import annotations

import hashlib
import math
from collections.abc import Mapping, Sequence
from dataclasses import asdict, dataclass
from typing import Any

import numpy as np

Z_TEST = "two-proportion z-test"
WELCH_TEST = "Welch t-test"
MIN_NEEDED = 2  # no test runs on fewer samples per arm, however large the effect


@dataclass(frozen=True)
class Comparison:
    """One metric of a treatment arm against the control arm."""

    metric: str
    control: str
    treatment: str
    control_value: float
    treatment_value: float
    effect: float
    p_value: float | None
    significant: bool
    needed_per_arm: int | None
    test: str

    def as_dict(self) -> dict[str, Any]:
        """Plain dict for JSON output (the CLI's `--json`, the API)."""
        return asdict(self)


@dataclass(frozen=True)
class Guard:
    """A metric that must not get worse by more than `tolerance` (absolute, in the metric's unit)."""

    metric: str
    higher_is_better: bool
    tolerance: float


@dataclass(frozen=True)
class Decision:
    """Whether to promote the treatment, with a one-line reason a person can check against the numbers."""

    promote: str | None
    reason: str
    comparisons: list[Comparison]


def _stats() -> Any:
    """scipy.stats, imported on first use: it costs a process ~45 MB, and a daemon with no experiment never
    needs it."""
    from scipy import stats

    return stats


def _check_levels(alpha: float, power: float) -> None:
    if not 0.0 < alpha < 1.0:
        raise ValueError(f"alpha must be in (0, 1), got {alpha}")
    if not 0.0 < power < 1.0:
        raise ValueError(f"power must be in (0, 1), got {power}")


def _check_counts(arm: str, successes: int, trials: int) -> None:
    if trials < 0 or not 0 <= successes <= trials:
        raise ValueError(f"arm {arm!r}: need 0 <= successes <= trials, got {successes}/{trials}")


def _two_sided_z(alpha: float) -> float:
    return float(_stats().norm.ppf(1.0 - alpha / 2.0))


def _needed_proportions(p_c: float, p_t: float, alpha: float, power: float) -> int | None:
    """Per-arm sample size to detect p_c vs p_t (Fleiss' formula without continuity correction)."""
    if p_c == p_t:
        return None
    p_bar = (p_c + p_t) / 2.0
    z_a, z_b = _two_sided_z(alpha), float(_stats().norm.ppf(power))
    root = z_a * math.sqrt(2.0 * p_bar * (1.0 - p_bar)) + z_b * math.sqrt(p_c * (1.0 - p_c) + p_t * (1.0 - p_t))
    return max(MIN_NEEDED, math.ceil(root**2 / (p_t - p_c) ** 2))


def compare_proportions(
    metric: str,
    control: str,
    treatment: str,
    successes_c: int,
    trials_c: int,
    successes_t: int,
    trials_t: int,
    *,
    alpha: float = 0.05,
    power: float = 0.8,
    min_trials: int = 20,
) -> Comparison:
    """Compare two rates with the pooled two-proportion z-test.

    An arm with no trials has rate 0.0; below `min_trials` on either side the p-value is None, because the
    normal approximation behind the test is not trusted there.
    """
    _check_levels(alpha, power)
    _check_counts(control, successes_c, trials_c)
    _check_counts(treatment, successes_t, trials_t)
    p_c = successes_c / trials_c if trials_c else 0.0
    p_t = successes_t / trials_t if trials_t else 0.0
    p_value: float | None = None
    if min(trials_c, trials_t) >= max(min_trials, 1):
        pooled = (successes_c + successes_t) / (trials_c + trials_t)
        se = math.sqrt(pooled * (1.0 - pooled) * (1.0 / trials_c + 1.0 / trials_t))
        # se is 0 only when both arms are all-success or all-failure: identical rates, nothing to detect
        p_value = 1.0 if se == 0.0 else float(2.0 * _stats().norm.sf(abs(p_t - p_c) / se))
    return Comparison(
        metric=metric,
        control=control,
        treatment=treatment,
        control_value=p_c,
        treatment_value=p_t,
        effect=p_t - p_c,
        p_value=p_value,
        significant=p_value is not None and p_value < alpha,
        needed_per_arm=_needed_proportions(p_c, p_t, alpha, power) if trials_c and trials_t else None,
        test=Z_TEST,
    )


def _welch_p(c: np.ndarray[Any, np.dtype[np.float64]], t: np.ndarray[Any, np.dtype[np.float64]]) -> float:
    """Welch's two-sided p-value; two constant samples get 1.0 if equal, else 0.0 (scipy warns there)."""
    if np.ptp(c) == 0.0 and np.ptp(t) == 0.0:
        return 1.0 if c[0] == t[0] else 0.0
    return float(_stats().ttest_ind(t, c, equal_var=False).pvalue)


def _needed_means(
    c: np.ndarray[Any, np.dtype[np.float64]],
    t: np.ndarray[Any, np.dtype[np.float64]],
    effect: float,
    alpha: float,
    power: float,
) -> int | None:
    """Per-arm size from the pooled sd by the normal approximation: 2 (z_a + z_b)^2 sd^2 / effect^2."""
    if effect == 0.0 or len(c) < 2 or len(t) < 2:
        return None
    pooled_var = ((len(c) - 1) * c.var(ddof=1) + (len(t) - 1) * t.var(ddof=1)) / (len(c) + len(t) - 2)
    z_sum = _two_sided_z(alpha) + float(_stats().norm.ppf(power))
    return max(MIN_NEEDED, math.ceil(2.0 * z_sum**2 * float(pooled_var) / effect**2))


def compare_means(
    metric: str,
    control: str,
    treatment: str,
    samples_c: Sequence[float],
    samples_t: Sequence[float],
    *,
    alpha: float = 0.05,
    power: float = 0.8,
    min_samples: int = 20,
) -> Comparison:
    """Compare two means with Welch's t-test (unequal variances).

    An arm with no samples has mean 0.0; below `min_samples` on either side the p-value is None.
    """
    _check_levels(alpha, power)
    c = np.asarray(samples_c, dtype=np.float64)
    t = np.asarray(samples_t, dtype=np.float64)
    mean_c = float(c.mean()) if len(c) else 0.0
    mean_t = float(t.mean()) if len(t) else 0.0
    enough = min(len(c), len(t)) >= max(min_samples, 2)
    p_value = _welch_p(c, t) if enough else None
    return Comparison(
        metric=metric,
        control=control,
        treatment=treatment,
        control_value=mean_c,
        treatment_value=mean_t,
        effect=mean_t - mean_c,
        p_value=p_value,
        significant=p_value is not None and p_value < alpha,
        needed_per_arm=_needed_means(c, t, mean_t - mean_c, alpha, power),
        test=WELCH_TEST,
    )


def _fmt_p(p: float | None) -> str:
    return "p=n/a" if p is None else f"p={p:.3g}"


def _describe(c: Comparison) -> str:
    return (
        f"{c.metric} {c.control_value:.4g} -> {c.treatment_value:.4g} "
        f"(effect {c.effect:+.4g}, {_fmt_p(c.p_value)}, {c.test})"
    )


def _guard_failure(comparison: Comparison, rule: Guard) -> str | None:
    """Why this guard fails, or None when it holds: worse than its tolerance, significant or not (an
    unmeasured worsening is not given the benefit of the doubt). Within the tolerance it holds even when the
    difference is significant: a prompt 0.2 s slower on every call is still allowed by a 5 s tolerance."""
    worsening = -comparison.effect if rule.higher_is_better else comparison.effect
    if worsening > rule.tolerance:
        limit = f"tolerance {rule.tolerance:.4g}"
        return f"guard {rule.metric} worse by {worsening:.4g} > {limit} ({_fmt_p(comparison.p_value)})"
    return None


def decide(
    primary: Comparison,
    guards: Sequence[Comparison],
    guard_rules: Sequence[Guard],
    *,
    primary_higher_is_better: bool = True,
) -> Decision:
    """Promote the treatment only on a significant primary win with every guard holding.

    Every guard comparison needs a rule (a missing one is a caller's bug, so it raises); a rule whose
    comparison is missing fails, since an unmeasured guard cannot be shown to hold.
    """
    comparisons = [primary, *guards]
    for g in guards:
        if (g.control, g.treatment) != (primary.control, primary.treatment):
            raise ValueError(f"guard {g.metric!r} compares {g.treatment} with {g.control}, not the primary's arms")
    rules = {r.metric: r for r in guard_rules}
    unruled = [g.metric for g in guards if g.metric not in rules]
    if unruled:
        raise ValueError(f"no Guard rule for guard comparison(s): {', '.join(unruled)}")

    def keep(why: str) -> Decision:
        return Decision(promote=None, reason=f"keep {primary.control}: {why}", comparisons=comparisons)

    if primary.p_value is None:
        return keep(f"too few samples for {_describe(primary)}")
    better = primary.effect > 0.0 if primary_higher_is_better else primary.effect < 0.0
    if not primary.significant:
        return keep(f"no significant difference in {_describe(primary)}")
    if not better:
        return keep(f"treatment significantly worse: {_describe(primary)}")
    measured = {g.metric: g for g in guards}
    for rule in guard_rules:
        if rule.metric not in measured:
            return keep(f"guard {rule.metric} not measured")
        failure = _guard_failure(measured[rule.metric], rule)
        if failure:
            return keep(f"{failure}, despite {_describe(primary)}")
    return Decision(
        promote=primary.treatment, reason=f"promote {primary.treatment}: {_describe(primary)}", comparisons=comparisons
    )


def thompson_shares(
    arms: Mapping[str, tuple[int, int]], *, draws: int = 4000, seed: int | None = None
) -> dict[str, float]:
    """Traffic shares by Thompson sampling: the fraction of Beta(1+s, 1+f) draws each arm wins.

    Arms are drawn in name order, so a seed gives the same shares whatever the mapping's order.
    """
    if not arms:
        raise ValueError("thompson_shares needs at least one arm")
    if draws < 1:
        raise ValueError(f"draws must be >= 1, got {draws}")
    names = sorted(arms)
    for name in names:
        _check_counts(name, *arms[name])
    rng = np.random.default_rng(seed)
    samples = np.column_stack([rng.beta(1 + s, 1 + (n - s), size=draws) for s, n in (arms[a] for a in names)])
    wins = np.bincount(samples.argmax(axis=1), minlength=len(names))
    return {name: float(w) / draws for name, w in zip(names, wins, strict=True)}


def _unit_hash(text: str) -> float:
    """Uniform in [0, 1) from sha256: stable across processes and Python versions, unlike hash()."""
    return int.from_bytes(hashlib.sha256(text.encode()).digest()[:8], "big") / 2.0**64


def assign(key: str, shares: Mapping[str, float], salt: str = "") -> str:
    """The arm for an interaction key: the same key and shares always give the same arm.

    Arms take consecutive intervals of [0, 1) in name order, so changing one arm's share only moves keys
    near the interval boundaries that shift, not a reshuffle of all traffic. A new salt reshuffles.
    """
    if any(v < 0.0 or not math.isfinite(v) for v in shares.values()):
        raise ValueError(f"shares must be finite and >= 0, got {dict(shares)}")
    total = sum(shares.values())
    if total <= 0.0:
        raise ValueError("shares must have a positive total")
    u = _unit_hash(salt + key)
    edge = 0.0
    names = [n for n in sorted(shares) if shares[n] > 0.0]
    for name in names[:-1]:
        edge += shares[name] / total
        if u < edge:
            return name
    return names[-1]  # rounding can leave the last edge a hair under 1.0
