"""Editor-extension events: each completion is one interaction, with explicit thumbs."""

from __future__ import annotations

from typing import Any

from daemon.adapters.base import RecordModel, Signals, Timestamp, parse
from daemon.adapters.paths import named
from daemon.interaction import OWN_KEY, FileState, Reading


class VscodeContext(RecordModel):
    file: str | None = None
    language: str | None = None
    cursor_line: int | None = None


class VscodeRecord(Signals):
    event_type: str
    extension: str | None = None
    model_used: str | None = None
    is_local: bool | None = None
    prompt_tokens: int | None = None
    completion_tokens: int | None = None
    latency_ms: float | None = None
    success: bool | None = None
    prompt: str | None = None
    completion: str | None = None
    accepted: bool | None = None
    context: VscodeContext | None = None
    timestamp: Timestamp | None = None


class VscodeAdapter:
    name = "vscode"
    claims = staticmethod(named("vscode-events"))

    def read(self, record: dict[str, Any], file_hint: str | None, state: FileState | None = None) -> Reading:
        r: VscodeRecord = parse(VscodeRecord, record, self.name)
        return Reading(self.name, r.event_type, OWN_KEY, r.event_type, r.timestamp, lambda: self.fields(r))

    def fields(self, r: VscodeRecord) -> dict[str, Any]:
        """Interaction fields of one editor event."""
        fields = r.signal_fields()
        fields.update(
            query=r.query or r.prompt,
            response=r.response or r.completion,
            model=r.model_used,
            tokens_in=r.prompt_tokens,
            tokens_out=r.completion_tokens,
            latency_ms=r.latency_ms,
            accepted=r.accepted,
        )
        if r.success is not None and "outcome" not in fields:
            fields["outcome"] = "success" if r.success else "failure"
        if r.context is not None:
            fields.update(file=r.context.file, language=r.context.language)
        return fields

    @staticmethod
    def recognizes(record: dict[str, Any]) -> bool:
        """Whether a record in a file of unknown name has the shape of an editor-extension event."""
        return "event_type" in record and "extension" in record
