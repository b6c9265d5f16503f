"""A/B tests of skill extraction: which prompt version an interaction is extracted with, what each arm
achieved, and when an arm is good enough to become the default.

An interaction is assigned to an arm by a hash of its key (`daemon/abtest.py`), with the configured shares
(policy `fixed`) or shares from Thompson sampling over each arm's gate passes so far (policy `thompson`). The
primary metric is the gate pass rate of the model's proposals; the guards are their mean grounding and the
extraction latency. After every trial, once each arm has `min_samples` trials, the treatment arms are
compared with the control (the first arm); one that is significantly better and not worse on a guard is
promoted: the experiment ends and its prompt becomes extraction's default.
"""

from __future__ import annotations

import logging
import statistics
from collections.abc import Callable, Sequence
from typing import TYPE_CHECKING, Any

from daemon.abtest import Decision, Guard, assign, compare_means, compare_proportions, decide, thompson_shares
from daemon.config import ArmConfig, ExperimentConfig
from storage.experiments import ExperimentStore, Trial

if TYPE_CHECKING:
    from storage.skills import SkillLibrary

log = logging.getLogger(__name__)


def arm_figures(trials: Sequence[Trial], usefulness: Callable[[str], tuple[float, int] | None]) -> dict[str, Any]:
    """One arm's figures: trials, gate pass rate, no-skill rate, merge rate, grounding, latency, usefulness."""
    proposed = [t for t in trials if t.outcome == "proposed"]
    stored = [t for t in trials if t.stored]
    grounding = [t.grounding for t in proposed if t.grounding is not None]
    seconds = [t.seconds for t in trials if t.seconds is not None]
    judged = [u for u in (usefulness(t.skill_id) for t in stored if t.skill_id) if u is not None and u[1] > 0]

    def share(part: int, whole: int) -> float | None:
        return round(part / whole, 4) if whole else None

    return {
        "trials": len(trials),
        "gate_pass_rate": share(sum(t.passed for t in trials), len(trials)),
        "no_skill_rate": share(sum(t.outcome == "no_skill" for t in trials), len(trials)),
        "failed_rate": share(sum(t.outcome == "failed" for t in trials), len(trials)),
        "merge_rate": share(sum(t.merged for t in stored), len(stored)),
        "grounding": round(statistics.fmean(grounding), 4) if grounding else None,
        "seconds_p50": round(statistics.median(seconds), 3) if seconds else None,
        "seconds_mean": round(statistics.fmean(seconds), 3) if seconds else None,
        "usefulness": round(statistics.fmean(u[0] for u in judged), 4) if judged else None,
        "skills_judged": len(judged),
    }


