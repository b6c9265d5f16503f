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
import math
import signal
import socket
import sys
from collections.abc import Sequence
from pathlib import Path
from types import FrameType
from typing import IO, Any

# The daemon's socket and token in its home (daemon/control.py names them too; importing it would cost more).
SOCKET_NAME = "skilld.sock"
TOKEN_NAME = "api.token"
# How long the whole hook may take, reading stdin included, before it gives up silently.
DEADLINE_SECONDS = 1.0
# The events a hook answers, and whether the event carries the person's prompt.
CLAUDE_CODE_EVENTS = {"UserPromptSubmit": True, "SessionStart": False}


class _Late(Exception):
    """The deadline passed."""


def _late(signum: int, frame: FrameType | None) -> None:
    raise _Late


def ask(home: Path, command: str, payload: dict[str, Any]) -> Any:
    """One command to the running daemon over its unix socket, as HTTP/1.0 (the answer is the body up to the
    end of the stream, never chunked). `daemon/control.py` is the client for everything else; its
    http.client costs a hook a quarter of its time budget in imports alone. ConnectionError when no daemon
    answers, or it answers an error."""
    body = json.dumps(payload).encode()
    token = (home / TOKEN_NAME).read_text().strip()
    head = (
        f"POST /v1/commands/{command} HTTP/1.0\r\nHost: localhost\r\nAuthorization: Bearer {token}\r\n"
        f"Content-Type: application/json\r\nContent-Length: {len(body)}\r\n\r\n"
    )
    with socket.socket(socket.AF_UNIX, socket.SOCK_STREAM) as sock:
        sock.connect(str(home / SOCKET_NAME))
        sock.sendall(head.encode() + body)
        chunks = []
        while chunk := sock.recv(65536):
            chunks.append(chunk)
    status, _, rest = b"".join(chunks).partition(b"\r\n")
    if status.split(b" ")[1:2] != [b"200"]:
        raise ConnectionError(f"daemon answered {status.decode(errors='replace')}")
    return json.loads(rest.partition(b"\r\n\r\n")[2])


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
    name = event.get("hook_event_name")
    if name not in CLAUDE_CODE_EVENTS:
        return None
    prompt = event.get("prompt") if CLAUDE_CODE_EVENTS[name] else None
    if CLAUDE_CODE_EVENTS[name] and not (isinstance(prompt, str) and prompt.strip()):
        return None
    session = event.get("session_id")
    payload = {"prompt": prompt, "session": session if isinstance(session, str) and session else None}
    answer = ask(home, "context", {**payload, "client": "claude-code"})
    markdown = answer.get("markdown") if isinstance(answer, dict) else None
    if not markdown:
        return None
    return {"hookSpecificOutput": {"hookEventName": name, "additionalContext": markdown}}


def run(options: dict[str, str], args: list[str], stdin: IO[str] | None = None, stdout: IO[str] | None = None) -> int:
    """Run a hook; always 0. Prints its output, or nothing when there is none, it is late, or anything fails
    (the deadline firing while the timer is put away, a pipe the editor already closed, a bad argument)."""
    try:
        output = _answer(options, args, stdin or sys.stdin)
        if output is not None:
            out = stdout or sys.stdout
            out.write(json.dumps(output, ensure_ascii=False) + "\n")
            out.flush()
    except BaseException:  # whatever happened (a deadline, a closed pipe): the prompt goes on untouched
        pass
    return 0


def _answer(options: dict[str, str], args: list[str], stdin: IO[str]) -> dict[str, Any] | None:
    """The hook's output, within the deadline (`_Late` past it)."""
    from daemon.locations import find_home

    deadline = DEADLINE_SECONDS
    if len(args) >= 3 and args[1] == "--deadline":
        deadline = float(args[2])
        if not math.isfinite(deadline):
            return None
        deadline = min(max(deadline, 0.05), 30.0)
    if args[0] != "claude-code":
        return None
    previous = signal.signal(signal.SIGALRM, _late)
    signal.setitimer(signal.ITIMER_REAL, deadline)
    try:
        event = json.loads(stdin.read())
        return claude_code(event, find_home(options.get("home"), options.get("config")), deadline)
    finally:
        signal.setitimer(signal.ITIMER_REAL, 0)
        signal.signal(signal.SIGALRM, previous)
