"""OpenTelemetry GenAI spans as the OTLP JSON file exporter writes them: one `{"resourceSpans": [...]}` per line.

One interaction per trace (one request), keyed `otel:<traceId>`. Its answer spans are `chat` spans (also
`text_completion` and `generate_content`) and `invoke_agent` spans, known by `gen_ai.operation.name`, else by
the span name's first word ("chat gpt-4o"), else by OpenLLMetry's `llm.request.type`; `execute_tool` spans and
the model's tool_call parts are its tool signals. Messages are read by `otel_messages.py`, whichever
GenAI convention wrote them.

The question is the last user message with text (instructions and earlier turns are its context). The answer
is the output text of the line's main span: its outermost `invoke_agent` span, else the chat span that ended
last. A batch exporter writes spans as they end, so an agent's span lands in a line after its inner chat
spans, and folding lets that later line's final answer replace theirs. A line may carry several traces: the
first is the Reading's key, the others are links. Lines without GenAI spans are stored with no key.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from functools import cached_property
from typing import Annotated, Any

from pydantic import BeforeValidator, Field, ValidationError

from daemon.adapters.base import AdapterError, RecordModel, parse
from daemon.adapters.otel_messages import Conversation, conversation
from daemon.adapters.paths import nothing
from daemon.interaction import SIGNALS, FileState, Reading

CHAT_OPERATIONS = frozenset({"chat", "text_completion", "generate_content"})
AGENT = "invoke_agent"
TOOL = "execute_tool"
_GENAI = CHAT_OPERATIONS | {AGENT, TOOL}
_ERROR = 2
_OTHER_SIGNALS = {"resourceMetrics": "metrics", "resourceLogs": "logs"}
_STATUS_NAMES = {"STATUS_CODE_UNSET": 0, "STATUS_CODE_OK": 1, "STATUS_CODE_ERROR": 2}
_EPOCH = datetime(1970, 1, 1, tzinfo=UTC)
_MODELS = ("gen_ai.response.model", "gen_ai.request.model")
_CONSOLE_TRACE_ID = re.compile(rb'^ {8}"trace_id": "0x[0-9a-f]{32}",?\r?$', re.M)
CONSOLE_HINT = (
    "this is OpenTelemetry ConsoleSpanExporter output (pretty-printed, not JSONL): "
    "export with the OTLP JSON file exporter instead"
)


def console_exporter_hint(first_bytes: bytes) -> str | None:
    """Why a file of pretty-printed span objects cannot be read line by line, or None if it is not one.

    The Python SDK's ConsoleSpanExporter writes each span as JSON indented by four over many lines, its
    `"context"` holding `"trace_id": "0x<32 hex digits>"` on a line of its own: OTLP JSON lines never break
    there, and every span has one, so any window holding a whole span shows it, wherever a reader starts.
    """
    return CONSOLE_HINT if _CONSOLE_TRACE_ID.search(first_bytes) else None


# -- the OTLP JSON encoding ----------------------------------------------------------------------------------
def _status_code(value: Any) -> Any:
    return _STATUS_NAMES.get(value, value) if isinstance(value, str) else value


class OtlpKeyValue(RecordModel):
    key: str
    value: dict[str, Any] | None = None  # an AnyValue: one of stringValue, intValue, ..., arrayValue, kvlistValue


class OtlpEvent(RecordModel):
    name: str = ""
    attributes: list[OtlpKeyValue] = Field(default_factory=list)


class OtlpStatus(RecordModel):
    code: Annotated[int, BeforeValidator(_status_code)] = 0
    message: str | None = None


class OtlpSpan(RecordModel):
    traceId: str = Field(min_length=1)
    spanId: str = ""
    parentSpanId: str = ""
    name: str = ""
    startTimeUnixNano: int = Field(default=0, ge=0, lt=2**64)  # fixed64 nanoseconds, as a string of digits
    endTimeUnixNano: int = Field(default=0, ge=0, lt=2**64)
    attributes: list[OtlpKeyValue] = Field(default_factory=list)
    events: list[OtlpEvent] = Field(default_factory=list)
    status: OtlpStatus = OtlpStatus()


class OtlpScopeSpans(RecordModel):
    spans: list[Any] = Field(default_factory=list)  # validated one by one: a malformed span does not hide the others


class OtlpResourceSpans(RecordModel):
    scopeSpans: list[OtlpScopeSpans] = Field(default_factory=list)


class OtlpTraces(RecordModel):
    resourceSpans: list[OtlpResourceSpans]


def _any(value: Any) -> Any:
    """The Python value of an OTLP AnyValue (`{"intValue": "3"}` is 3, arrays and key-value lists nested)."""
    if not isinstance(value, dict):
        return None
    if "stringValue" in value:
        return value["stringValue"]
    if "boolValue" in value:
        return value["boolValue"]
    for name, kind in (("intValue", int), ("doubleValue", float)):
        if name in value:
            try:
                return kind(value[name])
            except (TypeError, ValueError):
                return None
    if "arrayValue" in value:
        return [_any(v) for v in _values(value["arrayValue"])]
    if "kvlistValue" in value:
        return {kv.get("key"): _any(kv.get("value")) for kv in _values(value["kvlistValue"]) if isinstance(kv, dict)}
    return value.get("bytesValue")


def _values(container: Any) -> list[Any]:
    values = container.get("values") if isinstance(container, dict) else None
    return values if isinstance(values, list) else []


def _attributes(pairs: list[OtlpKeyValue]) -> dict[str, Any]:
    return {kv.key: _any(kv.value) for kv in pairs}


def _when(nanos: int) -> datetime | None:
    return _EPOCH + timedelta(microseconds=nanos // 1000) if nanos > 0 else None


# -- spans and traces ----------------------------------------------------------------------------------------
def _operation(name: str, attrs: dict[str, Any]) -> str | None:
    op = attrs.get("gen_ai.operation.name")
    if isinstance(op, str) and op:
        return op
    head, _, rest = name.partition(" ")
    if head in _GENAI and rest:
        return head
    request = attrs.get("llm.request.type")  # OpenLLMetry
    if request in ("chat", "completion"):
        return "chat" if request == "chat" else "text_completion"
    return None


@dataclass
class Span:
    """One span, its attributes as Python values."""

    trace: str
    id: str
    parent: str
    name: str
    start: int
    end: int
    attrs: dict[str, Any]
    events: list[tuple[str, dict[str, Any]]]
    status: int
    operation: str | None

    @cached_property
    def conversation(self) -> Conversation:
        return conversation(self.attrs, self.events)

    @property
    def failed(self) -> bool:
        return self.status == _ERROR or self.attrs.get("error.type") is not None

    def text(self, *keys: str) -> str | None:
        """The first of these attributes that is non-empty text."""
        return next((v for k in keys if isinstance(v := self.attrs.get(k), str) and v), None)

    def number(self, *keys: str) -> int | None:
        """The first of these attributes that is a whole number."""
        values = (self.attrs.get(k) for k in keys)
        return next((v for v in values if isinstance(v, int) and not isinstance(v, bool)), None)


def _span(s: OtlpSpan) -> Span:
    attrs = _attributes(s.attributes)
    return Span(
        trace=s.traceId.lower().removeprefix("0x"),
        id=s.spanId,
        parent=s.parentSpanId,
        name=s.name,
        start=s.startTimeUnixNano,
        end=s.endTimeUnixNano,
        attrs=attrs,
        events=[(e.name, _attributes(e.attributes)) for e in s.events],
        status=s.status.code,
        operation=_operation(s.name, attrs),
    )


def _spans(record: dict[str, Any]) -> list[Span]:
    """Every readable span of a line; AdapterError when the line has spans and none of them is readable."""
    traces: OtlpTraces = parse(OtlpTraces, record, "otel")
    spans: list[Span] = []
    problem: str | None = None
    for r, resource in enumerate(traces.resourceSpans):
        for s, scope in enumerate(resource.scopeSpans):
            for n, raw in enumerate(scope.spans):
                try:
                    spans.append(_span(OtlpSpan.model_validate(raw)))
                except ValidationError as exc:
                    first = exc.errors()[0]
                    where = ".".join(str(p) for p in (f"resourceSpans.{r}.scopeSpans.{s}.spans.{n}", *first["loc"]))
                    problem = problem or f"otel: {where}: {first['msg']}"
    if not spans and problem:
        raise AdapterError(problem)
    return spans


@dataclass
class TraceSpans:
    """The spans of one trace that one line carries, read as (part of) one interaction."""

    spans: list[Span]
    answers: list[Span] = field(init=False)

    def __post_init__(self) -> None:
        self.answers = [s for s in self.spans if s.operation in CHAT_OPERATIONS or s.operation == AGENT]

    @cached_property
    def main(self) -> Span | None:
        """The outermost agent span, else the chat span that ended last: the one whose output is the answer."""
        agents = [s for s in self.answers if s.operation == AGENT]
        if agents:
            return min(agents, key=lambda s: (s.start, -s.end))
        return max(self.answers, key=lambda s: s.end) if self.answers else None

    @property
    def kind(self) -> str | None:
        if any(s.operation == AGENT for s in self.answers):
            return "agent"
        return "chat" if self.answers else None

    @property
    def type(self) -> str:
        main = self.main
        return (main.operation or "chat") if main is not None else TOOL

    @property
    def started(self) -> datetime | None:
        starts = [s.start for s in self.spans if s.operation in _GENAI and s.start > 0]
        return _when(min(starts)) if starts else None

    def fields(self) -> dict[str, Any]:
        """The Interaction fields these spans contribute."""
        fields: dict[str, Any] = {"kind": self.kind}
        main = self.main
        if main is not None:
            by_start = sorted(self.answers, key=lambda s: s.start)
            by_end = sorted(self.answers, key=lambda s: s.end, reverse=True)
            asked = next((s.conversation for s in [main, *by_start] if s.conversation.query), None)
            if asked is not None:
                fields.update(query=asked.query, context=asked.context)
            fields["response"] = next((s.conversation.answer for s in [main, *by_end] if s.conversation.answer), None)
            fields.update(self._details(main))
        fields.update(self._tools())
        return fields

    def _details(self, main: Span) -> dict[str, Any]:
        ordered = [main, *self.answers]
        chats = [s for s in self.answers if s.operation in CHAT_OPERATIONS]
        fields: dict[str, Any] = {
            # The model that answered, wherever a span names it, before the one asked for.
            "model": next((m for k in _MODELS for s in ordered if (m := s.text(k))), None),
            "session": next((c for s in ordered if (c := s.text("gen_ai.conversation.id", "session.id"))), None),
            "tokens_in": self._tokens(main, chats, "gen_ai.usage.input_tokens", "gen_ai.usage.prompt_tokens"),
            "tokens_out": self._tokens(main, chats, "gen_ai.usage.output_tokens", "gen_ai.usage.completion_tokens"),
        }
        timed = [s for s in self.answers if s.start > 0 and s.end >= s.start]
        if timed:
            fields["latency_ms"] = (max(s.end for s in timed) - min(s.start for s in timed)) / 1e6
        root_failed = any(s.failed for s in self.spans if not s.parent)
        final_error = any(m.finish_reason == "error" for m in main.conversation.outputs)
        if main.failed or root_failed or final_error:
            fields["outcome"] = "failure"
        return fields

    @staticmethod
    def _tokens(main: Span, chats: list[Span], *keys: str) -> int | None:
        """An agent span's own usage total, else the sum over the line's model calls."""
        own = main.number(*keys) if main.operation == AGENT else None
        counts = [n for s in chats if (n := s.number(*keys)) is not None]
        return own if own is not None else sum(counts) if counts else None

    def _tools(self) -> dict[str, Any]:
        """Tool signals: each call counted once by its call id, whether the model's request or its execution."""
        calls: set[str] = set()
        names: list[str] = []
        errors = model_errors = 0
        for s in self.spans:
            if s.operation in CHAT_OPERATIONS:
                requested = [c for m in s.conversation.outputs for c in m.tool_calls]
                calls.update(c.id or f"{s.id}:{i}" for i, c in enumerate(requested))
                if s.failed and s is not self.main:
                    model_errors += 1
            elif s.operation == TOOL:
                calls.add(s.text("gen_ai.tool.call.id") or f"{s.id}:tool")
                names.append(s.text("gen_ai.tool.name") or s.name.partition(" ")[2] or "tool")
                if s.failed:
                    errors += 1
        # An agent's output repeats its inner calls: its tool calls name tools but are not counted again.
        for s in self.answers:
            conv = s.conversation
            names.extend(c.name for c in [*conv.turn_tools, *(c for m in conv.outputs for c in m.tool_calls)])
        signals: dict[str, Any] = {"tool_calls": len(calls), "tool_errors": errors}
        if model_errors:
            signals["model_errors"] = model_errors
        return {SIGNALS: signals, "tools_used": list(dict.fromkeys(names)) or None}


