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
    r"|what(?:'s| is) the (?:best |right |easiest |correct )?way to\s+|is there a way to\s+|show me how to\s+"
    r"|write (?:me )?(?:a|an) (?:command|one-liner|shell command|script|snippet) (?:to|that)\s+)"
)
_LIST_ITEM = re.compile(r"(?m)^\s*(?:\d+[.)]|[-*•])\s+(.+)$")
_SENTENCE = re.compile(r"[^.!?\n]+(?:[.!?](?=\s|$)|(?=\n)|$)")
_FENCE = re.compile(r"```([^\n`]*)\n(.*?)(?:```|$)", re.S)
_SHELLS = frozenset({"bash", "sh", "shell", "console", "zsh", "fish", "powershell", "ps1", "cmd", "terminal", ""})
# What may come before an instruction: "First, run", "From the project root, create", "Optionally add".
_LEAD = re.compile(
    r"(?i)^(?:(?:first|then|next|finally|now|also|optionally|afterwards|after that|lastly)\b,?\s+"
    r"|(?:only\s+)?(?:from|in|inside|within|at|after|before|once|if|when|on|for)\b[^,.;:]{1,40},\s+)"
)
_MODAL = re.compile(r"(?i)^(?:you (?:can|could|should|must|need to|may want to|might want to)|just|simply)\s+")
# Lines of code that do not do the work: comments, imports, definitions, prints, closing brackets.
_NOT_KEY = re.compile(
    r"^\s*(?:#|//|--|/\*|\*|import\b|from\b|def\b|class\b|async def\b|fn\b|func\b|print\(|[)}\]]+[,;]?\s*$"
    r"|\[[^\]]*\]\s*$|[\w.-]+:\s*$)"
)
_MARK = re.compile(r"\x01(\d+)\x01")
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


_PRONOUN = re.compile(r"(?i)\b(?:it|them|this|that|these|those)\b")
_HOW_CLAUSE = re.compile(r"(?i),?\s*\b(how (?:do|can|should) (?:i|we)\b.*)$")
_ENDINGS = "|".join(sorted(STOPWORDS, key=len, reverse=True))
_TRAILING = re.compile(r"(?i)(?:[\s,;:-]+|\s+(?:" + _ENDINGS + r"|how|not|every|each|any|all|some|without))+$")


def _asked(text: str) -> str:
    """A request with its asking words taken off ("can you show me how to X" -> "X"), as often as they stack."""
    while (stripped := _ASKING.sub("", text, count=1)) != text:
        text = stripped
    return text.strip().rstrip("?!.").strip()


def _title(text: str, limit: int = 60) -> str:
    """A title of at most `limit` characters, cut after a phrase (a comma) or a word, never on a stopword."""
    text = " ".join(text.split())
    if len(text) > limit:
        head = text[:limit]
        comma = max(head.rfind(","), head.rfind(";"))
        text = head[:comma] if comma >= 25 else head.rsplit(" ", 1)[0]
    text = _TRAILING.sub("", text) or text
    return text[:1].upper() + text[1:]


def skill_name(question: str) -> str:
    """The skill a question asks for, as a short title: "How do I undo a commit?" -> "Undo a commit".

    Of a question in several sentences, the one asking (ends with "?"); of a situation followed by "how do I
    X" ("Docker fills my disk, how do I clean it up?"), X, unless X only points back at the situation ("it").
    """
    sentences = [s.strip() for s in re.split(r"(?<=[?!.])\s+|\n+", question.strip()) if s.strip()]
    if not sentences:
        return ""
    asking = next((s for s in sentences if s.endswith("?")), sentences[0])
    situation = sentences[0] if asking is not sentences[0] else ""
    clause = _HOW_CLAUSE.search(asking)
    if clause is not None and clause.start() > 0:
        situation, asking = asking[: clause.start()], clause.group(1)
    name = _asked(asking)
    if situation and (_PRONOUN.search(name) or len(content_words(name)) < 2):
        name = _asked(situation)
    return _title(name)


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
    """Whether a sentence opens with an instruction ("Run", "First, run", "You can run")."""
    first = re.match(r"[A-Za-z]+", _MODAL.sub("", _LEAD.sub("", text)))
    return bool(first and first.group(0).lower() in IMPERATIVE)


_DESCRIBES = re.compile(r"(?i)^(?:is|are|was|were|will|can|does|did|has|have|only|never|always|also|\w+[^s\W]s)\b")


def _command(text: str) -> bool:
    """Whether a clause is a command to run: a code span with arguments ("`systemctl --user daemon-reload`"),
    not the subject of a description ("`docker compose ps` shows the state")."""
    span = _INLINE_CODE.match(text)
    if span is None or " " not in span.group(1).strip():
        return False
    return not _DESCRIBES.match(text[span.end() :].strip(" ,"))


