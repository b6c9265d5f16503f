"""How useful a skill has been: a Beta posterior over the evidence that serving it helped or did not.

Each skill starts at the prior (`skills.usefulness_prior`, pseudo-counts of helped and not helped; 1 and 1
is the uniform prior, mean 0.5) and every piece of evidence moves it. The mean is the estimate; the central
credible interval is its uncertainty, so a skill rated once is not judged like one rated twenty times. A
skill is confidently unhelpful when even the interval's upper end is below the retirement bound.
"""

from __future__ import annotations

from dataclasses import dataclass

# The central credible interval's mass: the interval holds the true rate with this posterior probability.
CREDIBLE_MASS = 0.9


@dataclass(frozen=True)
class Usefulness:
    """The posterior mean with its central credible interval."""

    mean: float
    low: float
    high: float

    @property
    def interval(self) -> list[float]:
        """[low, high], as the payload keeps it."""
        return [self.low, self.high]


def estimate(helped: int, not_helped: int, prior: tuple[float, float] = (1.0, 1.0)) -> Usefulness:
    """The posterior Beta(prior_helped + helped, prior_not_helped + not_helped), rounded to 4 places."""
    # The Beta quantile from scipy.special: scipy.stats would cost the daemon ~45 MB more for the same numbers.
    from scipy.special import betaincinv

    a, b = prior[0] + helped, prior[1] + not_helped
    tail = (1 - CREDIBLE_MASS) / 2
    low, high = betaincinv(a, b, [tail, 1 - tail])
    return Usefulness(round(a / (a + b), 4), round(float(low), 4), round(float(high), 4))


def confidently_low(usefulness: Usefulness, below: float) -> bool:
    """Whether the skill does not help, with the interval's confidence: its upper end is under `below`."""
    return usefulness.high < below
