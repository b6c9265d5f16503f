"""Editor hooks: put the skills relevant to a prompt in front of the model before it answers.

`skilld hook claude-code` is a Claude Code `UserPromptSubmit` (and `SessionStart`) hook. It reads the hook's
JSON on stdin, asks the running daemon for the context block (the `context` command) and prints the hook
output whose `hookSpecificOutput.additionalContext` holds it. A hook runs on every prompt, so this one is
fast and harmless: the standard library and the socket client only (no settings model, no store, no model),
and with no daemon, a daemon that does not answer within the deadline, or any error, it prints nothing and
exits 0, so the prompt goes on as if there were no hook.
"""

from __future__ import annotations

import json
import signal
import sys
from collections.abc import Sequence
from pathlib import Path
from types import FrameType
from typing import IO, Any

# How long the whole hook may take, reading stdin included, before it gives up silently.
DEADLINE_SECONDS = 1.0
# The events a hook answers, and whether the event carries the person's prompt.
CLAUDE_CODE_EVENTS = {"UserPromptSubmit": True, "SessionStart": False}


class _Late(Exception):
    """The deadline passed."""


def _late(signum: int, frame: FrameType | None) -> None:
    raise _Late


def hook_call(argv: Sequence[str]) -> tuple[dict[str, str], list[str]] | None:
    """The global options (`--home`, `--config`) and the hook's own arguments when `argv` calls a hook,
    else None (the command line handles it, help included)."""
    options: dict[str, str] = {}
    i = 0
    while i < len(argv):
        arg = argv[i]
        if arg in ("--home", "--config") and i + 1 < len(argv):
            options[arg[2:]] = argv[i + 1]
            i += 2
        elif arg.startswith(("--home=", "--config=")):
            key, value = arg[2:].split("=", 1)
            options[key] = value
            i += 1
        else:
            break
    rest = list(argv[i + 1 :])
    if i >= len(argv) or argv[i] != "hook" or not rest or {"-h", "--help"} & set(rest):
        return None
    return options, rest


def claude_code(event: dict[str, Any], home: Path, deadline: float) -> dict[str, Any] | None:
    """The hook output for one Claude Code hook input, or None when there is nothing to add."""
    from daemon import control

    name = event.get("hook_event_name")
    if name not in CLAUDE_CODE_EVENTS:
        return None
    prompt = event.get("prompt") if CLAUDE_CODE_EVENTS[name] else None
    if CLAUDE_CODE_EVENTS[name] and not (isinstance(prompt, str) and prompt.strip()):
        return None
    session = event.get("session_id")
    payload = {"prompt": prompt, "session": session if isinstance(session, str) and session else None}
    answer = control.call(home, "context", {**payload, "client": "claude-code"}, timeout=deadline)
    markdown = answer.get("markdown") if isinstance(answer, dict) else None
    if not markdown:
        return None
    return {"hookSpecificOutput": {"hookEventName": name, "additionalContext": markdown}}


def run(options: dict[str, str], args: list[str], stdin: IO[str] | None = None, stdout: IO[str] | None = None) -> int:
    """Run a hook; always 0. Prints its output, or nothing when there is none, it is late, or anything fails."""
    from daemon.locations import find_home

    stdin, stdout = stdin or sys.stdin, stdout or sys.stdout
    deadline = DEADLINE_SECONDS
    if len(args) >= 3 and args[1] == "--deadline":
        try:
            deadline = min(max(float(args[2]), 0.05), 30.0)
        except ValueError:
            return 0
    previous = signal.signal(signal.SIGALRM, _late)
    signal.setitimer(signal.ITIMER_REAL, deadline)
    try:
        if args[0] != "claude-code":
            return 0
        event = json.loads(stdin.read())
        output = claude_code(event, find_home(options.get("home"), options.get("config")), deadline)
    except Exception:  # late (_Late), no daemon, a bad input: a hook must never stand in the way
        return 0
    finally:
        signal.setitimer(signal.ITIMER_REAL, 0)
        signal.signal(signal.SIGALRM, previous)
    if output is not None:
        stdout.write(json.dumps(output, ensure_ascii=False) + "\n")
        stdout.flush()
    return 0
