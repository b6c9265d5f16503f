"""Code fences in a message Continue rendered: which lines open or close them, and which blocks are attachments.

Continue puts attached context into the person's message before the typed words (files attached with @ as
`` ```path/to/file `` blocks, one per item) and code selected into the input box as `` ```ext path (first-last) ``
blocks where it was placed. Those blocks are context, not the question.
"""

from __future__ import annotations

import re
from bisect import bisect_right

_BLANK_RUN = re.compile(r"\n{3,}")


def line_numbers(text: str, marker: str, indented: bool) -> list[int]:
    """The numbers of the lines of text that start with a marker (after blanks, where `indented`).

    A find loop, not a multiline regex: a regex tries every position of a 20 KB prompt, find jumps.
    """
    numbers: list[int] = []
    line, counted, at = 0, 0, 0
    while (found := text.find(marker, at)) >= 0:
        start = text.rfind("\n", 0, found) + 1
        if start == found or (indented and not text[start:found].strip(" \t")):
            line += text.count("\n", counted, start)
            counted = start
            numbers.append(line)
        newline = text.find("\n", found)
        if newline < 0:
            break
        at = newline + 1
    return numbers


def fence_info(line: str) -> str | None:
    """The info string of a code-fence line ("" for a bare fence), None when the line is no fence."""
    text = line.strip()
    if not text.startswith("```"):
        return None
    return text.lstrip("`").strip()


def split_attachments(message: str) -> tuple[str | None, list[str]]:
    """The person's own words in a user message, and the attached code blocks taken out of it.

    Attached blocks are files Continue put before the typed words (`` ```path/name.ext ``, an info string that
    names a file) and code selected into the input box anywhere in it (`` ```ext path (first-last) ``). A
    message that is nothing but attachments has no words of the person's own: None.
    """
    lines = message.split("\n")
    fences = line_numbers(message, "```", True)
    kept: list[str] = []
    attached: list[str] = []
    cut = 0  # the first line not yet kept or attached
    leading = True
    for i in fences:
        if i < cut:
            continue
        if leading and any(line.strip() for line in lines[cut:i]):
            leading = False
        info = fence_info(lines[i])
        if info is None or not ((leading and _names_file(info)) or _names_selection(info)):
            continue
        end = _attachment_end(lines, i, fences)
        if end is None:
            break  # everything after a block that never closes is inside it
        kept.extend(lines[cut:i])
        attached.append("\n".join(lines[i : end + 1]))
        cut = end + 1
    kept.extend(lines[cut:])
    query = "\n".join(kept).strip() if attached else message.strip()
    if attached and query:
        query = _squeeze_blank_lines(query)
    return query or None, attached


def _names_file(info: str) -> bool:
    return " " not in info and any(c in info for c in "/\\.")


def _names_selection(info: str) -> bool:
    """Whether a fence's info string is Continue's label for selected code: `py src/app.py (12-30)`."""
    if not info.endswith(")"):
        return False
    at = info.rfind(" (")
    first, dash, last = info[at + 2 : -1].partition("-")
    return at > 0 and dash == "-" and first.isdigit() and last.isdigit()


def _attachment_end(lines: list[str], opening: int, fences: list[int]) -> int | None:
    """Line of the fence that closes the attached block opened at `opening`, or None if it never closes.

    Attached files are often Markdown with fences of their own. A fence with an info string always opens a
    nested block; a bare fence closes one, except that at the outer level a bare fence closes the attachment
    only when a blank line (or the end) follows, as Continue always writes one there; otherwise it opens.
    `fences` lists the lines that may be fences, in order.
    """
    depth = 1
    for j in fences[bisect_right(fences, opening) :]:
        info = fence_info(lines[j])
        if info is None:
            continue
        if info:
            depth += 1
            continue
        blank_after = j + 1 >= len(lines) or not lines[j + 1].strip()
        if depth == 1 and not blank_after:
            depth = 2
            continue
        depth -= 1
        if depth == 0:
            return j
    return None


def _squeeze_blank_lines(text: str) -> str:
    # Taking a block out of the middle leaves the blank lines that surrounded it side by side.
    return _BLANK_RUN.sub("\n\n", text)
