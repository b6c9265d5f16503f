"""Claude Code session transcripts: `~/.claude/projects/<project>/<session>.jsonl`.

One interaction per prompt the person typed: a `user` line that is not a tool result, not `isMeta` (the
text a slash command expands to, caveats), not a compaction summary (`isCompactSummary`) and not a sidechain
(a subagent's own conversation); blocks the editor or the harness adds to it (`<system-reminder>`,
`<ide_selection>`, ...) are its context. Every
line after it, up to the next prompt, belongs to that turn: the assistant's text is the answer (an API
message split over several lines counts once), tool calls, tool errors (`is_error`), rejected tool uses,
the person's edits of a proposed change (`toolUseResult.userModified`) and interrupts are its signals.
The person's next prompt says how the turn went (`turns.py`). Slash commands are commands: with
arguments, the arguments are the request; without, a command is counted but is not a question.
"""

from __future__ import annotations

import re
from pathlib import PurePath
from typing import Any

from daemon.adapters.base import AdapterError, RecordModel, Timestamp, parse
from daemon.adapters.paths import base_name
from daemon.adapters.turns import finish_turn, verdict_fields
from daemon.interaction import RESPONSE_PARTS, SIGNALS, FileState, Interaction, Reading

TYPES = frozenset({"user", "assistant", "summary", "system"})
_COMMAND = re.compile(r"<command-name>\s*(/?[^<\s]+)\s*</command-name>")
_COMMAND_ARGS = re.compile(r"<command-args>(.*?)</command-args>", re.S)
_BASH_INPUT = re.compile(r"<bash-input>(.*?)</bash-input>", re.S)
# Text Claude Code itself writes as a user line: command output, interrupts, and their wrappers.
_TOOL_NOISE = ("<local-command-stdout>", "<local-command-stderr>", "<bash-stdout>", "<bash-stderr>")
_INTERRUPTED = "[Request interrupted by user"
# Blocks the editor extension or the harness puts into the person's message: context, not their words.
_HARNESS = re.compile(
    r"<(system-reminder|ide_opened_file|ide_selection|ide_diagnostics|user-prompt-submit-hook)>.*?</\1>\s*", re.S
)
_REJECTED = "The user doesn't want to proceed with this tool use"
_EDIT_TOOLS = frozenset({"Edit", "MultiEdit", "Write", "NotebookEdit"})

# A session's file: its id (`<uuid>.jsonl`), or a subagent's (`agent-<id>.jsonl`).
_SESSION_FILE = re.compile(
    r"^(?:agent-)?[0-9a-f]{8}(?:-?[0-9a-f]{4}){3}-?[0-9a-f]{12}\.jsonl$|^agent-[0-9a-f]+\.jsonl$"
)


# A prompt as the person types it into Claude Code (what its hooks receive): `/command arguments`.
# A command's name has no slash of its own: `/usr/bin/python crashes` is a question about a path.
_TYPED_COMMAND = re.compile(r"^/[\w:.-]+(?:\s+(.*))?$", re.S)


def typed_request(prompt: str) -> str | None:
    """The request a prompt typed into Claude Code makes, as the transcript's turn records it (`query`): a
    slash command's arguments, the prompt itself otherwise; None for a command without arguments or a `!`
    shell command, which are not requests."""
    text = prompt.strip()
    if text.startswith("!"):
        return None
    command = _TYPED_COMMAND.match(text)
    if command is None:
        return text or None
    return (command.group(1) or "").strip() or None


class Message(RecordModel):
    id: str | None = None
    role: str | None = None
    model: str | None = None
    content: str | list[dict[str, Any]] | None = None


class ClaudeCodeLine(RecordModel):
    type: str
    uuid: str | None = None
    sessionId: str | None = None
    timestamp: Timestamp | None = None
    cwd: str | None = None
    gitBranch: str | None = None
    version: str | None = None
    isSidechain: bool = False
    isMeta: bool = False
    isCompactSummary: bool = False
    isVisibleInTranscriptOnly: bool = False
    isApiErrorMessage: bool = False
    message: Message | None = None
    toolUseResult: Any = None


def _text(content: str | list[dict[str, Any]] | None) -> str:
    """The text of a message's content: a string, or its text blocks joined."""
    if isinstance(content, str):
        return content
    if not content:
        return ""
    return "\n".join(str(b.get("text") or "") for b in content if b.get("type") == "text").strip()


def _blocks(content: str | list[dict[str, Any]] | None, kind: str) -> list[dict[str, Any]]:
    return [b for b in content if b.get("type") == kind] if isinstance(content, list) else []


