"""Codex CLI rollouts: `~/.codex/sessions/YYYY/MM/DD/rollout-<time>-<session id>.jsonl`.

Every line is `{timestamp, type, payload}` (codex-rs/protocol's RolloutLine): `session_meta`,
`turn_context`, `response_item` (messages, function and custom tool calls and their outputs, reasoning),
`event_msg` (`user_message`, `agent_message`, `token_count`, `turn_aborted`, ...) and `compacted`; older
rollouts hold a meta line, bare response items and `record_type` lines.
One interaction per turn the person typed. The prompt is written twice (a `response_item` user message
and an `event_msg` user_message): the second continues the turn the first started. The AGENTS.md and
environment-context user items are context, not prompts. A prompt resubmitted after `turn_aborted` goes
on with the aborted turn instead of counting twice. The agent's messages are the answer; shell exit
codes and `apply_patch` results are signals; the person's next prompt says how the turn went (`turns.py`).
"""

from __future__ import annotations

import re
from difflib import SequenceMatcher
from pathlib import PurePath
from typing import Any

import orjson

from daemon.adapters.base import RecordModel, Timestamp, digest, parse
from daemon.adapters.paths import base_name
from daemon.adapters.turns import finish_turn, verdict_fields
from daemon.interaction import RESPONSE_PARTS, SIGNALS, FileState, Interaction, Reading

TYPES = frozenset({"session_meta", "turn_context", "response_item", "event_msg", "compacted", "world_state"})
_CONTEXT_PREFIXES = ("# AGENTS.md instructions", "<user_instructions>", "<environment_context>", "<INSTRUCTIONS>")
_EXIT_CODE = re.compile(r"^Exit code: (-?\d+)", re.M)
_SESSION_IN_NAME = re.compile(r"([0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12})$")
_PATCHED = re.compile(r"^[AMD] (.+)$", re.M)


class RolloutLine(RecordModel):
    timestamp: Timestamp | None = None
    type: str
    payload: dict[str, Any]


def _text(content: Any) -> str:
    """The text of a response item's content: its input_text/output_text parts joined."""
    if isinstance(content, str):
        return content
    if not isinstance(content, list):
        return ""
    parts = [str(p.get("text") or "") for p in content if isinstance(p, dict) and "text" in p]
    return "\n".join(parts).strip()


def _prompt(line: RolloutLine) -> str | None:
    """The text of a person's prompt, if this line carries one (context items are not prompts)."""
    p = line.payload
    if line.type == "event_msg" and p.get("type") == "user_message":
        text = str(p.get("message") or "").strip()
    elif line.type == "response_item" and p.get("type") == "message" and p.get("role") == "user":
        text = _text(p.get("content"))
    else:
        return None
    return text if text and not text.startswith(_CONTEXT_PREFIXES) else None


def _decoded(output: Any) -> Any:
    """A tool output as Codex wrote it: JSON text (`{"output": ..., "metadata": ...}`) decoded, else as is."""
    if isinstance(output, str) and output.startswith("{"):
        try:
            return orjson.loads(output)
        except orjson.JSONDecodeError:
            return output
    return output


def _exit_code(output: Any) -> int | None:
    """A tool output's exit code: from `Exit code: N` text or a JSON `metadata.exit_code`."""
    if isinstance(output, dict):
        meta = output.get("metadata")
        code = meta.get("exit_code") if isinstance(meta, dict) else None
        return code if isinstance(code, int) else None
    match = _EXIT_CODE.search(output) if isinstance(output, str) else None
    return int(match.group(1)) if match else None


def _output_text(output: Any) -> str:
    """A tool output's text."""
    if isinstance(output, dict):
        return str(output.get("output") or "")
    return output if isinstance(output, str) else ""


