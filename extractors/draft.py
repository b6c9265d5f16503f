"""The grounded draft of a skill: built only from what the exchange says, with no model at all.

The question's wording names the skill ("How do I undo my last commit?" is "Undo my last commit"); the
answer's own structure gives the steps (its numbered or bulleted items, else its sentences and clauses that
give an instruction or carry a command); its first code block or command is the example; its opening
sentence the description; words of the question that the answer uses too are the tags. A model may do
better, and the quality gate compares: the draft is the floor a small model cannot push the library below.
"""

from __future__ import annotations

import re

from pydantic import ValidationError

from extractors.schema import TAG_PATTERN, SkillPattern
from extractors.triage import IMPERATIVE
from extractors.words import STOPWORDS, content_words, words

_ASKING = re.compile(
    r"(?i)^(?:please\s+|hey,?\s+|so,?\s+)*(?:how (?:do|can|should|would|could) (?:i|you|we|one)\s+|how to\s+"
    r"|(?:can|could|would|will) you(?: please)?\s+|i (?:want|need|would like|'d like) to\s+|help me(?: to)?\s+"
    r"|what(?:'s| is) the (?:best |right |easiest |correct )?way to\s+|is there a way to\s+|show me how to\s+)"
)
_LIST_ITEM = re.compile(r"(?m)^\s*(?:\d+[.)]|[-*•])\s+(.+)$")
_SENTENCE = re.compile(r"[^.!?\n]+(?:[.!?](?=\s|$)|$)")
_FENCE = re.compile(r"```[^\n]*\n(.*?)(?:```|$)", re.S)
_INLINE_CODE = re.compile(r"`([^`\n]{2,})`")
_MARKUP = re.compile(r"\*\*([^*\n]+)\*\*|__([^_\n]+)__|^#+\s*", re.M)
_TAG = re.compile(TAG_PATTERN)
MAX_STEPS = 5


def _clip(text: str, limit: int) -> str:
    """Text cut at a word boundary to at most `limit` characters."""
    text = " ".join(text.split())
    if len(text) <= limit:
        return text
    cut = text[:limit].rsplit(" ", 1)[0]
    return cut if len(cut) >= limit // 2 else text[:limit]


def skill_name(question: str) -> str:
    """The skill a question asks for, as a short title: "How do I undo a commit?" -> "Undo a commit"."""
    first = re.split(r"(?<=[?!.])\s|\n", question.strip(), maxsplit=1)[0]
    name = _ASKING.sub("", first).strip().rstrip("?!.").strip()
    return _clip(name[:1].upper() + name[1:], 60)


def _clean(text: str) -> str:
    plain = _MARKUP.sub(lambda m: m.group(1) or m.group(2) or "", text)
    return " ".join(plain.split()).strip(" -:")


def _masked(text: str) -> tuple[str, list[str]]:
    """Text with its inline code spans set aside, so that a `.` or `**` inside code splits or strips nothing."""
    spans: list[str] = []

    def keep(match: re.Match[str]) -> str:
        spans.append(match.group(0))
        return f"\x00{len(spans) - 1}\x00"

    return _INLINE_CODE.sub(keep, text), spans


def _unmasked(text: str, spans: list[str]) -> str:
    return re.sub(r"\x00(\d+)\x00", lambda m: spans[int(m.group(1))], text)


def _clean_text(text: str) -> str:
    masked, spans = _masked(text)
    return _unmasked(_clean(masked), spans)


def _sentences(text: str) -> list[str]:
    """The sentences of some prose, cleaned of markup, code spans intact."""
    masked, spans = _masked(text)
    return [_unmasked(_clean(m.group(0)), spans) for m in _SENTENCE.finditer(masked) if m.group(0).strip()]


def _imperative(text: str) -> bool:
    first = re.match(r"[A-Za-z]+", text)
    return bool(first and first.group(0).lower() in IMPERATIVE)


def _instruction(text: str) -> bool:
    return _imperative(text) or bool(_INLINE_CODE.search(text))