class ClaudeCodeAdapter:
    name = "claude-code"

    @staticmethod
    def claims(path: PurePath) -> bool:
        """`~/.claude/projects/<project>/<session>.jsonl` (and its subagents' `agent-*.jsonl`)."""
        return path.parent.parent.name == "projects" and _SESSION_FILE.match(base_name(path)) is not None

    def read(self, record: dict[str, Any], file_hint: str | None, state: FileState | None = None) -> Reading:
        line: ClaudeCodeLine = parse(ClaudeCodeLine, record, self.name)
        if line.type not in ("user", "assistant"):
            return Reading(self.name, line.type, None, None, line.timestamp)
        if line.message is None:
            raise AdapterError(f"{self.name}: message: a {line.type} line without a message")
        turn = state.get("turn") if state is not None else None
        if line.type == "assistant":
            return Reading(
                self.name, "assistant", turn, None, line.timestamp, lambda: self.answer(line), identity=line.uuid
            )
        results = _blocks(line.message.content, "tool_result")
        raw = _text(line.message.content)
        text = _HARNESS.sub("", raw).strip()
        harness = raw if text != raw.strip() else ""
        inside = line.isMeta or line.isCompactSummary or line.isVisibleInTranscriptOnly or not text
        if line.isSidechain or results or inside or text.startswith(_TOOL_NOISE):
            kind = "tool_result" if results else "meta" if inside else "user"
            return Reading(
                self.name, kind, turn, None, line.timestamp, lambda: self.within(line, raw, results), identity=line.uuid
            )
        if text.startswith(_INTERRUPTED):
            return Reading(
                self.name, "interrupt", turn, None, line.timestamp, lambda: {SIGNALS: {"open_interrupt": True}}
            )
        command = _COMMAND.search(text)
        args = _COMMAND_ARGS.search(text) if command else None
        bash = _BASH_INPUT.search(text)
        query = (args.group(1).strip() if args else None) if command else bash.group(1).strip() if bash else text
        kind = "task" if query and not bash else "command"
        key = f"{self.name}:{line.sessionId}:{line.uuid}"
        # The next task judges the task before it, across the commands typed between them (`/clear`, `!ls`).
        previous = state.get("task") if state is not None else None
        if state is not None:
            state["turn"] = key
            if kind == "task":
                state["task"] = key
        return Reading(
            self.name,
            "command" if command or bash else "prompt",
            key,
            kind,
            line.timestamp,
            lambda: self.prompt(line, query, command.group(1) if command else "!" if bash else None, harness),
            links=(previous,) if previous and kind == "task" else (),
            linked=lambda _key: verdict_fields(query),
            identity=line.uuid,
        )

    def prompt(self, line: ClaudeCodeLine, query: str | None, command: str | None, harness: str) -> dict[str, Any]:
        """Fields of the prompt that starts a turn (harness blocks in it are its context)."""
        fields: dict[str, Any] = {
            "query": query or command,
            "session": line.sessionId,
            "cwd": line.cwd,
            "branch": line.gitBranch or None,
            "context": "\n\n".join(m.group(0).strip() for m in _HARNESS.finditer(harness)) or None,
        }
        if command:
            fields[SIGNALS] = {"command": command}
        return fields

    def within(self, line: ClaudeCodeLine, text: str, results: list[dict[str, Any]]) -> dict[str, Any]:
        """Fields of a line inside a turn: tool results, a command's expansion, a subagent's work."""
        if line.isSidechain:
            failed = sum(1 for b in results if b.get("is_error"))
            return {SIGNALS: {"subagent_lines": 1, "subagent_tool_errors": failed}}
        if line.isMeta or line.isCompactSummary or line.isVisibleInTranscriptOnly:
            return {"context": text or None}
        if not results:
            return {}
        signals: dict[str, Any] = {"tool_results": len(results)}
        errors = [b for b in results if b.get("is_error")]
        if errors:
            signals["tool_errors"] = len(errors)
        rejected = sum(1 for b in errors if _REJECTED in str(b.get("content")))
        if rejected:
            signals["rejected_tools"] = rejected
        # An error is "open" until a later tool call of the same turn succeeds.
        signals["open_error"] = bool(results[-1].get("is_error")) and not rejected
        outcome = line.toolUseResult
        if isinstance(outcome, dict) and outcome.get("userModified"):
            signals["user_edits"] = 1
        return {SIGNALS: signals}

    def answer(self, line: ClaudeCodeLine) -> dict[str, Any]:
        """Fields of an assistant line: its text is part of the answer, its tool calls are signals."""
        assert line.message is not None
        content = line.message.content
        if line.isSidechain:
            return {SIGNALS: {"subagent_lines": 1}}  # a subagent's text is its report to the agent, not the answer
        fields: dict[str, Any] = {"model": line.message.model if line.message.model != "<synthetic>" else None}
        text = _text(content)
        if text and not line.isApiErrorMessage:
            fields[RESPONSE_PARTS] = [text]
        calls = _blocks(content, "tool_use")
        signals: dict[str, Any] = {}
        if calls:
            signals["tool_calls"] = len(calls)
            fields["tools_used"] = [str(c.get("name")) for c in calls]
            edited = [
                str((c.get("input") or {}).get("file_path"))
                for c in calls
                if c.get("name") in _EDIT_TOOLS and isinstance(c.get("input"), dict) and c["input"].get("file_path")
            ]
            if edited:
                fields["files_modified"] = edited
        if line.isApiErrorMessage:
            signals["api_errors"] = 1
        if signals:
            fields[SIGNALS] = signals
        return fields

    def finish(self, interaction: Interaction) -> Interaction:
        """A turn's outcome from its signals and the person's next prompt."""
        return finish_turn(interaction)

    @staticmethod
    def recognizes(record: dict[str, Any]) -> bool:
        """Whether a record in a file of unknown name is a Claude Code transcript line."""
        kind = record.get("type")
        if kind == "summary":
            return "leafUuid" in record
        return kind in TYPES and "sessionId" in record and "uuid" in record