class CodexAdapter:
    name = "codex"

    @staticmethod
    def claims(path: PurePath) -> bool:
        """`~/.codex/sessions/YYYY/MM/DD/rollout-<time>-<session id>.jsonl`."""
        return base_name(path).startswith("rollout-")

    def read(self, record: dict[str, Any], file_hint: str | None, state: FileState | None = None) -> Reading:
        if "payload" not in record:  # a rollout from before RolloutLine (2025): bare items
            if "record_type" in record:
                return Reading(self.name, str(record["record_type"]), None)
            kind = "session_meta" if "type" not in record else "response_item"
            record = {"timestamp": record.get("timestamp"), "type": kind, "payload": record}
        line: RolloutLine = parse(RolloutLine, record, self.name)
        p = line.payload
        kind = str(p.get("type") or line.type)
        if line.type == "session_meta":
            if state is not None and isinstance(p.get("id"), str):
                state["session"] = p["id"]
            return Reading(self.name, line.type, None, None, line.timestamp)
        turn = state.get("turn") if state is not None else None
        prompt = _prompt(line)
        if prompt is None:
            if state is not None and line.type == "response_item" and kind in ("message", "function_call"):
                # The agent answered: the same text again is a new prompt, and the prompt's text (a person's
                # words, kept in the file's state only to recognize its copy) is let go.
                state["fresh"] = False
                state.pop("prompt", None)
            if line.type == "event_msg" and kind == "turn_aborted" and state is not None:
                state["aborted"] = True
            return Reading(self.name, kind, turn, None, line.timestamp, lambda: self.within(line))
        linked = lambda _key: verdict_fields(prompt)  # noqa: E731
        if state is None:  # read again to fold: the stored key says which turn this is
            return Reading(
                self.name, kind, None, "task", line.timestamp, lambda: self.prompt(line, prompt, None), linked=linked
            )
        if turn and self._repeats(state, prompt):
            state.update(prompt=prompt, fresh=True, aborted=False)
            return Reading(self.name, kind, turn, "task", line.timestamp, lambda: self.prompt(line, prompt, None))
        session = state.get("session") or self._session_from_name(file_hint)
        key = f"{self.name}:{session or digest(file_hint)}:{digest(line.timestamp, prompt)}"
        state.update(turn=key, prompt=prompt, fresh=True, aborted=False)
        return Reading(
            self.name,
            kind,
            key,
            "task",
            line.timestamp,
            lambda: self.prompt(line, prompt, session),
            links=(turn,) if turn else (),
            linked=linked,
        )

    @staticmethod
    def _repeats(state: FileState, prompt: str) -> bool:
        """Whether a prompt goes on with the current turn: its second copy, or its resubmission after an abort.

        A resubmission may be re-wrapped, lightly edited or extended, so after an abort near-equal text, or
        the aborted prompt with more words after it, counts.
        """
        previous = state.get("prompt")
        if not previous or not (state.get("fresh") or state.get("aborted")):
            return False
        a, b = " ".join(previous.split()), " ".join(prompt.split())
        if a == b:
            return True
        if not state.get("aborted"):
            return False
        return b.startswith(a) or SequenceMatcher(None, a, b, autojunk=False).ratio() >= 0.9

    @staticmethod
    def _session_from_name(file_hint: str | None) -> str | None:
        match = _SESSION_IN_NAME.search(file_hint or "")
        return match.group(1) if match else None

    def prompt(self, line: RolloutLine, prompt: str, session: str | None) -> dict[str, Any]:
        """Fields of a prompt line: it starts a turn, repeats its prompt, or resubmits it after an abort.

        Every event_msg copy counts in `prompts`, so a turn resubmitted after an abort has 2; any prompt
        closes an interrupt (a resubmission goes on with the work).
        """
        signals: dict[str, Any] = {"open_interrupt": False}
        if line.type == "event_msg":
            signals["prompts"] = 1
        fields: dict[str, Any] = {"query": prompt, SIGNALS: signals}
        if session:
            fields["session"] = session
        return fields

    def within(self, line: RolloutLine, /) -> dict[str, Any]:
        """Fields of a line inside a turn: the agent's messages, tool calls and their results, interrupts."""
        p = line.payload
        kind = p.get("type")
        if line.type == "turn_context":
            return {"model": p.get("model"), "cwd": p.get("cwd")}
        if line.type == "session_meta":
            return {}
        if line.type == "event_msg":
            if kind == "agent_message":
                return {RESPONSE_PARTS: [str(p.get("message") or "").strip()]}
            if kind == "turn_aborted":
                return {SIGNALS: {"interrupted": 1, "open_interrupt": True}}
            return {}
        if line.type != "response_item":
            return {}
        if kind == "message" and p.get("role") == "assistant":
            return {RESPONSE_PARTS: [_text(p.get("content"))], SIGNALS: {"open_interrupt": False}}
        if kind in ("function_call", "custom_tool_call", "local_shell_call"):
            name = str(p.get("name") or kind)
            return {"tools_used": [name], SIGNALS: {"tool_calls": 1}}
        if kind in ("function_call_output", "custom_tool_call_output"):
            return self.tool_output(p.get("output"))
        return {}

    def tool_output(self, output: Any) -> dict[str, Any]:
        """Signals of one tool result: a non-zero exit code is a tool error; patched files are kept."""
        decoded = _decoded(output)
        code, text = _exit_code(decoded), _output_text(decoded)
        failed = code is not None and code != 0
        signals: dict[str, Any] = {"tool_results": 1, "open_error": failed}
        if failed:
            signals["tool_errors"] = 1
        fields: dict[str, Any] = {SIGNALS: signals}
        if text.startswith("Success. Updated the following files:"):
            signals["patches"] = 1
            fields["files_modified"] = _PATCHED.findall(text)
        return fields

    def finish(self, interaction: Interaction) -> Interaction:
        """A turn's outcome from its signals and the person's next prompt, and its session from its key."""
        if interaction.session is None:
            session = interaction.key.split(":")[1]
            if _SESSION_IN_NAME.fullmatch(session):
                interaction = interaction.model_copy(update={"session": session})
        return finish_turn(interaction)

    @staticmethod
    def recognizes(record: dict[str, Any]) -> bool:
        """Whether a record in a file of unknown name is a Codex CLI rollout line."""
        return record.get("type") in TYPES and isinstance(record.get("payload"), dict) and "timestamp" in record
