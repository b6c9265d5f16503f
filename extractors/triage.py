"""Exchanges that hold no reusable skill, decided before any model call: cheap, explainable checks.

A skill is a way of doing something. Greetings, thanks, arithmetic, questions about the assistant itself,
questions of fact, answers that carry no procedure (no step, no instruction, no command or code) and an
agent's report of the changes it made to this project (with no code to learn from) hold none, whatever
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
        "activate",
        "add",
        "adjust",
        "allow",
        "amend",
        "annotate",
        "append",
        "apply",
        "archive",
        "assert",
        "assign",
        "attach",
        "avoid",
        "backup",
        "benchmark",
        "bind",
        "browse",
        "build",
        "bump",
        "cache",
        "call",
        "cast",
        "change",
        "check",
        "checkout",
        "choose",
        "clean",
        "clear",
        "click",
        "clone",
        "close",
        "collapse",
        "comment",
        "commit",
        "compile",
        "compress",
        "configure",
        "connect",
        "convert",
        "copy",
        "create",
        "deactivate",
        "debug",
        "declare",
        "decode",
        "decompress",
        "decrease",
        "decrypt",
        "define",
        "delete",
        "deny",
        "deploy",
        "describe",
        "detach",
        "disable",
        "disconnect",
        "document",
        "downgrade",
        "download",
        "drop",
        "edit",
        "enable",
        "encode",
        "encrypt",
        "ensure",
        "enter",
        "escape",
        "exclude",
        "exit",
        "expand",
        "export",
        "expose",
        "extend",
        "extract",
        "fetch",
        "filter",
        "find",
        "fix",
        "format",
        "generate",
        "give",
        "grant",
        "handle",
        "ignore",
        "implement",
        "import",
        "include",
        "increase",
        "init",
        "initialize",
        "insert",
        "inspect",
        "install",
        "keep",
        "kill",
        "launch",
        "limit",
        "list",
        "load",
        "lock",
        "log",
        "make",
        "map",
        "mark",
        "measure",
        "merge",
        "mock",
        "modify",
        "mount",
        "move",
        "navigate",
        "open",
        "optimize",
        "override",
        "parse",
        "pass",
        "paste",
        "patch",
        "pick",
        "pin",
        "pipe",
        "point",
        "prefer",
        "prefix",
        "prepend",
        "press",
        "print",
        "profile",
        "prune",
        "publish",
        "pull",
        "purge",
        "push",
        "put",
        "query",
        "quit",
        "quote",
        "raise",
        "read",
        "rebase",
        "rebuild",
        "redirect",
        "reduce",
        "refactor",
        "register",
        "reinstall",
        "release",
        "reload",
        "remove",
        "rename",
        "render",
        "replace",
        "reset",
        "resize",
        "restart",
        "restore",
        "return",
        "reverse",
        "revert",
        "revoke",
        "rewrite",
        "rotate",
        "run",
        "save",
        "scan",
        "schedule",
        "search",
        "select",
        "send",
        "serve",
        "set",
        "shrink",
        "sign",
        "skip",
        "sort",
        "source",
        "specify",
        "split",
        "squash",
        "stage",
        "start",
        "stash",
        "stop",
        "store",
        "stub",
        "switch",
        "sync",
        "tag",
        "tail",
        "test",
        "trace",
        "trim",
        "try",
        "tune",
        "turn",
        "tweak",
        "type",
        "uncomment",
        "uninstall",
        "unpack",
        "unset",
        "unstage",
        "unzip",
        "update",
        "upgrade",
        "upload",
        "use",
        "validate",
        "verify",
        "visit",
        "wait",
        "watch",
        "wrap",
        "write",
        "zip",
    }
)
# A question after a fact (a date, a name, who did what), not after a way of doing something.
_FACT = re.compile(
    r"(?i)\b(?:tell me|what(?:'s| is| was| were)) the (?:date|year|day|time|name|capital|population|price|score|winner"
    r"|weather|release date|birthday|age)\b|^\W*when (?:is|was|were|did|does|will)\b|^\W*who (?:is|was|were|created"
    r"|invented|wrote|won|founded|made)\b"
)
# An agent's report of what it changed in this project ("Adjusted the ring...", "I've updated config.py").
_REPORT = re.compile(
    r"(?i)^\W*(?:i(?:'ve| have)?\s+|i just\s+|done[.!]?\s+)?(?:adjusted|updated|changed|fixed|added|removed|modified"
    r"|refactored|implemented|moved|renamed|replaced|switched|reworked|tweaked|rewrote|created|deleted|cleaned up)\b"
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
    if _FACT.search(q):
        return "a question of fact (a date, a name, who did what), not a way of doing something"
    if len(answer.strip()) < 12:
        return "the answer is too short to hold a procedure"
    if not has_procedure(answer):
        return "the answer carries no procedure (no steps, instructions, commands or code)"
    if _REPORT.match(answer) and "```" not in answer:
        return "the answer reports changes made to this project, not a way of doing something"
    return None
