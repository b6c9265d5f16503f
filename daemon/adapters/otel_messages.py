"""The messages of an OpenTelemetry GenAI span, whichever convention wrote them, read into one Conversation.

Forms, first present wins per span: `gen_ai.input.messages` / `gen_ai.output.messages` /
`gen_ai.system_instructions` (JSON text or structured values, on the span or on an event); one span event per
message (`gen_ai.user.message`, `gen_ai.choice`, ...); `gen_ai.prompt` / `gen_ai.completion` attributes; and
OpenLLMetry's indexed `gen_ai.prompt.<i>.role` / `.content` attributes.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from functools import cached_property
from typing import Any

import orjson

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
_EVENT_BODIES = ("gen_ai.event.content", "content", "body", "gen_ai.prompt", "gen_ai.completion", "message")
_INDEXED = re.compile(
    r"^gen_ai\.(prompt|completion)\.(\d+)\.(role|content|finish_reason|tool_calls\.(\d+)\.(id|name))$"
)


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


def conversation(attrs: dict[str, Any], events: list[tuple[str, dict[str, Any]]]) -> Conversation:
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
