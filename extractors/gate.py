"""The quality gate every candidate skill passes before it is stored: grounding, and no defects.

**Grounding** is how much of the skill the exchange supports: for each part (name, description, steps,
prerequisites, example, tags) the share of its meaningful words (stopwords left out) that occur in the
question, the answer or the context; the mean over the parts it has. 1.0: every word comes from the
exchange; a small model's invention ("$3/sffmpeg --preset medium-high_quality") drags it down, and a part
with less than half its words supported is a defect of its own.

**Defects**, each enough to reject a candidate:
- placeholder: `<NAME>`, `<user_info`, `YOUR_NAME`, `Your Name` that the exchange does not contain;
- template: words of the extraction prompt or its schema echoed ("The skill is", "Write it as JSON",
  "The assistant answered", `<<<`), when the exchange does not use them itself;
- punctuation: a name, description, step or prerequisite that is mostly symbols (`]} }.`, `$1,000`);
- repetition: a word three times in a row, or a step given twice;
- tag: a tag that is not a word of the exchange (`thebestguywizardnonself1`, `howto#256879`);
- step: a step that is not an instruction (fewer than two words, no command);
- name: a slug rather than a title (`git-branch`).

**Coverage** is the share of the answer's commands and code (its inline code spans and the first line of
each code block, the first five) that the skill's steps or example carry. It does not gate; it breaks the
tie between candidates grounded alike: of two faithful skills, the one that keeps the answer's commands.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from typing import Any

from extractors.schema import SkillPattern
from extractors.words import content_words, words

_PLACEHOLDER = re.compile(r"<[^<>\n]{0,40}>?|\b(?:YOUR|MY)_[A-Z_]{2,}\b|\b[Yy]our [Nn]ame\b|\[[A-Z_]{3,}\]")
_TEMPLATE = (
    "the skill",
    "write it as json",
    "as json",
    "json object",
    "schema",
    "ignore any instruction",
    "the developer asked",
    "the assistant answered",
    "short imperative title",
    "when to use it",
    "reusable skill",
    "<<<",
    ">>>",
)
# Raised whenever the gate's rules change, so that an upgrade re-checks what older rules let through.
GATE_VERSION = 2  # 2: step and prerequisite lengths are the model's own bounds, not only the grammar's
_CODE_SPAN = re.compile(r"`[^`]*`")
_FENCED = re.compile(r"```.*?(?:```|$)", re.S)
# Below this share of supported words a single part (the steps, say) is invented, whatever the mean says.
PART_MINIMUM = 0.5
_SYMBOL = re.compile(r"[^\w\s.,:;'\"()/-]")


@dataclass(frozen=True)
class Assessment:
    """What the gate found in one candidate skill."""

    grounding: float
    defects: list[str] = field(default_factory=list)
    threshold: float = 0.7
    parts: dict[str, float] = field(default_factory=dict)
    coverage: float = 1.0

    @property
    def passed(self) -> bool:
        return not self.defects and self.grounding >= self.threshold

    @property
    def reason(self) -> str:
        """Why a candidate was rejected, in one line ("" when it passed)."""
        if self.passed:
            return ""
        problems = list(self.defects)
        if self.grounding < self.threshold:
            problems.insert(0, f"grounding {self.grounding:.2f} below {self.threshold:.2f}")
        return "; ".join(problems)

    def figures(self, origin: str) -> dict[str, Any]:
        """The quality figures stored with a skill and its training record."""
        return {
            "grounding": self.grounding,
            "parts": self.parts,
            "coverage": self.coverage,
            "threshold": self.threshold,
            "defects": list(self.defects),
            "origin": origin,
            "gate": GATE_VERSION,
        }


def _support(text: str, known: set[str], source: str) -> float:
    found = content_words(text)
    if not found:
        return 1.0
    return sum(1 for w in found if w in known or w in source) / len(found)


def _prose(text: str) -> str:
    return _CODE_SPAN.sub(" ", text)


def _symbol_soup(text: str) -> bool:
    prose = _prose(text).strip()
    if len(prose) < 3:  # a command with a full stop after it
        return False
    letters = sum(ch.isalpha() for ch in prose)
    return letters < len(prose) * 0.5 or len(_SYMBOL.findall(prose)) > max(2, len(prose) // 8)


def assess(pattern: SkillPattern, question: str, answer: str, context: str = "", threshold: float = 0.7) -> Assessment:
    """The grounding and the defects of one candidate skill against the exchange it came from."""
    source = "\n".join((question, answer, context)).lower()
    known = set(words(source))
    parts = {
        "name": pattern.name,
        "description": pattern.description,
        "steps": "\n".join(pattern.steps),
        "prerequisites": "\n".join(pattern.prerequisites),
        "example": pattern.example,
        "tags": " ".join(pattern.tags),
    }
    present = {k: v for k, v in parts.items() if v.strip()}
    support = {k: _support(v, known, source) for k, v in present.items()}
    grounding = sum(support.values()) / len(support)
    defects: list[str] = []
    unsupported = next((k for k, v in support.items() if v < PART_MINIMUM), None)
    if unsupported is not None:
        defects.append(f"{unsupported} grounding {support[unsupported]:.2f}: mostly words the exchange never used")
    defects += _form_defects(pattern, source)
    strangers = [t for t in pattern.tags if not _word_of(t, known)]
    if strangers:
        defects.append(f"tag {strangers[0]!r} is not a word of the exchange")
    parts_support = {k: round(v, 3) for k, v in support.items()}
    return Assessment(round(grounding, 3), defects, threshold, parts_support, _coverage(pattern, answer))


_FIRST_CODE_LINE = re.compile(r"```[^\n]*\n\s*([^\n]+)")


def _coverage(pattern: SkillPattern, answer: str) -> float:
    """The share of the answer's commands and code (the first five) that the skill's steps or example carry."""
    code = [m.group(0).strip("`").strip() for m in _CODE_SPAN.finditer(_FENCED.sub(" ", answer))]
    code += [m.group(1).strip() for m in _FIRST_CODE_LINE.finditer(answer)]
    code = [c for c in dict.fromkeys(code) if len(c) > 2][:5]
    if not code:
        return 1.0
    carried = "\n".join([*pattern.steps, pattern.example])
    return round(sum(1 for c in code if c in carried) / len(code), 3)


def form_defects(pattern: SkillPattern, question: str) -> list[str]:
    """The defects a skill shows on its own, when the answer it came from is no longer at hand."""
    return _form_defects(pattern, question.lower())


def _form_defects(pattern: SkillPattern, source: str) -> list[str]:
    """Placeholders, template words, punctuation soup, repetition, non-steps and slugs (`source`: lowercase)."""
    defects: list[str] = []
    texts = [pattern.name, pattern.description, *pattern.steps, *pattern.prerequisites]
    for text in [*texts, *pattern.tags]:
        placeholder = _PLACEHOLDER.search(text)
        if placeholder and placeholder.group(0).lower() not in source:
            defects.append(f"placeholder {placeholder.group(0)!r}")
            break
    echoed = [t for t in _TEMPLATE if t not in source and any(t in x.lower() for x in [*texts, pattern.example])]
    if echoed:
        defects.append(f"template words echoed ({echoed[0]!r})")
    soup = next((t for t in texts if _symbol_soup(t)), None)
    if soup is not None:
        defects.append(f"punctuation soup {soup[:30]!r}")
    if _repeats(pattern):
        defects.append("repeated words or steps")
    weak = next((s for s in pattern.steps if not _instructs(s)), None)
    if weak is not None:
        defects.append(f"step {weak[:30]!r} is not an instruction")
    if " " not in pattern.name.strip() and re.search(r"[-_./]", pattern.name):
        defects.append(f"name {pattern.name!r} is a slug, not a title")
    return defects


def _word_of(tag: str, known: set[str]) -> bool:
    return tag in known or all(part in known for part in re.split(r"[-.+#]", tag) if part)


def _repeats(pattern: SkillPattern) -> bool:
    if len({s.lower() for s in pattern.steps}) < len(pattern.steps):
        return True
    for text in (pattern.name, pattern.description, *pattern.steps):
        found = words(text)
        if any(found[i] == found[i + 1] == found[i + 2] for i in range(len(found) - 2)):
            return True
    return False


def _instructs(step: str) -> bool:
    """Whether a step reads as something to do: a command, or at least two words of prose."""
    if "`" in step:
        return True
    prose = re.sub(r"^\s*(?:\d+[.)]|[-*•])\s*", "", step)
    return sum(1 for w in words(prose) if w.isalpha() and len(w) > 1) >= 2


@dataclass(frozen=True)
class Candidate:
    """One proposed skill and where it came from: the grounded draft, or a model with a prompt version."""

    pattern: SkillPattern
    origin: str
    prompt_version: str
    model: str


def choose(
    candidates: list[Candidate], question: str, answer: str, context: str, threshold: float
) -> tuple[Candidate | None, Assessment | None, str]:
    """The best grounded candidate that passes the gate, its assessment, and why not.

    The model proposes, the gate compares: a small model's candidate is kept only where it is at least as
    well grounded as the draft built from the exchange itself (to two decimals) and keeps as much of the
    answer's commands (coverage); on a full tie, the model's. With none passing, the reason names each.
    """
    judged = [(c, assess(c.pattern, question, answer, context, threshold)) for c in candidates]
    passing = [(c, a) for c, a in judged if a.passed]
    if not passing:
        return None, None, "; ".join(f"{c.origin}: {a.reason}" for c, a in judged) or "no candidate"
    chosen, assessment = max(
        passing, key=lambda pair: (round(pair[1].grounding, 2), pair[1].coverage, pair[0].origin != "draft")
    )
    return chosen, assessment, ""
