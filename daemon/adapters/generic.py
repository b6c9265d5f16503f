"""Any other JSONL stream, mapped onto an interaction by configuration (telemetry.generic)."""

from __future__ import annotations

from typing import Any

from pydantic import TypeAdapter, ValidationError

from daemon.adapters.base import AdapterError, Feedback, Timestamp
from daemon.config import GenericStream
from daemon.interaction import OWN_KEY, FileState, Reading

_OUTCOMES = {
    "success": "success",
    "succeeded": "success",
    "ok": "success",
    "pass": "success",
    "passed": "success",
    "true": "success",
    "partial": "partial",
    "failure": "failure",
    "failed": "failure",
    "error": "failure",
    "fail": "failure",
    "false": "failure",
}
_timestamp: TypeAdapter[Any] = TypeAdapter(Timestamp)
_feedback: TypeAdapter[Any] = TypeAdapter(Feedback)


def lookup(record: dict[str, Any], dotted: str) -> Any:
    """The value at a dotted path (`a.b.c`) of a record, or None."""
    value: Any = record
    for part in dotted.split("."):
        if not isinstance(value, dict):
            return None
        value = value.get(part)
    return value


class GenericAdapter:
    """One configured stream: which field holds the query, the response, the outcome, and so on."""

    def __init__(self, mapping: GenericStream) -> None:
        self.mapping = mapping
        self.name = mapping.name

    def read(self, record: dict[str, Any], file_hint: str | None, state: FileState | None = None) -> Reading:
        m = self.mapping
        query, response = lookup(record, m.query), lookup(record, m.response)
        if query is None and response is None:
            raise AdapterError(f"{self.name}: neither {m.query!r} nor {m.response!r} is present")
        fields: dict[str, Any] = {
            "query": None if query is None else str(query),
            "response": None if response is None else str(response),
        }
        try:
            when = _timestamp.validate_python(lookup(record, m.timestamp)) if lookup(record, m.timestamp) else None
            if m.feedback:
                raw = lookup(record, m.feedback)
                fields["feedback"] = None if raw is None else max(-1, min(1, _feedback.validate_python(raw)))
        except ValidationError as exc:
            raise AdapterError(f"{self.name}: {exc.errors()[0]['msg']}") from None
        if m.outcome:
            raw_outcome = lookup(record, m.outcome)
            if raw_outcome is not None:
                fields["outcome"] = _OUTCOMES.get(str(raw_outcome).strip().lower())
        if m.session:
            fields["session"] = lookup(record, m.session)
        event_type = str(lookup(record, m.type) or "record") if m.type else "record"
        return Reading(self.name, event_type, OWN_KEY, "interaction", when, lambda: fields)