class Experiments:
    """The configured experiments, the one running, and its trials."""

    def __init__(self, store: ExperimentStore, configs: Callable[[], list[ExperimentConfig]]) -> None:
        self.store = store
        self._configs = configs  # read at each use: a reload (SIGHUP) may change them

    def config(self, name: str) -> ExperimentConfig:
        for experiment in self._configs():
            if experiment.name == name:
                return experiment
        known = ", ".join(e.name for e in self._configs()) or "none configured"
        raise LookupError(f"no experiment {name!r} in the configuration (experiments: {known})")

    def running(self) -> ExperimentConfig | None:
        name = self.store.running()
        if name is None:
            return None
        try:
            return self.config(name)
        except LookupError:  # removed from the configuration while it ran: it ends
            self.store.stop(name, decision="removed from the configuration")
            return None

    def arm_for(self, key: str) -> tuple[ExperimentConfig, ArmConfig] | None:
        """The running experiment and the arm an interaction is extracted with, or None outside one."""
        experiment = self.running()
        if experiment is None:
            return None
        if experiment.policy == "thompson":
            counts: dict[str, tuple[int, int]] = {a.name: (0, 0) for a in experiment.arms}
            trials = self.store.trials(experiment.name)
            for trial in trials:
                if trial.arm in counts:  # an arm removed from the configuration takes no traffic
                    passed, total = counts[trial.arm]
                    counts[trial.arm] = (passed + trial.passed, total + 1)
            shares = thompson_shares(counts, seed=len(trials))
        else:
            shares = {a.name: a.share for a in experiment.arms}
        chosen = assign(key, shares, salt=experiment.name)
        return experiment, next(a for a in experiment.arms if a.name == chosen)

    def default_prompt(self) -> str | None:
        """The prompt extraction uses outside an experiment: the latest promoted one, else the newest file."""
        return self.store.promoted_prompt()

    def evaluate(self, name: str, library: SkillLibrary | None = None) -> dict[str, Any]:
        """Each arm's figures, the comparisons with the control, and the decision as it stands."""
        experiment = self.config(name)
        trials = self.store.trials(name)

        def usefulness(skill_id: str) -> tuple[float, int] | None:
            skill = library.get_skill(skill_id) if library is not None else None
            return (skill.usefulness, skill.helped + skill.not_helped) if skill else None

        arms = experiment.arms
        # An arm's trials under its configured prompt (a changed prompt is another arm).
        by_arm = {a.name: [t for t in trials if t.arm == a.name and t.prompt == a.prompt] for a in arms}
        figures = {arm: arm_figures(rows, usefulness) for arm, rows in by_arm.items()}
        decisions = [self._decide(experiment, by_arm, arm.name) for arm in experiment.arms[1:]]
        winners = [d for d in decisions if d.promote]
        best: Decision | None = max(winners, key=lambda d: d.comparisons[0].effect) if winners else None
        best = best or (decisions[0] if decisions else None)
        comparisons = []
        for decision in decisions:
            for c in decision.comparisons:
                have = min(len(by_arm[c.control]), len(by_arm[c.treatment]))
                still = max(0, c.needed_per_arm - have) if c.needed_per_arm is not None else None
                comparisons.append({**c.as_dict(), "still_needed_per_arm": still})
        return {
            "name": name,
            **(self.store.state(name) or {"state": "not started"}),
            "policy": experiment.policy,
            "alpha": experiment.alpha,
            "min_samples": experiment.min_samples,
            "arms": [{"name": a.name, "prompt": a.prompt, "share": a.share, **figures[a.name]} for a in arms],
            "comparisons": comparisons,
            "verdict": {"promote": best.promote, "reason": best.reason} if best else None,
        }

    def _decide(self, experiment: ExperimentConfig, by_arm: dict[str, list[Trial]], treatment: str) -> Decision:
        control = experiment.arms[0].name
        c, t = by_arm[control], by_arm[treatment]
        n = experiment.min_samples
        # Each treatment is tested against the control at alpha / treatments (Bonferroni): the chance that
        # any equal arm is promoted stays at alpha.
        alpha = experiment.alpha / max(1, len(experiment.arms) - 1)
        primary = compare_proportions(
            "gate_pass_rate", control, treatment, sum(x.passed for x in c), len(c), sum(x.passed for x in t), len(t),
            alpha=alpha, min_trials=n,
        )  # fmt: skip
        grounding = compare_means(
            "grounding", control, treatment,
            [x.grounding for x in c if x.grounding is not None], [x.grounding for x in t if x.grounding is not None],
            alpha=experiment.alpha, min_samples=min(n, 5),
        )  # fmt: skip
        latency = compare_means(
            "seconds", control, treatment,
            [x.seconds for x in c if x.seconds is not None], [x.seconds for x in t if x.seconds is not None],
            alpha=experiment.alpha, min_samples=min(n, 5),
        )  # fmt: skip
        rules = [
            Guard("grounding", higher_is_better=True, tolerance=experiment.grounding_tolerance),
            Guard("seconds", higher_is_better=False, tolerance=experiment.latency_tolerance),
        ]
        return decide(primary, [grounding, latency], rules)

    def conclude(self) -> dict[str, Any] | None:
        """Decide the running experiment once, when every arm has reached `min_samples` trials: promote the
        best arm that is significantly better and holds its guards, or end it keeping the control.

        One look at a planned size: testing again after every later trial would let an equal arm be promoted
        far more often than `alpha`. Decided from the trial rows alone (usefulness is for `show`).
        """
        experiment = self.running()
        if experiment is None:
            return None
        trials = self.store.trials(experiment.name)
        if any(sum(t.arm == a.name for t in trials) < experiment.min_samples for a in experiment.arms):
            return None
        verdict: dict[str, Any] | None = self.evaluate(experiment.name)["verdict"]
        if verdict is None:
            return None
        if verdict["promote"] is None:
            self.store.stop(
                experiment.name, decision=f"decided at {experiment.min_samples} per arm: {verdict['reason']}"
            )
            log.info("experiment ended, control kept", extra={"experiment": experiment.name, "why": verdict["reason"]})
            return verdict
        arm = next(a for a in experiment.arms if a.name == verdict["promote"])
        self.store.stop(experiment.name, arm.name, arm.prompt, verdict["reason"])
        why = {"experiment": experiment.name, "arm": arm.name, "why": verdict["reason"]}
        log.info("experiment arm promoted", extra=why)
        return verdict
