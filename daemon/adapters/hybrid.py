"""Hybrid router events: each routed query is one interaction."""

from __future__ import annotations

from typing import Any

from daemon.adapters.base import Signals, Timestamp, parse
from daemon.adapters.paths import named
from daemon.interaction import OWN_KEY, FileState, Reading

EVENTS = frozenset({"context_augmented", "route_decided", "learning_triggered", "pattern_stored", "dataset_updated"})


class HybridRecord(Signals):
    event: str
    confidence_score: float | None = None
    route: str | None = None
    reasoning: str | None = None
    context_used: Any = None
    value_score: float | None = None
    patterns_extracted: Any = None
    timestamp: Timestamp | None = None


class HybridAdapter:
    name = "hybrid"
    claims = staticmethod(named("hybrid-events"))

    def read(self, record: dict[str, Any], file_hint: str | None, state: FileState | None = None) -> Reading:
        r: HybridRecord = parse(HybridRecord, record, self.name)
        key = OWN_KEY if r.query else None
        return Reading(self.name, r.event, key, "route", r.timestamp, lambda: self.fields(r))

    def fields(self, r: HybridRecord) -> dict[str, Any]:
        """Interaction fields of one router event."""
        fields = r.signal_fields()
        if fields.get("response") is None and r.reasoning:
            fields["response"] = r.reasoning
        return fields

    @staticmethod
    def recognizes(record: dict[str, Any]) -> bool:
        """Whether a record in a file of unknown name has the shape of a hybrid-router event."""
        return record.get("event") in EVENTS