def _instruction(text: str) -> bool:
    return _imperative(text) or _command(text)


def _as_step(clause: str) -> str:
    """A clause as a step: a command alone is an instruction to run it; "You can use X" is "Use X"."""
    if _command(clause) and not _imperative(clause):
        return f"Run {clause}"
    return _MODAL.sub("", clause)


def _fenced(answer: str) -> tuple[str, list[tuple[str, str]]]:
    """The answer with each fenced block replaced by a marker line, and the blocks (language, code)."""
    blocks: list[tuple[str, str]] = []

    def mark(match: re.Match[str]) -> str:
        blocks.append((match.group(1).strip().split(" ")[0].lower(), match.group(2).strip()))
        return f"\n\x01{len(blocks) - 1}\x01\n"

    return _FENCE.sub(mark, answer), blocks


def _with_code(step: str, block: tuple[str, str] | None, hints: list[set[str]]) -> str:
    """A step that introduces a code block ("Create the role:") with the block's line that does the work."""
    if block is None:
        return step
    language, code = block
    line = code if "\n" not in code else _key_line(language, code, [set(content_words(step)), *hints])
    if not line or len(step) + len(line) + 4 > 150:
        return step
    return f"{step.rstrip(':').rstrip()}: `{line}`"


def _list_items(prose: str, blocks: list[tuple[str, str]], hints: list[set[str]]) -> list[str]:
    """The answer's list items that instruct; an item ending in ":" takes the code block after it."""
    items: list[str] = []
    for match in _LIST_ITEM.finditer(prose):
        item = _clean_text(match.group(1))
        after = _MARK.match(prose[match.end() :].lstrip())
        if after is not None and match.group(1).rstrip().endswith(":"):
            item = _with_code(item, blocks[int(after.group(1))], hints)
        if _instruction(item):  # "ai.js: 74" in a list of results is no step
            items.append(_as_step(item))
    return items


# "The cleanest way is to mount an adapter", "the fix is to return it": an instruction inside a statement.
_WAY = re.compile(
    r"(?i)\b(?:way (?:\w+ ){0,3}is to|(?:fix|trick|solution|answer) is to|you(?:'ll| will)? (?:want|need|have) to)\s+"
)


def _sentence_steps(prose: str, blocks: list[tuple[str, str]], hints: list[set[str]]) -> list[str]:
    """The answer's sentences and clauses that instruct or hold a command; a sentence ending in ":" right
    before a code block takes the block's line that does the work."""
    items: list[str] = []
    segments = _MARK.split(prose)  # text, block number, text, ...
    for at in range(0, len(segments), 2):
        text = segments[at]
        introduced = blocks[int(segments[at + 1])] if at + 1 < len(segments) and text.rstrip().endswith(":") else None
        sentences = _sentences(text)
        for index, sentence in enumerate(sentences):
            if _imperative(sentence):  # "Use slicing: `ys = xs[::-1]` returns ..." is one instruction
                last = index == len(sentences) - 1
                items.append(_with_code(_as_step(sentence), introduced if last else None, hints))
                continue
            way = _WAY.search(sentence)
            if way is not None and _imperative(sentence[way.end() :]):
                last = index == len(sentences) - 1
                items.append(_with_code(sentence[way.end() :], introduced if last else None, hints))
                continue
            masked, spans = _masked(sentence)
            clauses = [_unmasked(c.strip(), spans) for c in re.split(r";\s+|:\s+|,?\s+then\s+", masked)]
            items += [_as_step(c) for c in clauses if c and _instruction(c)]
    return items


def _key_line(language: str, code: str, hints: list[set[str]]) -> str | None:
    """The line of a code block that does the work: for a shell, the first command; else a complete line that
    uses most of the hints, tier by tier (not a comment, an import, a definition, a print or a bracket)."""
    lines = [line.strip() for line in code.splitlines() if line.strip() and not _NOT_KEY.match(line)]
    if not lines:
        return None
    if language in _SHELLS:
        return lines[0].removeprefix("$ ")

    def weight(line: str) -> tuple[int, ...]:
        lower = line.lower()
        return (_balanced(line), *(sum(len(h) for h in tier if h in lower) for tier in hints), -lines.index(line))

    return max(lines, key=weight)


def _balanced(line: str) -> bool:
    """Whether a line closes every bracket it opens (`x = f(a)`, not the `x = f(` of a call over lines)."""
    return all(line.count(a) == line.count(b) for a, b in ("()", "[]", "{}"))


