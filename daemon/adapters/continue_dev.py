"""Continue (continue.dev) dev data: one file per event name, schema 0.2.0 (older 0.1.0 read as far as it goes)."""

from __future__ import annotations

from typing import Any

from daemon.adapters.base import AdapterError, Signals, Timestamp, digest, parse
from daemon.interaction import OWN_KEY, Reading

LEARNABLE = frozenset({"chatInteraction", "chatFeedback", "autocomplete", "editOutcome"})


class ContinueRecord(Signals):
    eventName: str | None = None  # noqa: N815 - Continue's own field names
    createdAt: Timestamp | None = None  # noqa: N815
    timestamp: Timestamp | None = None
    userId: str | None = None  # noqa: N815
    sessionId: str | None = None  # noqa: N815
    prompt: str | None = None
    completion: str | None = None
    modelTitle: str | None = None  # noqa: N815
    modelName: str | None = None  # noqa: N815
    modelProvider: str | None = None  # noqa: N815
    tools: list[Any] | None = None
    feedback: bool | None = None
    accepted: bool | None = None
    time: float | None = None
    filepath: str | None = None
    completionId: str | None = None  # noqa: N815
    previousCode: str | None = None  # noqa: N815
    newCode: str | None = None  # noqa: N815


class ContinueAdapter:
    name = "continue"

    def read(self, record: dict[str, Any], file_hint: str | None) -> Reading:
        r: ContinueRecord = parse(ContinueRecord, record, self.name)
        event = r.eventName or file_hint
        if not event:
            raise AdapterError("continue: eventName: missing, and the file name does not say it")
        when = r.createdAt or r.timestamp
        if event not in LEARNABLE:
            return Reading(self.name, event, None, None, {}, when)
        fields = r.signal_fields()
        fields.update(
            query=r.prompt or r.query,
            response=r.completion or r.response,
            model=r.modelTitle or r.modelName,
            session=r.sessionId,
            user=r.userId,
            file=r.filepath,
            accepted=r.accepted,
        )
        if r.tools:
            fields["tool_count"] = len(r.tools)
        if event in ("chatInteraction", "chatFeedback"):
            if r.feedback is not None:
                fields["feedback"] = 1 if r.feedback else -1
            key = f"continue:chat:{digest(r.sessionId, r.prompt, r.completion)}"
            return Reading(self.name, event, key, "chat", fields, when)
        if event == "autocomplete":
            fields["latency_ms"] = r.time
            key = f"continue:autocomplete:{r.completionId}" if r.completionId else OWN_KEY
            return Reading(self.name, event, key, "autocomplete", fields, when)
        fields["response"] = r.completion or r.newCode
        return Reading(self.name, event, OWN_KEY, "edit", fields, when)

    @staticmethod
    def recognizes(record: dict[str, Any]) -> bool:
        """Whether a record in a file of unknown name has the shape of Continue dev data."""
        return "eventName" in record and "schema" in record
