"""OpenTelemetry GenAI spans as the OTLP JSON file exporter writes them: one `{"resourceSpans": [...]}` per line.

One interaction per trace (one request), keyed `otel:<traceId>`. Its answer spans are `chat` spans (also
`text_completion` and `generate_content`) and `invoke_agent` spans, known by `gen_ai.operation.name`, else by
the span name's first word ("chat gpt-4o"), else by OpenLLMetry's `llm.request.type`; `execute_tool` spans and
the model's tool_call parts are its tool signals. Messages are read from the first form a span carries:

- `gen_ai.input.messages` / `gen_ai.output.messages` / `gen_ai.system_instructions` (JSON text or structured
  values), on the span or on a `gen_ai.client.inference.operation.details` event;
- one span event per message (`gen_ai.user.message`, `gen_ai.choice`, ...) carrying `gen_ai.event.content`,
  `content` or `body`, and the `gen_ai.content.prompt` / `gen_ai.content.completion` events;
- `gen_ai.prompt` / `gen_ai.completion` attributes (plain text or a JSON message list);
- OpenLLMetry's indexed `gen_ai.prompt.<i>.role` / `.content` and `gen_ai.completion.<i>.*` attributes.

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

import orjson
from pydantic import BeforeValidator, Field, ValidationError

from daemon.adapters.base import AdapterError, RecordModel, parse
from daemon.interaction import SIGNALS, FileState, Reading

CHAT_OPERATIONS = frozenset({"chat", "text_completion", "generate_content"})
AGENT = "invoke_agent"
TOOL = "execute_tool"
_GENAI = CHAT_OPERATIONS | {AGENT, TOOL}
_ERROR = 2
_OTHER_SIGNALS = {"resourceMetrics": "metrics", "resourceLogs": "logs"}
_STATUS_NAMES = {"STATUS_CODE_UNSET": 0, "STATUS_CODE_OK": 1, "STATUS_CODE_ERROR": 2}
_EPOCH = datetime(1970, 1, 1, tzinfo=UTC)
# Per-message span events of the older conventions: the role each stands for, and whether it is output.
_MESSAGE_EVENTS = {
    "gen_ai.system.message": ("system", False),
    "gen_ai.user.message": ("user", False),
    "gen_ai.assistant.message": ("assistant", False),
    "gen_ai.tool.message": ("tool", False),
    "gen_ai.choice": ("assistant", True),
    "gen_ai.content.prompt": ("user", False),
    "gen_ai.content.completion": ("assistant", True),
}
_MODELS = ("gen_ai.response.model", "gen_ai.request.model")
_EVENT_BODIES = ("gen_ai.event.content", "content", "body", "gen_ai.prompt", "gen_ai.completion", "message")
_INDEXED = re.compile(
    r"^gen_ai\.(prompt|completion)\.(\d+)\.(role|content|finish_reason|tool_calls\.(\d+)\.(id|name))$"
)
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


# -- messages ------------------------------------------------------------------------------------------------
@dataclass(frozen=True)
class ToolCall:
    id: str | None
    name: str


@dataclass(frozen=True)
class Message:
    role: str
    text: str
    tool_calls: tuple[ToolCall, ...] = ()
    finish_reason: str | None = None


def _decode(value: Any) -> Any:
    """A JSON text attribute decoded; other text as it is; JSON that does not parse is nothing to read."""
    if isinstance(value, str) and value.lstrip()[:1] in ("[", "{"):
        try:
            return orjson.loads(value)
        except orjson.JSONDecodeError:
            return None
    return value


def _text(content: Any) -> str:
    """The text of a message's content: a string, or its text items (`{"type": "text", "text"|"content": ...}`)."""
    if isinstance(content, str):
        # OpenLLMetry writes multimodal content as a JSON list of parts; other text that parses stays text.
        decoded = _decode(content) if content.lstrip().startswith("[") else None
        return (isinstance(decoded, list) and _text(decoded)) or content
    if isinstance(content, list):
        texts = [_text(item) if isinstance(item, str) else _item_text(item) for item in content]
        return "\n".join(t for t in texts if t)
    return _item_text(content)


def _item_text(item: Any) -> str:
    if not isinstance(item, dict) or item.get("type", "text") not in ("text", "input_text", "output_text"):
        return ""
    text = item.get("content", item.get("text"))
    return text if isinstance(text, str) else ""


def _tool_calls(calls: Any) -> tuple[ToolCall, ...]:
    """Tool calls in the semconv part shape or OpenAI's (`{"id", "function": {"name"}}`)."""
    found = []
    for call in calls if isinstance(calls, list) else []:
        if not isinstance(call, dict):
            continue
        function = call.get("function")
        name = call.get("name") or (function.get("name") if isinstance(function, dict) else None)
        if isinstance(name, str) and name:
            found.append(ToolCall(str(call["id"]) if call.get("id") else None, name))
    return tuple(found)


