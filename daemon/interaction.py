"""The normalized interaction every telemetry format is read into, and how events fold into one."""

from __future__ import annotations

from collections.abc import Callable, Iterable
from datetime import UTC, datetime
from typing import Any, Literal

from pydantic import BaseModel, Field

Outcome = Literal["success", "partial", "failure"]

# Fields whose values accumulate across the events of one interaction instead of being replaced.
_LIST_FIELDS = frozenset({"tools_used", "files_modified", "event_ids"})
_MAX_FIELDS = frozenset({"iterations", "steps", "lines_changed", "tool_count", "file_count"})


class Interaction(BaseModel):
    """One question and its answer (or one agent task), with every signal of how it went."""

    key: str
    source: str
    kind: str
    query: str | None = None
    response: str | None = None
    outcome: Outcome | None = None
    iterations: int | None = None
    feedback: int | None = Field(default=None, ge=-1, le=1)
    accepted: bool | None = None
    copied: bool | None = None
    modified: bool | None = None
    steps: int | None = None
    tools_used: list[str] = Field(default_factory=list)
    files_modified: list[str] = Field(default_factory=list)
    tool_count: int | None = None
    file_count: int | None = None
    lines_changed: int | None = None
    tests_passed: bool | None = None
    has_code: bool | None = None
    has_explanation: bool | None = None
    model: str | None = None
    latency_ms: float | None = None
    tokens_in: int | None = None
    tokens_out: int | None = None
    language: str | None = None
    file: str | None = None
    session: str | None = None
    user: str | None = None
    started_at: datetime | None = None
    ended_at: datetime | None = None
    event_ids: list[str] = Field(default_factory=list)


def as_utc(value: datetime) -> datetime:
    """A timestamp in UTC; a naive one is taken to be UTC already."""
    return value.replace(tzinfo=UTC) if value.tzinfo is None else value.astimezone(UTC)


# A Reading's key when its event is an interaction on its own: the key becomes `<source>:<event id>`.
OWN_KEY = "@event"


class Reading:
    """What an adapter read from one record: its type, the interaction it belongs to, and its fields.

    The fields are built only when asked for (when interactions are folded), not on the ingest path.
    """

    __slots__ = ("_fields", "_make", "key", "kind", "source", "timestamp", "type")

    def __init__(
        self,
        source: str,
        type: str,
        key: str | None = None,
        kind: str | None = None,
        timestamp: datetime | None = None,
        make: Callable[[], dict[str, Any]] | None = None,
    ) -> None:
        self.source, self.type, self.key, self.kind, self.timestamp = source, type, key, kind, timestamp
        self._make = make
        self._fields: dict[str, Any] | None = None

    @property
    def fields(self) -> dict[str, Any]:
        """The Interaction fields this record contributes."""
        if self._fields is None:
            self._fields = self._make() if self._make is not None else {}
        return self._fields


def fold(key: str, readings: Iterable[tuple[str, Reading]]) -> Interaction:
    """Merge the readings of one interaction (event id, reading), in event order, into one Interaction."""
    merged: dict[str, Any] = {"key": key, "event_ids": []}
    for event_id, reading in readings:
        merged.setdefault("source", reading.source)
        if reading.kind:
            merged["kind"] = reading.kind
        merged["event_ids"].append(event_id)
        if reading.timestamp is not None:
            when = as_utc(reading.timestamp)
            start, end = merged.get("started_at"), merged.get("ended_at")
            merged["started_at"] = when if start is None else min(start, when)
            merged["ended_at"] = when if end is None else max(end, when)
        for name, value in reading.fields.items():
            if value is None:
                continue
            if name in _LIST_FIELDS:
                current = merged.setdefault(name, [])
                current.extend(v for v in value if v not in current)
            elif name in _MAX_FIELDS and merged.get(name) is not None:
                merged[name] = max(merged[name], value)
            else:
                merged[name] = value
    merged.setdefault("kind", "interaction")
    return Interaction.model_validate(merged)
