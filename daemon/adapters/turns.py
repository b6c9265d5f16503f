"""How an agent turn went, decided over its signals and the person's next prompt (Claude Code, Codex CLI).

The rules, in order (the first that applies decides):
1. The next prompt asks to revert or undo, or corrects the turn ("no, ...", "that's wrong", "it still
   fails", "... instead of ...", "should ..., not ..."): failure, and feedback -1.
2. The next prompt confirms it ("thanks", "perfect", "that works", "lgtm"): success, and feedback +1.
3. The person interrupted the turn and did not resubmit it: failure.
4. A tool call failed and no later tool call of the turn succeeded (an error never recovered): failure.
5. The turn answered and the person moved on to another request without complaint: success.
6. Otherwise (the session's last turn, no answer yet): unknown, and scoring uses its neutral outcome.
"""

from __future__ import annotations

import re
from typing import Any, Literal

from daemon.interaction import SIGNALS, Interaction

Verdict = Literal["revert", "correction", "confirmation", "moved_on"]

_REVERT = re.compile(
    r"\b(?:revert|undo|roll ?back|put (?:it|that|them) back|restore the (?:old|previous|original))\b", re.I
)
_CORRECTION = re.compile(
    r"^\s*(?:no|nope|wrong|incorrect|not quite|that'?s not it)\b[\s,.!]"
    r"|\b(?:that|this|it|which|you)(?: is| was| are|'s|’s|'re|’re) (?:not|wrong|incorrect|broken)\b"
    r"|\b(?:does(?:n'?t| not)|did(?:n'?t| not)|is(?:n'?t| not)) (?:work|compile|run|build|pass)\w*"
    r"|\bstill (?:fail\w*|broken|not\b|doesn'?t|does not|the same|an? error|crash\w*|wrong)"
    r"|\b(?:you|it) (?:broke|missed|forgot|ignored)\b"
    r"|\bnot what I (?:asked|wanted|meant)\b"
    r"|\binstead of\b"
    r"|\bshould(?:n'?t| not)? [^.?!\n]{1,80}, not\b",
    re.I,
)
_CONFIRMATION = re.compile(
    r"^\s*(?:thanks?|thank you|thx|ty|great|perfect|awesome|excellent|nice|cool|lgtm|looks good|"
    r"(?:it|that|this) (?:works|worked)|works(?: now)?|good job|well done|exactly"
    r"|yes,? (?:that|this) (?:works|is it))\b",
    re.I,
)


def judge(prompt: str | None) -> Verdict:
    """What a person's next prompt says about the turn before it."""
    text = (prompt or "")[:2000]
    if _REVERT.search(text):
        return "revert"
    if _CORRECTION.search(text):
        return "correction"
    if _CONFIRMATION.search(text):
        return "confirmation"
    return "moved_on"


def verdict_fields(prompt: str | None) -> dict[str, Any]:
    """The fields a next prompt contributes to the turn it follows."""
    return {SIGNALS: {"next_prompt": judge(prompt)}}


def finish_turn(interaction: Interaction) -> Interaction:
    """The turn with its outcome (and feedback from an explicit verdict), by the rules of this module."""
    signals = interaction.signals
    verdict = signals.get("next_prompt")
    update: dict[str, Any] = {}
    if verdict in ("revert", "correction"):
        update = {"outcome": "failure", "feedback": -1}
    elif verdict == "confirmation":
        update = {"outcome": "success", "feedback": 1}
    elif signals.get("open_interrupt") or signals.get("open_error"):
        update = {"outcome": "failure"}
    elif verdict == "moved_on" and interaction.response:
        update = {"outcome": "success"}
    if interaction.feedback is not None:
        update.pop("feedback", None)  # feedback the tool itself recorded wins
    return interaction.model_copy(update=update) if update else interaction
