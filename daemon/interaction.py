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
# Pieces of the answer spread over several events (an agent's messages between two prompts), joined in order.
RESPONSE_PARTS = "response_parts"
# Counted evidence of how an interaction went (tool calls, tool errors, interrupts): numbers add up across
# events, anything else is replaced by the later event.
SIGNALS = "signals"

# Interaction kinds that are acceptance signals, not questions: counted, never scored or learned from.
SIGNAL_KINDS = frozenset({"autocomplete", "edit", "next_edit", "tool_usage", "command"})


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
    context: str | None = None
    cwd: str | None = None
    branch: str | None = None
    signals: dict[str, Any] = Field(default_factory=dict)
    started_at: datetime | None = None
    ended_at: datetime | None = None
    event_ids: list[str] = Field(default_factory=list)


def as_utc(value: datetime) -> datetime:
    """A timestamp in UTC; a naive one is taken to be UTC already."""
    return value.replace(tzinfo=UTC) if value.tzinfo is None else value.astimezone(UTC)


# What an adapter remembers between the lines of one file (the turn a line belongs to), committed with the
# file's offset so that a restart resumes with it. JSON-serializable; an adapter owns its own keys.
FileState = dict[str, Any]

# A Reading's key when its event is an interaction on its own: the key becomes `<source>:<event id>`.
OWN_KEY = "@event"


class Reading:
    """What an adapter read from one record: its type, the interaction it belongs to, and its fields.

    The fields are built only when asked for (when interactions are folded), not on the ingest path.
    A record may also inform other interactions (`links`): a person's next prompt says whether the
    previous turn worked, and one OTLP line can carry spans of several traces. `linked` builds the
    fields it contributes to one of those.
    """

    __slots__ = ("_fields", "_linked", "_make", "identity", "key", "kind", "links", "source", "timestamp", "type")

    def __init__(
        self,
        source: str,
        type: str,
        key: str | None = None,
        kind: str | None = None,
        timestamp: datetime | None = None,
        make: Callable[[], dict[str, Any]] | None = None,
        links: tuple[str, ...] = (),
        linked: Callable[[str], dict[str, Any]] | None = None,
        identity: str | None = None,
    ) -> None:
        self.source, self.type, self.key, self.kind, self.timestamp = source, type, key, kind, timestamp
        self.links = links
        # The record's own id where its tool writes one (a Claude Code line's uuid): the same record copied
        # into another file (a resumed session) folds in once.
        self.identity = identity
        self._make = make
        self._linked = linked
        self._fields: dict[str, Any] | None = None

    @property
    def fields(self) -> dict[str, Any]:
        """The Interaction fields this record contributes."""
        if self._fields is None:
            self._fields = self._make() if self._make is not None else {}
        return self._fields

    def linked_fields(self, key: str) -> dict[str, Any]:
        """The fields this record contributes to an interaction it is linked to (not its own)."""
        return self._linked(key) if self._linked is not None else {}


def fold(key: str, readings: Iterable[tuple[str, Reading]], own: Iterable[bool] | None = None) -> Interaction:
    """Merge the readings of one interaction (event id, reading), in event order, into one Interaction.

    `own` says, per reading, whether the event belongs to this interaction (True) or only informs it
    through a link (False); linked events count as its evidence (event_ids) and add their linked fields,
    nothing else.
    """
    merged: dict[str, Any] = {"key": key, "event_ids": []}
    owned = iter(own) if own is not None else None
    parts: list[str] = []
    seen: set[str] = set()
    for event_id, reading in readings:
        is_own = next(owned) if owned is not None else True
        if reading.identity is not None:
            if reading.identity in seen:
                continue
            seen.add(reading.identity)
        merged["event_ids"].append(event_id)
        if not is_own:
            _merge(merged, parts, reading.linked_fields(key))
            continue
        merged.setdefault("source", reading.source)
        if reading.kind:
            merged["kind"] = reading.kind
        if reading.timestamp is not None:
            when = as_utc(reading.timestamp)
            start, end = merged.get("started_at"), merged.get("ended_at")
            merged["started_at"] = when if start is None else min(start, when)
            merged["ended_at"] = when if end is None else max(end, when)
        _merge(merged, parts, reading.fields)
    if parts and not merged.get("response"):
        merged["response"] = "\n\n".join(parts)
    merged.setdefault("kind", "interaction")
    merged.setdefault("source", key.split(":", 1)[0])
    return Interaction.model_validate(merged)


def _merge(merged: dict[str, Any], parts: list[str], fields: dict[str, Any]) -> None:
    for name, value in fields.items():
        if value is None:
            continue
        if name == RESPONSE_PARTS:
            parts.extend(part for part in value if part and part not in parts)
        elif name == SIGNALS:
            signals = merged.setdefault(SIGNALS, {})
            for signal, amount in value.items():
                counted = isinstance(amount, int | float) and not isinstance(amount, bool)
                signals[signal] = signals.get(signal, 0) + amount if counted else amount
        elif name in _LIST_FIELDS:
            current = merged.setdefault(name, [])
            current.extend(v for v in value if v not in current)
        elif name in _MAX_FIELDS and merged.get(name) is not None:
            merged[name] = max(merged[name], value)
        else:
            merged[name] = value