def _as_step(clause: str) -> str | None:
    """A clause as a step: a command alone ("then `systemctl --user daemon-reload`") is an instruction to run
    it; a lone name in code (`styles.css`: ...) is a label, not a step."""
    if not clause.startswith("`"):
        return clause
    command = _INLINE_CODE.match(clause)
    if command is None or " " not in command.group(1).strip():
        return None if command is not None and command.end() >= len(clause.rstrip(".")) else clause
    return f"Run {clause}"


def answer_steps(answer: str) -> list[str]:
    """Steps the answer gives: its list items, else its sentences and clauses that instruct or hold a command."""
    prose = _FENCE.sub(" ", answer)
    items = [_clean_text(m.group(1)) for m in _LIST_ITEM.finditer(prose)]
    items = [item for item in items if _instruction(item)]  # "ai.js: 74" in a list of results is no step
    if len(items) < 2:
        items = []
        for sentence in _sentences(prose):
            if _imperative(sentence):  # "Use slicing: `ys = xs[::-1]` returns ..." is one instruction
                items.append(sentence)
                continue
            masked, spans = _masked(sentence)
            clauses = [_unmasked(c.strip(), spans) for c in re.split(r";\s+|:\s+|,?\s+then\s+", masked)]
            items += [step for c in clauses if c and _instruction(c) and (step := _as_step(c))]
    if not items:
        items = [f"Run `{_clip(line, 140)}`" for line in _code_lines(answer)[:1]]
    steps: list[str] = []
    for item in items:
        step = _clip(item, 150)
        if len(step) >= 3 and step not in steps:
            steps.append(step[:1].upper() + step[1:])
    return steps[:MAX_STEPS]


def _code_lines(answer: str) -> list[str]:
    block = _FENCE.search(answer)
    lines = block.group(1).strip().splitlines() if block else []
    return [line for line in lines if line.strip()] or [m.group(1) for m in _INLINE_CODE.finditer(answer)]


def answer_example(answer: str) -> str:
    """The answer's first code block (or command) as the skill's example."""
    block = _FENCE.search(answer)
    if block is not None and block.group(1).strip():
        kept: list[str] = []
        for line in block.group(1).strip().splitlines():
            if sum(map(len, kept)) + len(kept) + len(line) > 300:
                break
            kept.append(line)
        return "\n".join(kept)
    inline = _INLINE_CODE.search(answer)
    return inline.group(1)[:300] if inline else ""


def answer_description(answer: str, name: str) -> str:
    """The answer's opening sentence, or what the skill does."""
    prose = _LIST_ITEM.sub(" ", _FENCE.sub(" ", answer))
    for sentence in _sentences(prose):
        # Not "That's it.", not "Overall: 1,134 lines.", not a question back to the person.
        if sum(w.isalpha() for w in content_words(sentence)) >= 3 and not sentence.endswith("?"):
            return _clip(sentence, 300)
    return _clip(f"How to {name[:1].lower()}{name[1:]}.", 300)


def exchange_tags(question: str, answer: str) -> list[str]:
    """Words of the question the answer uses too (then the question's other words): at most four tags."""
    asked = [w for w in words(question) if w not in STOPWORDS and len(w) >= 3 and _TAG.match(w)]
    answered = set(words(answer))
    ordered = [w for w in asked if w in answered] + [w for w in asked if w not in answered]
    return list(dict.fromkeys(ordered))[:4]


def grounded_draft(question: str, answer: str) -> SkillPattern | None:
    """A skill built from the exchange's own words, or None when it yields no valid one."""
    name = skill_name(question)
    steps = answer_steps(answer)
    tags = exchange_tags(question, answer)
    if len(name) < 3 or not steps or not tags:
        return None
    try:
        return SkillPattern(
            name=name,
            description=answer_description(answer, name),
            prerequisites=[],
            steps=steps,
            tags=tags,
            example=answer_example(answer),
        )
    except ValidationError:
        return None
