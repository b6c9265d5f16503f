"""What every adapter shares: the seam, lenient field types, and the seed's common signal fields."""

from __future__ import annotations

import hashlib
from datetime import datetime
from typing import Annotated, Any, Protocol, runtime_checkable

from pydantic import BaseModel, BeforeValidator, ConfigDict, ValidationError

from daemon.interaction import FileState, Interaction, Reading


class AdapterError(ValueError):
    """A record in a known stream that its adapter cannot read; the line is dead-lettered with this reason."""


class Adapter(Protocol):
    name: str

    def read(self, record: dict[str, Any], file_hint: str | None, state: FileState | None = None) -> Reading:
        """Read one record (already redacted), or raise AdapterError.

        `state` is the file's state while it is ingested in order (sessions whose lines belong to the turn
        a prompt started); it is None when a stored record is read again to fold its interaction, where
        the stored key already says which interaction it is part of.
        """
        ...


@runtime_checkable
class SessionAdapter(Adapter, Protocol):
    """An adapter whose interactions are decided over a session's lines: it finishes what folding made."""

    def finish(self, interaction: Interaction) -> Interaction:
        """The interaction with what only the whole turn tells (its outcome from the turn's signals)."""
        ...


# ISO strings with or without a zone, or epoch seconds/milliseconds (also as strings): pydantic's lax
# datetime parsing. Zones are normalized where timestamps are compared or stored (as_utc).
Timestamp = datetime


def _count_or_list(value: Any) -> Any:
    if isinstance(value, str):
        return [value]
    return value


def _feedback(value: Any) -> Any:
    if isinstance(value, bool):
        return 1 if value else -1
    if isinstance(value, str):
        lowered = value.strip().lower()
        table = {"up": 1, "thumbs_up": 1, "positive": 1, "down": -1, "thumbs_down": -1, "negative": -1}
        if lowered in table:
            return table[lowered]
    return value


Feedback = Annotated[int | None, BeforeValidator(_feedback)]
Items = Annotated[list[str] | int | None, BeforeValidator(_count_or_list)]


class RecordModel(BaseModel):
    """Lenient parsing of one record: extra fields ignored, numbers as strings accepted."""

    model_config = ConfigDict(extra="ignore", coerce_numbers_to_str=True, frozen=True)


class Signals(RecordModel):
    """Fields the seed's value-score formulas read, accepted wherever they appear."""

    query: str | None = None
    response: str | None = None
    user_feedback: Feedback = None
    copied_to_clipboard: bool | None = None
    modified_response: bool | None = None
    iterations: int | None = None
    partial_success: bool | None = None
    steps: Items = None
    tools_used: Items = None
    files_modified: Items = None
    has_code: bool | None = None
    has_explanation: bool | None = None

    def signal_fields(self) -> dict[str, Any]:
        """The signals as Interaction fields."""
        fields: dict[str, Any] = {
            "query": self.query,
            "response": self.response,
            "feedback": _clamp(self.user_feedback),
            "copied": self.copied_to_clipboard,
            "modified": self.modified_response,
            "iterations": self.iterations,
            "has_code": self.has_code,
            "has_explanation": self.has_explanation,
        }
        if self.partial_success:
            fields["outcome"] = "partial"
        fields.update(items("steps", self.steps, count_only=True))
        fields.update(items("tools_used", self.tools_used, count="tool_count"))
        fields.update(items("files_modified", self.files_modified, count="file_count"))
        return fields


def _clamp(value: int | None) -> int | None:
    return None if value is None else max(-1, min(1, value))


def items(name: str, value: list[str] | int | None, count: str = "", count_only: bool = False) -> dict[str, Any]:
    """A list-or-count field as Interaction fields: the list itself and/or its count."""
    if value is None:
        return {}
    n = value if isinstance(value, int) else len(value)
    if count_only:
        return {name: n}
    out: dict[str, Any] = {count: n}
    if isinstance(value, list):
        out[name] = value
    return out


def digest(*parts: object) -> str:
    """A short stable hash of some values, for interaction keys built from content."""
    h = hashlib.blake2b(digest_size=12)
    for part in parts:
        h.update(str(part).encode())
        h.update(b"\x1f")
    return h.hexdigest()


def parse(model: type[RecordModel], record: dict[str, Any], stream: str) -> Any:
    """Validate a record against a stream's model, turning errors into one-line AdapterErrors."""
    try:
        return model.__pydantic_validator__.validate_python(record)
    except ValidationError as exc:
        first = exc.errors()[0]
        where = ".".join(str(p) for p in first["loc"]) or "record"
        raise AdapterError(f"{stream}: {where}: {first['msg']}") from None