def _clip_step(text: str, limit: int = 150) -> str:
    """A step of at most `limit` characters: cut after a sentence or clause where one ends late enough, else
    after a word, never inside a code span and never on a stopword."""
    if len(text) <= limit:
        return text
    head = text[:limit]
    for separator, keep in ((". ", 1), ("; ", 0)):
        cut = head.rfind(separator)
        while cut >= limit // 3 and head[:cut].count("`") % 2:
            cut = head.rfind(separator, 0, cut)
        if cut >= limit // 3:
            return head[: cut + keep]
    words_cut = head.rsplit(" ", 1)[0]
    if words_cut.count("`") % 2:
        words_cut = words_cut[: words_cut.rfind("`")]
    return _TRAILING.sub("", words_cut) or words_cut


def answer_steps(answer: str, question: str = "") -> list[str]:
    """Steps the answer gives: its list items, else its sentences and clauses that instruct or hold a command,
    else the line of its code that does the work."""
    prose, blocks = _fenced(answer)
    named = {m.group(1).lower() for m in _INLINE_CODE.finditer(prose) if len(m.group(1)) > 2}
    hints = [named, {w for w in content_words(question) if len(w) > 2}]
    items = _list_items(prose, blocks, hints)
    if len(items) < 2:
        items = _sentence_steps(prose, blocks, hints)
    if not items and blocks:
        language, code = blocks[0]
        line = _key_line(language, code, hints)
        if line is not None:
            items = [f"{'Run' if language in _SHELLS else 'Use'} `{_clip(line, 140)}`"]
    if not items:
        items = [f"Run `{_clip(m.group(1), 140)}`" for m in _INLINE_CODE.finditer(answer)][:1]
    steps: list[str] = []
    for item in items:
        step = _clip_step(" ".join(item.split())).rstrip(":").rstrip()
        if len(step) >= 3 and step not in steps:
            steps.append(step[:1].upper() + step[1:])
    return steps[:MAX_STEPS]


def answer_example(answer: str) -> str:
    """The answer's first code block (or command) as the skill's example."""
    block = _FENCE.search(answer)
    if block is not None and block.group(2).strip():
        kept: list[str] = []
        for line in block.group(2).strip().splitlines():
            if sum(map(len, kept)) + len(kept) + len(line) > 300:
                break
            kept.append(line)
        return "\n".join(kept)
    inline = _INLINE_CODE.search(answer)
    return inline.group(1)[:300] if inline else ""


# A name that tells a situation ("Docker is eating all my disk space", "Npm audit flags a package") rather
# than a task ("Undo my last commit").
_SITUATION = re.compile(
    r"^(?:why|when)\b|\b(?:is|are|was|were|keeps?|says|flags|fails|breaks|won'?t|doesn'?t|can'?t|isn'?t)\b", re.I
)


def answer_description(answer: str, name: str) -> str:
    """The answer's opening sentence (the prose before its first list item or code block), or what the
    skill is for. A closing remark after the steps ("If you'd rather ..., use ... instead", "Run `deactivate`
    when ...") is a caveat, not what the skill does: an editor shows the description first."""
    ends = [m.start() for m in (_LIST_ITEM.search(answer), _FENCE.search(answer)) if m is not None]
    opening = answer[: min(ends)] if ends else answer
    for sentence in _sentences(opening):
        # Not "That's it.", not "Overall: 1,134 lines.", not a question back to the person.
        if sum(w.isalpha() for w in content_words(sentence)) >= 3 and not sentence.endswith("?"):
            return _clip(sentence, 300)
    subject = f"{name[:1].lower()}{name[1:]}"
    # "Undo my last commit" is something to do; "Docker is eating all my disk space" is a situation.
    first = name.split(" ", 1)[0].lower()
    task = _imperative(name) or first in ("undo", "roll", "get", "show", "count", "take", "go", "bring")
    return _clip(f"What to do when {subject}." if not task and _SITUATION.search(name) else f"How to {subject}.", 300)


def exchange_tags(question: str, answer: str) -> list[str]:
    """Words of the question the answer uses too (then the question's other words): at most four tags."""
    asked = [w for w in words(question) if w not in STOPWORDS and len(w) >= 3 and _TAG.match(w)]
    answered = set(words(answer))
    ordered = [w for w in asked if w in answered] + [w for w in asked if w not in answered]
    return list(dict.fromkeys(ordered))[:4]


def grounded_draft(question: str, answer: str) -> SkillPattern | None:
    """A skill built from the exchange's own words, or None when it yields no valid one."""
    name = skill_name(question)
    steps = answer_steps(answer, question)
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
