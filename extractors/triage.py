"""Exchanges that hold no reusable skill, decided before any model call: cheap, explainable checks.

A skill is a way of doing something. Greetings, thanks, arithmetic, questions about the assistant itself
and answers that carry no procedure (no step, no instruction, no command or code) hold none, whatever
their feedback says.
"""

from __future__ import annotations

import re

_GREETING = re.compile(
    r"(?i)^\W*(?:hi|hello|hey|yo|thanks?|thank you|thx|ty|ok(?:ay)?|cool|great|nice|good (?:morning|evening|night)"
    r"|bye|goodbye|test(?:ing)?|ping)\b[\W\w]{0,20}$"
)
_ARITHMETIC = re.compile(r"^[\s\d.,+\-*/x×÷^()=?%]+$")
_ABOUT_ASSISTANT = re.compile(
    r"(?i)\b(?:who|what) are you\b|\bare you (?:an? |the )?(?:ai|bot|robot|model|llm|human|gpt|claude|qwen|deepseek"
    r"|running|there|able|online|connected)\b|\bwhat(?:'s| is) your name\b|\bwhat (?:model|llm) (?:are you|is this)"
    r"|\bwhat can you do\b|\bcan you (?:see|access|use) (?:any |the )?(?:tools?|internet|web|files)\b"
)
# Words that open an instruction, at the start of a sentence, a list item or a clause.
IMPERATIVE = frozenset(
    {
        "add",
        "apply",
        "build",
        "call",
        "cast",
        "change",
        "check",
        "choose",
        "clone",
        "commit",
        "compile",
        "configure",
        "convert",
        "copy",
        "create",
        "define",
        "delete",
        "deploy",
        "disable",
        "download",
        "edit",
        "enable",
        "export",
        "extract",
        "fetch",
        "filter",
        "find",
        "fix",
        "format",
        "generate",
        "give",
        "import",
        "increase",
        "install",
        "keep",
        "launch",
        "limit",
        "list",
        "load",
        "lock",
        "log",
        "make",
        "mark",
        "merge",
        "mount",
        "move",
        "open",
        "parse",
        "pass",
        "patch",
        "pin",
        "pipe",
        "point",
        "prefer",
        "print",
        "push",
        "put",
        "raise",
        "read",
        "rebase",
        "rebuild",
        "redirect",
        "reduce",
        "refactor",
        "register",
        "reload",
        "remove",
        "rename",
        "render",
        "replace",
        "reset",
        "restart",
        "restore",
        "return",
        "reverse",
        "revert",
        "rewrite",
        "rotate",
        "run",
        "save",
        "schedule",
        "search",
        "select",
        "send",
        "serve",
        "set",
        "sort",
        "split",
        "start",
        "stop",
        "store",
        "switch",
        "tag",
        "test",
        "trim",
        "try",
        "turn",
        "type",
        "unpack",
        "unset",
        "update",
        "upgrade",
        "use",
        "validate",
        "verify",
        "wrap",
        "write",
    }
)
_CLAUSE_START = re.compile(r"(?:^|[.!?:;]\s+|\bthen\s+|\n\s*(?:\d+[.)]|[-*•])?\s*)([A-Za-z]+)")
_CODE = re.compile(r"`[^`\n]{2,}`|```")
_LIST_ITEM = re.compile(r"(?m)^\s*(?:\d+[.)]|[-*•])\s+\S")


def has_procedure(answer: str) -> bool:
    """Whether an answer says how to do something: a list of steps, code, or an instruction."""
    if _CODE.search(answer) or len(_LIST_ITEM.findall(answer)) >= 2:
        return True
    return any(m.group(1).lower() in IMPERATIVE for m in _CLAUSE_START.finditer(answer))


def no_skill_reason(question: str, answer: str) -> str | None:
    """Why an exchange holds no reusable skill, or None when it may hold one."""
    q = " ".join(question.split())
    if _GREETING.match(q):
        return "a greeting or thanks, not a question"
    if _ARITHMETIC.match(q):
        return "arithmetic, not a skill"
    if _ABOUT_ASSISTANT.search(q):
        return "a question about the assistant itself"
    if len(answer.strip()) < 12:
        return "the answer is too short to hold a procedure"
    if not has_procedure(answer):
        return "the answer carries no procedure (no steps, instructions, commands or code)"
    return None