def _message(obj: dict[str, Any], role: str) -> Message:
    finish = obj.get("finish_reason")
    finish = finish if isinstance(finish, str) else None
    inner = obj.get("message")
    if isinstance(inner, dict):  # a gen_ai.choice body: {index, finish_reason, message: {...}}
        obj = inner
    named = obj.get("role")
    role = named if isinstance(named, str) and named else role
    parts = obj.get("parts")
    if isinstance(parts, list):
        text = "\n".join(t for t in (_item_text(p) for p in parts) if t)
        calls = _tool_calls([p for p in parts if isinstance(p, dict) and p.get("type") == "tool_call"])
        return Message(role, text, calls, finish)
    return Message(role, _text(obj.get("content")), _tool_calls(obj.get("tool_calls")), finish)


def _messages(value: Any, role: str) -> list[Message]:
    """Messages out of a decoded attribute or event body: a list of messages, one message, or plain text."""
    value = _decode(value)
    if isinstance(value, str):
        return [Message(role, value)] if value.strip() else []
    if isinstance(value, dict):
        return [_message(value, role)]
    if isinstance(value, list):
        return [_message(v, role) if isinstance(v, dict) else Message(role, _text(v)) for v in value]
    return []


def _indexed(attrs: dict[str, Any], side: str, role: str) -> list[Message]:
    """OpenLLMetry's flattened messages: `gen_ai.prompt.0.role`, `gen_ai.prompt.0.content`, ... in index order."""
    rows: dict[int, dict[str, Any]] = {}
    for key, value in attrs.items():
        match = _INDEXED.match(key)
        if match is None or match.group(1) != side:
            continue
        row = rows.setdefault(int(match.group(2)), {"tool_calls": {}})
        if match.group(4) is not None:
            row["tool_calls"].setdefault(int(match.group(4)), {})[match.group(5)] = value
        else:
            row[match.group(3)] = value
    return [
        _message({**row, "tool_calls": [row["tool_calls"][j] for j in sorted(row["tool_calls"])]}, role)
        for _, row in sorted(rows.items())
    ]


@dataclass(frozen=True)
class Conversation:
    """What one span says was asked and answered, whichever convention wrote it."""

    system: list[str]
    inputs: list[Message]
    outputs: list[Message]

    @cached_property
    def _question(self) -> int | None:
        return next((i for i in reversed(range(len(self.inputs))) if self._asks(self.inputs[i])), None)

    @staticmethod
    def _asks(message: Message) -> bool:
        return message.role == "user" and bool(message.text.strip())

    @property
    def query(self) -> str | None:
        """The person's words: the last user message with text."""
        return self.inputs[self._question].text.strip() if self._question is not None else None

    @property
    def context(self) -> str | None:
        """System instructions and the turns before the question."""
        before = self.inputs[: self._question] if self._question is not None else []
        lines = [f"system: {t}" for t in self.system] + [f"{m.role}: {m.text}" for m in before if m.text]
        return "\n\n".join(lines) or None

    @property
    def answer(self) -> str | None:
        """The assistant text of the output messages, joined."""
        texts = [m.text.strip() for m in self.outputs if m.role not in ("user", "system", "tool") and m.text.strip()]
        return "\n\n".join(texts) or None

    @property
    def turn_tools(self) -> list[ToolCall]:
        """Tool calls of this request already in the input (earlier rounds of one agent task)."""
        after = self.inputs[self._question + 1 :] if self._question is not None else []
        return [call for m in after for call in m.tool_calls]


def _conversation(attrs: dict[str, Any], events: list[tuple[str, dict[str, Any]]]) -> Conversation:
    system: list[Message] = []
    inputs: list[list[Message]] = [_messages(attrs.get("gen_ai.input.messages"), "user")]
    outputs: list[list[Message]] = [_messages(attrs.get("gen_ai.output.messages"), "assistant")]
    system.extend(_messages(attrs.get("gen_ai.system_instructions"), "system"))
    from_events: tuple[list[Message], list[Message]] = ([], [])
    for name, event in events:
        inputs.append(_messages(event.get("gen_ai.input.messages"), "user"))
        outputs.append(_messages(event.get("gen_ai.output.messages"), "assistant"))
        system.extend(_messages(event.get("gen_ai.system_instructions"), "system"))
        if name in _MESSAGE_EVENTS:
            role, output = _MESSAGE_EVENTS[name]
            body = next((event[k] for k in _EVENT_BODIES if event.get(k) is not None), None)
            from_events[output].extend(_messages(body, role))
    inputs += [from_events[0], _messages(attrs.get("gen_ai.prompt"), "user"), _indexed(attrs, "prompt", "user")]
    outputs += [
        from_events[1],
        _messages(attrs.get("gen_ai.completion"), "assistant"),
        _indexed(attrs, "completion", "assistant"),
    ]
    # One instrumentation writes one form; the first that says anything is the span's conversation.
    chosen = next((m for m in inputs if m), [])
    system += [m for m in chosen if m.role == "system"]
    return Conversation(
        [m.text for m in system if m.text],
        [m for m in chosen if m.role != "system"],
        next((m for m in outputs if m), []),
    )


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
        return _conversation(self.attrs, self.events)

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
