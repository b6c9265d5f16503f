"""The part of an exchange's context its answer draws on, bounded: what a training example must keep.

A question like "why does this fail?" is answered from the file attached to it, not from the question. The
context (attached files, earlier turns, rules) is cut into blocks; a block counts when it holds at least two
of the answer's meaningful words that the question lacks. The best blocks, in their own order, are kept up to
a character budget; an answer that draws on none keeps no context at all.
"""

from __future__ import annotations

import re

from extractors.words import content_words

_BLOCK = re.compile(r"```.*?(?:```|$)|(?:(?!```)[^\n]|\n(?!\s*\n))+", re.S)
MIN_SHARED = 2


def _blocks(context: str) -> list[str]:
    return [m.group(0).strip() for m in _BLOCK.finditer(context) if m.group(0).strip()]


def relevant_context(question: str, answer: str, context: str, limit: int) -> str:
    """The blocks of the context the answer draws on, at most `limit` characters ("" when none)."""
    if not context.strip() or limit <= 0:
        return ""
    drawn = set(content_words(answer)) - set(content_words(question))
    scored = [(len(drawn & set(content_words(block))), index, block) for index, block in enumerate(_blocks(context))]
    kept: list[tuple[int, str]] = []
    budget = limit
    for shared, index, block in sorted(scored, key=lambda s: (-s[0], s[1])):
        if shared < MIN_SHARED or budget <= 0:
            break
        piece = block if len(block) <= budget else block[: max(0, budget - 1)].rstrip() + "…"
        kept.append((index, piece))
        budget -= len(piece) + 2
    return "\n\n".join(piece for _, piece in sorted(kept))


def training_prompt(question: str, context: str) -> str:
    """A fine-tuning example's user message: the question, after the context it needs when it needs one."""
    return f"Context:\n{context}\n\n{question}" if context else question
