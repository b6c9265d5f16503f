"""Continue (continue.dev) dev data: one file per event name, schemas 0.2.0, 0.1.0 and the pre-0.1.0 files.

A chat's `prompt` is the whole rendered conversation; the question is its last user message, and the
rest is context (`rendered.py`). Agent-mode rounds that continue one question (the same session, the same
last user message after as many earlier ones, the prompt ending in a tool result) fold into that
question's interaction, and a
`chatFeedback` record joins the chat it rates whichever file is read first. Autocomplete, edit and tool
events are acceptance signals: stored and counted, never questions.
"""

from __future__ import annotations

import re
from pathlib import PurePath
from typing import Any

from daemon.adapters.base import AdapterError, Signals, Timestamp, digest, parse
from daemon.adapters.rendered import RenderedPrompt, clean_completion, split_prompt
from daemon.interaction import SIGNALS, FileState, Reading

CHAT = frozenset({"chatInteraction", "chatFeedback"})
# Acceptance signals, by event name: the interaction kind they are counted under.
SIGNAL_EVENTS = {
    "autocomplete": "autocomplete",
    "editOutcome": "edit",
    "nextEditOutcome": "next_edit",
    "toolUsage": "tool_usage",
}
# Interaction keys: a chat's (its session, question and earlier turns, digested), an autocomplete's.
CHAT_KEY = "continue:chat:"


def autocomplete_key(completion_id: str) -> str:
    """The interaction key of a Continue autocomplete, from its `completionId`."""
    return f"continue:autocomplete:{completion_id}"


_SCHEMA_DIR = re.compile(r"^\d+\.\d+\.\d+$")
# Pre-0.1.0 file names at the root of dev_data/ that differ from the event names Continue uses now.
LEGACY_NAMES = {"tokens_generated": "tokensGenerated", "chat": "chatInteraction"}


class ContinueRecord(Signals):
    eventName: str | None = None
    timestamp: Timestamp | None = None
    userId: str | None = None
    sessionId: str | None = None
    prompt: str | None = None
    completion: str | None = None
    modelTitle: str | None = None
    modelName: str | None = None
    modelProvider: str | None = None
    model: str | None = None
    tools: list[Any] | None = None
    feedback: bool | None = None
    accepted: bool | None = None
    succeeded: bool | None = None
    aborted: bool | None = None
    time: float | None = None
    filepath: str | None = None
    completionId: str | None = None
    functionName: str | None = None
    previousCode: str | None = None
    newCode: str | None = None


class ContinueAdapter:
    name = "continue"

    @staticmethod
    def claims(path: PurePath) -> bool:
        """`dev_data/<schema>/<event>.jsonl`, or a pre-0.1.0 file at the root of `dev_data/`."""
        parent = path.parent
        return parent.name == "dev_data" or (
            _SCHEMA_DIR.match(parent.name) is not None and parent.parent.name == "dev_data"
        )

    def read(self, record: dict[str, Any], file_hint: str | None, state: FileState | None = None) -> Reading:
        r: ContinueRecord = parse(ContinueRecord, record, self.name)
        event = r.eventName or (LEGACY_NAMES.get(file_hint, file_hint) if file_hint else None)
        if not event:
            raise AdapterError("continue: eventName: missing, and the file name does not say it")
        if event in CHAT:
            prompt = r.prompt or r.query or ""
            asked = split_prompt(prompt, attachments=False)
            # Every agent round of one question (and the feedback rating it) shares the session, the question
            # and the turns before it; the same question asked again later has more turns before it.
            # Records with no session (older writers, before agent mode) are told apart by their whole context.
            session = r.sessionId or digest(asked.context)
            key = f"{CHAT_KEY}{digest(session, asked.query, asked.earlier_turns)}"
            return Reading(self.name, event, key, "chat", r.timestamp, lambda: self.chat(r, split_prompt(prompt)))
        kind = SIGNAL_EVENTS.get(event)
        if kind == "autocomplete" and r.completionId:
            key = autocomplete_key(r.completionId)
            return Reading(self.name, event, key, kind, r.timestamp, lambda: self.signal(r))
        return Reading(self.name, event, None, kind, r.timestamp)

    def chat(self, r: ContinueRecord, rendered: RenderedPrompt) -> dict[str, Any]:
        """Interaction fields of one chat round (or the feedback on it)."""
        fields = r.signal_fields()
        response = clean_completion(r.completion) if r.completion else None
        fields.update(
            query=rendered.query,
            context=rendered.context or None,
            response=response or None,
            model=r.modelTitle or r.modelName,
            session=r.sessionId,
            user=r.userId or None,
        )
        if r.eventName != "chatFeedback" and r.completion is not None:
            fields[SIGNALS] = {"rounds": 1, "tool_rounds": int(rendered.ends_with_tool_result)}
        if r.tools:
            fields["tool_count"] = len(r.tools)
        if r.feedback is not None:
            fields["feedback"] = 1 if r.feedback else -1
        return fields

    def signal(self, r: ContinueRecord) -> dict[str, Any]:
        """Fields of an acceptance signal (an autocomplete): what was suggested and whether it was kept."""
        return {
            "response": r.completion,
            "model": r.modelName or r.modelTitle or r.model,
            "file": r.filepath,
            "accepted": r.accepted,
            "latency_ms": r.time,
            "user": r.userId or None,
        }

    @staticmethod
    def recognizes(record: dict[str, Any]) -> bool:
        """Whether a record in a file of unknown name has the shape of Continue dev data."""
        return "eventName" in record and "schema" in record
