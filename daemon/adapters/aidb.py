"""AIDB knowledge-service events: each query record is one interaction."""

from __future__ import annotations

from typing import Any

from daemon.adapters.base import Signals, Timestamp, parse
from daemon.adapters.paths import named
from daemon.interaction import OWN_KEY, FileState, Reading

EVENT_TYPES = frozenset(
    {"query", "completion", "error", "cache_hit", "context_augmentation", "tool_invocation", "query_completion"}
)


class AidbRecord(Signals):
    event_type: str
    llm_used: str | None = None
    model: str | None = None
    tokens_input: int | None = None
    tokens_output: int | None = None
    latency_ms: float | None = None
    cache_hit: bool | None = None
    context_retrieved: Any = None
    qdrant_results: Any = None
    success: bool | None = None
    timestamp: Timestamp | None = None


class AidbAdapter:
    name = "aidb"
    claims = staticmethod(named("aidb-events"))

    def read(self, record: dict[str, Any], file_hint: str | None, state: FileState | None = None) -> Reading:
        r: AidbRecord = parse(AidbRecord, record, self.name)
        key = OWN_KEY if r.query else None
        return Reading(self.name, r.event_type, key, "query", r.timestamp, lambda: self.fields(r))

    def fields(self, r: AidbRecord) -> dict[str, Any]:
        """Interaction fields of one aidb event."""
        fields = r.signal_fields()
        fields.update(
            model=r.model or r.llm_used, tokens_in=r.tokens_input, tokens_out=r.tokens_output, latency_ms=r.latency_ms
        )
        if r.event_type == "error" or r.success is False:
            fields["outcome"] = "failure"
        elif r.success and "outcome" not in fields:
            fields["outcome"] = "success"
        return fields

    @staticmethod
    def recognizes(record: dict[str, Any]) -> bool:
        """Whether a record in a file of unknown name has the shape of an aidb event."""
        return record.get("event_type") in EVENT_TYPES and ("llm_used" in record or "tokens_input" in record)
