"""Ralph agent-loop events: every event of one task_id folds into one task interaction."""

from __future__ import annotations

from typing import Any

from daemon.adapters.base import Items, RecordModel, Signals, Timestamp, items, parse
from daemon.adapters.paths import named
from daemon.interaction import FileState, Reading

EVENTS = frozenset(
    {
        "task_submitted",
        "iteration_started",
        "iteration_completed",
        "exit_code_blocked",
        "task_completed",
        "task_failed",
        "checkpoint_saved",
    }
)


class RalphContext(RecordModel):
    files_modified: Items = None
    lines_changed: int | None = None
    tests_passed: bool | None = None


class RalphRecord(Signals):
    event: str
    task_id: str
    prompt: str | None = None
    output: str | None = None
    backend: str | None = None
    iteration: int | None = None
    exit_code: int | None = None
    context: RalphContext | None = None
    timestamp: Timestamp | None = None


class RalphAdapter:
    name = "ralph"
    claims = staticmethod(named("ralph-events"))

    def read(self, record: dict[str, Any], file_hint: str | None, state: FileState | None = None) -> Reading:
        r: RalphRecord = parse(RalphRecord, record, self.name)
        return Reading(self.name, r.event, f"ralph:{r.task_id}", "task", r.timestamp, lambda: self.fields(r))

    def fields(self, r: RalphRecord) -> dict[str, Any]:
        """Interaction fields of one ralph event."""
        fields = r.signal_fields()
        fields.update(query=r.prompt or r.query, response=r.output or r.response, model=r.backend)
        if r.iteration is not None:
            fields["iterations"] = max(r.iteration, r.iterations or 0)
        if r.event == "task_completed":
            fields["outcome"] = "success" if r.exit_code in (None, 0) else "partial"
        elif r.event == "task_failed":
            fields["outcome"] = "failure"
        if r.context is not None:
            fields.update(items("files_modified", r.context.files_modified, count="file_count"))
            fields.update(lines_changed=r.context.lines_changed, tests_passed=r.context.tests_passed)
        return fields

    @staticmethod
    def recognizes(record: dict[str, Any]) -> bool:
        """Whether a record in a file of unknown name has the shape of a ralph event."""
        return "task_id" in record and record.get("event") in EVENTS
