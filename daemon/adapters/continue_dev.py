"""Continue (continue.dev) dev data: one file per event name, schema 0.2.0 (older 0.1.0 read as far as it goes)."""

from __future__ import annotations

from typing import Any

from daemon.adapters.base import AdapterError, Signals, Timestamp, digest, parse
from daemon.interaction import OWN_KEY, Reading

LEARNABLE = {"chatInteraction": "chat", "chatFeedback": "chat", "autocomplete": "autocomplete", "editOutcome": "edit"}


class ContinueRecord(Signals):
    eventName: str | None = None
    createdAt: Timestamp | None = None
    timestamp: Timestamp | None = None
    userId: str | None = None
    sessionId: str | None = None
    prompt: str | None = None
    completion: str | None = None
    modelTitle: str | None = None
    modelName: str | None = None
    modelProvider: str | None = None
    tools: list[Any] | None = None
    feedback: bool | None = None
    accepted: bool | None = None
    time: float | None = None
    filepath: str | None = None
    completionId: str | None = None
    previousCode: str | None = None
    newCode: str | None = None


class ContinueAdapter:
    name = "continue"

    def read(self, record: dict[str, Any], file_hint: str | None) -> Reading:
        r: ContinueRecord = parse(ContinueRecord, record, self.name)
        event = r.eventName or file_hint
        if not event:
            raise AdapterError("continue: eventName: missing, and the file name does not say it")
        when = r.createdAt or r.timestamp
        kind = LEARNABLE.get(event)
        if kind is None:
            return Reading(self.name, event, None, None, when)
        if kind == "chat":
            # chatFeedback carries the same session, prompt and completion as the chat it rates.
            key = f"continue:chat:{digest(r.sessionId, r.prompt, r.completion)}"
        elif kind == "autocomplete" and r.completionId:
            key = f"continue:autocomplete:{r.completionId}"
        else:
            key = OWN_KEY
        return Reading(self.name, event, key, kind, when, lambda: self.fields(r, kind))

    def fields(self, r: ContinueRecord, kind: str) -> dict[str, Any]:
        """Interaction fields of one Continue record."""
        fields = r.signal_fields()
        fields.update(
            query=r.prompt or r.query,
            response=r.completion or r.response or (r.newCode if kind == "edit" else None),
            model=r.modelTitle or r.modelName,
            session=r.sessionId,
            user=r.userId,
            file=r.filepath,
            accepted=r.accepted,
        )
        if r.tools:
            fields["tool_count"] = len(r.tools)
        if r.feedback is not None:
            fields["feedback"] = 1 if r.feedback else -1
        if kind == "autocomplete":
            fields["latency_ms"] = r.time
        return fields

    @staticmethod
    def recognizes(record: dict[str, Any]) -> bool:
        """Whether a record in a file of unknown name has the shape of Continue dev data."""
        return "eventName" in record and "schema" in record