def _traces(spans: list[Span]) -> dict[str, TraceSpans]:
    """The line's traces that have GenAI spans, keyed `otel:<traceId>`, in the order their first one appears."""
    by_trace: dict[str, list[Span]] = {}
    for s in spans:
        by_trace.setdefault(s.trace, []).append(s)
    order = dict.fromkeys(s.trace for s in spans if s.operation in _GENAI)
    return {f"otel:{trace}": TraceSpans(by_trace[trace]) for trace in order}


class OtelGenAiAdapter:
    name = "otel"
    claims = staticmethod(nothing)  # told by its records' shape only: exporters name their files freely

    def read(self, record: dict[str, Any], file_hint: str | None, state: FileState | None = None) -> Reading:
        if "resourceSpans" not in record:
            other = next((kind for key, kind in _OTHER_SIGNALS.items() if key in record), None)
            if other is None:
                raise AdapterError("otel: resourceSpans: missing; not an OTLP JSON traces line")
            return Reading(self.name, other)
        traces = _traces(_spans(record))
        if not traces:
            return Reading(self.name, "spans")
        (key, first), *others = traces.items()

        def linked(other: str) -> dict[str, Any]:
            return traces[other].fields() if other in traces else {}

        return Reading(
            self.name,
            first.type,
            key,
            first.kind,
            first.started,
            first.fields,
            links=tuple(k for k, _ in others),
            linked=linked,
        )

    @staticmethod
    def recognizes(record: dict[str, Any]) -> bool:
        """Whether a record has the shape of an OTLP JSON traces line."""
        return "resourceSpans" in record
