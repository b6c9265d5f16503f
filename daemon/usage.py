"""Whether served skills helped: record each serve, learn its outcome from the session's telemetry or from
an explicit rating, keep each skill's usefulness current, and retire a skill that confidently does not help.

Attribution: a skill served for a prompt in a session (Claude Code's hook gives both) is judged by the
interaction of that session whose question is that prompt, once its outcome is plain: a thumb up or down
given to it, else the outcome of its turn once the person's next prompt closed it (`daemon/adapters/turns.py`):
confirmed, or answered and moved on from without complaint (helped); corrected, undone, interrupted, or
ended on an error (not helped). A turn still open is no evidence yet.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Iterable
from collections.abc import Set as AbstractSet
from typing import TYPE_CHECKING, Any

from daemon.config import SkillsConfig
from daemon.interaction import Interaction
from storage.usage import Outcome, UsageLedger
from storage.usefulness import confidently_low, estimate

if TYPE_CHECKING:
    from storage.skills import Skill, SkillLibrary

log = logging.getLogger(__name__)


def evidence(interaction: Interaction) -> Outcome | None:
    """What an interaction's outcome says about the skills served for it, once it is plain; else None."""
    if interaction.feedback == 1:
        return Outcome.HELPED
    if interaction.feedback == -1:
        return Outcome.NOT_HELPED
    if "next_prompt" not in interaction.signals:  # the turn is still open: its outcome may yet change
        return None
    return {"success": Outcome.HELPED, "failure": Outcome.NOT_HELPED}.get(interaction.outcome or "")


class SkillUsage:
    """The usage ledger and the usage fields of the skills' payloads, kept in step."""

    def __init__(self, ledger: UsageLedger, library: Callable[[], SkillLibrary], config: SkillsConfig) -> None:
        self.ledger = ledger
        self._library = library  # loaded on first need: attribution with nothing open never loads a model
        self.config = config

    def served(self, skills: list[dict[str, Any]], client: str, session: str | None, prompt: str | None) -> None:
        """Record skills served together (search results, a hook's block); their views gain the serve."""
        if not skills:
            return
        stamp = self.ledger.served([s["id"] for s in skills], client, session, prompt)
        library = self._library()
        for shown in skills:
            skill = self._refresh(library, shown["id"])
            shown.update(usage_count=skill.usage_count if skill else shown["usage_count"] + 1, last_used=stamp)

    def rate(self, skill_id: str, helped: bool, client: str, note: str | None) -> Skill:
        """Explicit evidence for a skill, served or retired; LookupError for an unknown one."""
        library = self._library()
        if library.get(skill_id) is None:
            raise LookupError(f"no skill {skill_id}")
        self.ledger.rated(skill_id, Outcome.HELPED if helped else Outcome.NOT_HELPED, client, note)
        skill = self._refresh(library, skill_id, judge=not helped)
        assert skill is not None
        return skill

    def attribute(self, interactions: Iterable[Interaction]) -> list[str]:
        """Close the serves whose interactions' outcomes are now plain; return the skills that gained evidence."""
        judged = [(i, outcome) for i in interactions if i.session and i.query and (outcome := evidence(i))]
        if not self.ledger.has_open({i.session for i, _ in judged if i.session}):
            return []
        gained: set[str] = set()
        for interaction, outcome in judged:
            assert interaction.session and interaction.query
            gained.update(self.ledger.resolve(interaction.session, interaction.query, outcome, interaction.key))
        library = self._library()
        for skill_id in sorted(gained):
            self._refresh(library, skill_id, judge=True)
            log.info("served skill judged", extra={"skill": skill_id})
        return sorted(gained)

    def forget(
        self,
        deleted: list[str],
        interaction_keys: AbstractSet[str] = frozenset(),
        sessions: AbstractSet[str] = frozenset(),
    ) -> int:
        """Drop the usage of deleted skills, and a forgotten user's serves and verdicts (their sessions and
        interactions); the skills that keep some are recomputed. Return how many ledger rows went."""
        forgotten = self.ledger.forget(deleted, set(interaction_keys), set(sessions))
        if forgotten.changed:
            library = self._library()
            for skill_id in forgotten.changed:
                self._refresh(library, skill_id)
        return forgotten.rows

    def _refresh(self, library: SkillLibrary, skill_id: str, judge: bool = False) -> Skill | None:
        """Recompute a skill's counters from the ledger into its payload; with `judge`, retire it when its
        usefulness is confidently below `skills.retire_below`."""
        totals = self.ledger.totals(skill_id)
        usefulness = estimate(totals.helped, totals.not_helped, self.config.usefulness_prior)
        skill = library.set_usage(
            skill_id,
            {
                "usage_count": totals.usage_count,
                "last_used": totals.last_used,
                "helped": totals.helped,
                "not_helped": totals.not_helped,
                "usefulness": usefulness.mean,
                "usefulness_interval": usefulness.interval,
            },
        )
        low = confidently_low(usefulness, self.config.retire_below)
        if judge and low and skill is not None and skill.retired is None:
            reason = (
                f"usefulness {usefulness.mean:.2f} (helped {totals.helped}, not helped {totals.not_helped}; "
                f"{usefulness.high:.2f} at most) is below {self.config.retire_below}"
            )
            library.retire(skill_id, reason, by="usefulness")
            log.info("skill retired: it does not help", extra={"skill": skill_id, "reason": reason})
            return library.get_skill(skill_id)
        return skill
