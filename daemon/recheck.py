"""An upgrade's re-check: what older versions stored is held to today's quality gate.

Skills and fine-tuning records made before the gate, or under an older one, are judged again against the
exchange they came from (the stored events, else the record's own question and answer). Those that fail are
retired: kept, with the reason, but never served, merged into or trained on. The interactions behind a
retired skill are queued again, so the grounded extraction of today makes what it can of them (a skill, or
a no_skill or rejected decision with its reason). It runs once per gate version (`GATE_VERSION`), at the
first learning step after an upgrade, and on request (`skilld skills recheck`, which judges everything).
"""

from __future__ import annotations

import logging
from typing import TYPE_CHECKING, Any

from pydantic import ValidationError

from daemon.adapters.rendered import split_prompt
from extractors.gate import GATE_VERSION, Assessment, assess, form_defects
from extractors.schema import SkillPattern
from extractors.triage import no_skill_reason
from storage.datasets import read_records
from storage.skills import Skill

if TYPE_CHECKING:
    from daemon.pipeline import Learner

log = logging.getLogger(__name__)

GATE_CHECKED = "quality_gate"  # pipeline_state: the gate version everything stored was last checked by
RETIRED_SKILLS = "skills_retired"
RETIRED_EXAMPLES = "examples_retired"


def _question(record: dict[str, Any]) -> str:
    """A training record's question: its user message after the context it carries."""
    user = str(record["messages"][1]["content"])
    return user[int(record["metadata"].get("context_chars") or 0) :]


class Recheck:
    """One pass of the gate over the stored skills and the fine-tuning dataset."""

    def __init__(self, learner: Learner, force: bool) -> None:
        self.learner = learner
        self.force = force
        self.threshold = learner.settings.skills.min_grounding
        self.recorded: dict[str, tuple[str, str]] = {}  # interaction -> (question, answer) from the dataset
        self.summary: dict[str, Any] = {
            "gate": GATE_VERSION,
            "skills_checked": 0,
            "skills_retired": 0,
            "examples_checked": 0,
            "examples_retired": 0,
            "reasons": [],
        }

    def run(self) -> dict[str, Any]:
        for record in read_records(self.learner.datasets.finetune):
            key = record.get("metadata", {}).get("interaction")
            if key:
                self.recorded[str(key)] = (_question(record), str(record["messages"][2]["content"]))
        self._skills()
        self._examples()
        return self.summary

    # -- skills ------------------------------------------------------------------------------------------------
    def _exchanges(self, skill: Skill) -> list[tuple[str, str, str]]:
        """The (question, answer, context) of each interaction a skill came from that is still at hand."""
        found: list[tuple[str, str, str]] = []
        for key in skill.source_interactions:
            interaction = self.learner.interaction(key)
            if interaction is not None and interaction.query and interaction.response:
                found.append((interaction.query, interaction.response, interaction.context or ""))
            elif key in self.recorded:
                found.append((*self.recorded[key], ""))
        return found

    def judge(self, skill: Skill) -> tuple[str | None, dict[str, Any]]:
        """Why a stored skill fails today's gate (None when it passes), and its quality figures."""
        made_by = "draft" if skill.model == "none" else "model"
        origin = str(skill.quality.get("origin") or made_by)
        try:
            pattern = SkillPattern.model_validate(skill.pattern())
        except ValidationError as exc:
            return f"not a valid skill pattern ({exc.errors()[0]['msg']})", {}
        exchanges = self._exchanges(skill)
        if not exchanges:  # the events are gone and no record holds the answer: judge the skill's own form
            defects = form_defects(pattern, "\n".join([skill.source_query, *skill.source_queries]))
            if skill.quality.get("gate"):
                # A gate judged it against its answer once (here, or on the workstation it was imported
                # from): a placeholder it kept was the answer's own (`-n <namespace>`), which only that
                # answer could show. The other defects need no answer and are judged again.
                defects = [d for d in defects if not d.startswith("placeholder")]
            figures = {"grounding": None, "defects": defects, "origin": origin, "gate": GATE_VERSION}
            return ("; ".join(defects) or None), figures
        for question, answer, _ in exchanges:
            reason = no_skill_reason(question, answer)
            if reason is None:
                break
        else:
            return f"no reusable skill: {reason}", {}
        judged: list[Assessment] = [assess(pattern, q, a, c, self.threshold) for q, a, c in exchanges]
        best = max(judged, key=lambda a: (a.passed, a.grounding))
        return (None if best.passed else best.reason), best.figures(origin)

    def _skills(self) -> None:
        library, learning = self.learner.library, self.learner.learning
        for stored in list(library.all()):
            skill = stored.skill
            if not self.force and skill.quality.get("gate") == GATE_VERSION:
                continue
            self.summary["skills_checked"] += 1
            reason, figures = self.judge(skill)
            if reason is None:
                library.set_quality(stored.id, figures)
                continue
            library.retire(stored.id, reason, GATE_VERSION)
            learning.extract_again(skill.source_interactions, f"extracting again: its skill was retired ({reason})")
            self.summary["skills_retired"] += 1
            self.summary["reasons"].append({"skill": stored.id, "name": skill.name, "reason": reason})
            log.info("skill retired by the quality gate", extra={"skill": stored.id, "reason": reason})

    # -- training records -----------------------------------------------------------------------------------
    def _examples(self) -> None:
        library = self.learner.library
        retired = {s.id: str((s.skill.retired or {}).get("reason", "")) for s in library.retired()}

        def why(record: dict[str, Any]) -> str | None:
            self.summary["examples_checked"] += 1
            skill = record["metadata"].get("skill_id")
            if skill in retired:
                return f"its skill was retired: {retired[skill]}"
            user, answer = str(record["messages"][1]["content"]), str(record["messages"][2]["content"])
            rendered = split_prompt(user)
            if rendered.template != "plain" and rendered.query != user:
                return "the question is a rendered prompt, not what the person asked"
            reason = no_skill_reason(_question(record), answer)
            return f"no reusable skill: {reason}" if reason else None

        self.summary["examples_retired"] = len(self.learner.datasets.retire(why, GATE_VERSION))
