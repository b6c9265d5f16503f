"""OpenTelemetry GenAI spans (OTLP JSON file exporter lines) read into one interaction per trace."""

from __future__ import annotations

import json
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest

from daemon.adapters.base import AdapterError
from daemon.adapters.otel_genai import CONSOLE_HINT, OtelGenAiAdapter, console_exporter_hint
from daemon.app import Skilld
from daemon.interaction import Interaction, Reading, fold
from tests.helpers import rows

FIXTURES = Path(__file__).resolve().parent / "fixtures" / "otel"
REALWORLD = Path(__file__).resolve().parents[2] / "shared" / "realworld" / "otel-genai"
CONSOLE_SAMPLE = REALWORLD / "Josh-Weston__microsoft-agent-framework-samples" / "traces.lines-0388-0679.jsonl"
AGENT_TRACE = "otel:0af7651916cd43dd8448eb211c80319c"
NO_TOOLS = {"tool_calls": 0, "tool_errors": 0}

adapter = OtelGenAiAdapter()


def lines(name: str) -> list[dict[str, Any]]:
    return [json.loads(line) for line in (FIXTURES / name).read_text().splitlines()]


def read(name: str) -> list[Reading]:
    return [adapter.read(record, "traces") for record in lines(name)]


def folded(*readings: Reading) -> Interaction:
    key = readings[0].key
    assert key is not None
    return fold(key, [(f"e{i}", r) for i, r in enumerate(readings)])


def at(ms: int) -> datetime:
    return datetime(2026, 1, 1, 12, 0, 0, ms * 1000, tzinfo=UTC)


def test_a_chat_span_is_a_question_with_its_earlier_turns_as_context() -> None:
    (reading,) = read("chat.jsonl")
    assert (reading.key, reading.type, reading.kind, reading.links) == (
        "otel:5b8efff798038103d269b633813fc60c",
        "chat",
        "chat",
        (),
    )
    assert reading.timestamp == at(100)
    chat = folded(reading)
    assert chat.source == "otel" and chat.kind == "chat"
    assert chat.query == "And how do I list hidden files too?"
    assert chat.context == (
        "system: You answer shell questions briefly.\n\n"
        "user: How do I count lines in a file?\n\n"
        "assistant: Use wc -l FILE."
    )
    assert chat.response == "Run ls -a to include hidden files."
    assert (chat.model, chat.session) == ("gpt-4o-mini-2024-07-18", "conv-7f3a")
    assert (chat.tokens_in, chat.tokens_out, chat.latency_ms) == (57, 23, 1750.0)
    assert chat.outcome is None  # an answered call says nothing yet about whether it helped
    assert chat.signals == NO_TOOLS and chat.tools_used == []
    assert chat.started_at == at(100)


def test_an_agent_task_exported_in_two_lines_folds_into_one_interaction_with_the_final_answer() -> None:
    inner, outer = read("agent.jsonl")
    assert (inner.key, inner.type, inner.kind) == (AGENT_TRACE, "chat", "chat")
    assert (outer.key, outer.type, outer.kind) == (AGENT_TRACE, "invoke_agent", "agent")
    # The inner line alone already reads as the question and the last model call's answer.
    assert inner.fields["query"] == "Should I take an umbrella in Lyon tomorrow?"
    assert inner.fields["response"] == "Showers are likely (80%)."
    task = folded(inner, outer)
    assert task.kind == "agent"
    assert task.query == "Should I take an umbrella in Lyon tomorrow?"
    assert task.response == "Yes: showers are likely tomorrow in Lyon (80%), so take an umbrella."
    # The model's request and the tool's execution share a call id: one call; the agent's output repeats it.
    assert task.signals == {"tool_calls": 1, "tool_errors": 0}
    assert task.tools_used == ["get_forecast"]
    assert task.session == "thread-lyon-2"
    assert task.model == "gpt-4.1"
    assert (task.tokens_in, task.tokens_out) == (290, 43)  # the agent span's own total
    assert task.latency_ms == 2440.0
    assert task.outcome is None
    assert (task.started_at, task.ended_at) == (at(10), at(20))
    assert task.event_ids == ["e0", "e1"]


def test_the_inner_calls_of_one_line_sum_their_tokens_and_count_each_tool_call_once() -> None:
    inner, _ = read("agent.jsonl")
    fields = inner.fields
    assert (fields["tokens_in"], fields["tokens_out"]) == (290, 43)
    assert fields["signals"] == {"tool_calls": 1, "tool_errors": 0}
    assert fields["model"] == "gpt-4.1-2025-04-14"
    assert fields["latency_ms"] == 2380.0


def test_a_line_with_two_traces_keys_the_first_and_links_the_second() -> None:
    (reading,) = read("two_traces.jsonl")
    second = "otel:22222222222222222222222222222222"
    assert reading.key == "otel:11111111111111111111111111111111"
    assert reading.links == (second,)
    first = folded(reading)
    assert (first.query, first.response, first.model) == (
        "What does git stash do?",
        "It shelves uncommitted changes.",
        "llama3.2",
    )
    linked = fold(second, [("e0", reading)], own=[False])
    assert (linked.kind, linked.query, linked.response) == (
        "chat",
        "Reverse a list in Python?",
        "Use xs[::-1] or xs.reverse().",
    )
    assert (linked.model, linked.session, linked.latency_ms) == ("qwen2.5-coder", "conv-b", 1200.0)
    assert linked.event_ids == ["e0"]  # linked evidence, so the second trace is findable and forgettable
    assert reading.linked_fields("otel:" + "3" * 32) == {}


def test_an_error_status_is_a_failure_and_a_failed_tool_is_a_signal() -> None:
    timed_out, tool_failed = read("errors.jsonl")
    failed = folded(timed_out)
    assert failed.outcome == "failure"
    assert (failed.query, failed.response, failed.latency_ms) == ("Summarize the release notes.", None, 30000.0)
    answered = folded(tool_failed)
    assert answered.kind == "agent"
    assert answered.outcome is None  # the agent answered; its tool's failure is evidence, not the verdict
    assert answered.response == "I could not delete build/: permission denied."
    assert answered.signals == {"tool_calls": 1, "tool_errors": 1}
    assert answered.tools_used == ["remove_dir"]


def test_message_events_are_read_like_message_attributes() -> None:
    events, _, _ = read("older_forms.jsonl")
    chat = folded(events)
    assert (chat.query, chat.context, chat.response) == ("Port of HTTPS?", "system: Be terse.", "443.")
    assert (chat.model, chat.tokens_in, chat.tokens_out) == ("gpt-35-turbo", 31, 12)


def test_prompt_and_completion_events_are_read() -> None:
    _, prompt_events, _ = read("older_forms.jsonl")
    chat = folded(prompt_events)
    assert (chat.query, chat.context, chat.response) == ("Name a sorting algorithm.", None, "Merge sort.")


def test_openllmetry_indexed_attributes_are_read_as_messages() -> None:
    _, _, indexed = read("older_forms.jsonl")
    assert (indexed.key, indexed.type, indexed.kind) == ("otel:" + "03" * 16, "chat", "chat")
    chat = folded(indexed)
    assert chat.query == "Book lunch with Ada on Friday."
    assert chat.context == "system: You are a calendar bot."
    assert chat.response == "Lunch with Ada is booked for Friday."
    assert chat.signals == {"tool_calls": 1, "tool_errors": 0}
    assert chat.tools_used == ["create_event"]
    assert (chat.model, chat.tokens_in, chat.tokens_out) == ("gpt-4o-mini-2024-07-18", 124, 20)
    assert chat.latency_ms == 1890.0


def test_lines_without_genai_spans_are_stored_without_a_key() -> None:
    readings = read("no_genai.jsonl")
    assert [(r.key, r.type, r.links) for r in readings] == [
        (None, "spans", ()),
        (None, "spans", ()),
        (None, "metrics", ()),
        (None, "logs", ()),
    ]
    assert all(r.fields == {} for r in readings)
    assert [OtelGenAiAdapter.recognizes(record) for record in lines("no_genai.jsonl")] == [True, True, False, False]


@pytest.mark.parametrize(
    ("line", "reason"),
    [
        (0, "otel: resourceSpans: Input should be a valid list"),
        (1, "otel: resourceSpans.0.scopeSpans.0.spans.0: Input should be a valid dictionary or instance of OtlpSpan"),
        (2, "otel: resourceSpans.0.scopeSpans.0.spans.0.startTimeUnixNano: Input should be a valid integer"),
        (3, "otel: resourceSpans.0.scopeSpans: Input should be a valid list"),
    ],
)
def test_a_line_with_nothing_readable_is_a_dead_letter_with_a_one_line_reason(line: int, reason: str) -> None:
    record = lines("malformed.jsonl")[line]
    with pytest.raises(AdapterError) as raised:
        adapter.read(record, "traces")
    assert str(raised.value).startswith(reason)
    assert "\n" not in str(raised.value)


def test_a_malformed_span_does_not_hide_the_readable_ones() -> None:
    reading = adapter.read(lines("malformed.jsonl")[4], "traces")
    assert reading.key == "otel:11111111111111111111111111111111"
    assert reading.fields["query"] == "What does git stash do?"


def test_an_object_that_is_not_otlp_is_refused() -> None:
    with pytest.raises(AdapterError, match=r"^otel: resourceSpans: missing"):
        adapter.read({"event": "chat"}, None)
    assert not OtelGenAiAdapter.recognizes({"event": "chat"})


def test_console_exporter_output_is_recognized_and_otlp_lines_are_not() -> None:
    assert console_exporter_hint((FIXTURES / "console_spans.txt").read_bytes()) == CONSOLE_HINT
    assert console_exporter_hint((FIXTURES / "agent.jsonl").read_bytes()[:4096]) is None
    assert console_exporter_hint(json.dumps({"name": "x", "context": {}}, indent=4).encode()) is None
    assert console_exporter_hint(b"") is None


def test_the_real_console_exporter_sample_is_recognized_from_any_window() -> None:
    if not CONSOLE_SAMPLE.exists():
        pytest.skip(f"real-world sample not present: {CONSOLE_SAMPLE}")
    data = CONSOLE_SAMPLE.read_bytes()
    assert console_exporter_hint(data[:4096]) == CONSOLE_HINT
    # A tailer may start mid-object: an indented `"trace_id": "0x..."` line is enough.
    assert console_exporter_hint(data[1500:5500]) == CONSOLE_HINT


def test_an_otlp_file_of_unknown_name_is_ingested_into_interactions_per_trace(app: Skilld, telemetry: Path) -> None:
    # The agent's two lines, with the chat request and a health check between them.
    agent = (FIXTURES / "agent.jsonl").read_text().splitlines()
    between = [(FIXTURES / "chat.jsonl").read_text().strip(), (FIXTURES / "no_genai.jsonl").read_text().splitlines()[0]]
    (telemetry / "traces.jsonl").write_text("\n".join([agent[0], *between, agent[1]]) + "\n")
    app.ingest([telemetry])
    stored = rows(app.home, "SELECT source, type, interaction_key FROM events ORDER BY seq")
    assert stored == [
        ("otel", "chat", AGENT_TRACE),
        ("otel", "chat", "otel:5b8efff798038103d269b633813fc60c"),
        ("otel", "spans", None),
        ("otel", "invoke_agent", AGENT_TRACE),
    ]
    task = app.interaction(AGENT_TRACE)
    assert task is not None and task.kind == "agent"
    assert task.response == "Yes: showers are likely tomorrow in Lyon (80%), so take an umbrella."
    assert task.signals == {"tool_calls": 1, "tool_errors": 0} and task.tools_used == ["get_forecast"]
    chat = app.interaction("otel:5b8efff798038103d269b633813fc60c")
    assert chat is not None and chat.query == "And how do I list hidden files too?"


def _chat_variant(change: Any) -> dict[str, Any]:
    """The chat fixture's line with its spans changed in place: (root span, chat span) -> None."""
    record = lines("chat.jsonl")[0]
    root, chat = record["resourceSpans"][0]["scopeSpans"][0]["spans"]
    change(root, chat)
    return record


def _take(span: dict[str, Any], *keys: str) -> list[dict[str, Any]]:
    taken = [a for a in span["attributes"] if a["key"] in keys]
    span["attributes"] = [a for a in span["attributes"] if a["key"] not in keys]
    return taken


def _structured(root: dict[str, Any], chat: dict[str, Any]) -> None:
    def value(x: Any) -> dict[str, Any]:
        if isinstance(x, list):
            return {"arrayValue": {"values": [value(i) for i in x]}}
        if isinstance(x, dict):
            return {"kvlistValue": {"values": [{"key": k, "value": value(i)} for k, i in x.items()]}}
        return {"stringValue": x}

    for attribute in chat["attributes"]:
        if attribute["key"].endswith(("messages", "instructions")):
            attribute["value"] = value(json.loads(attribute["value"]["stringValue"]))


def _on_details_event(root: dict[str, Any], chat: dict[str, Any]) -> None:
    moved = _take(chat, "gen_ai.input.messages", "gen_ai.output.messages", "gen_ai.system_instructions")
    chat["events"] = [{"name": "gen_ai.client.inference.operation.details", "attributes": moved}]


@pytest.mark.parametrize("change", [_structured, _on_details_event], ids=["structured-values", "details-event"])
def test_messages_as_structured_values_or_on_a_details_event_read_the_same(change: Any) -> None:
    chat = folded(adapter.read(_chat_variant(change), "traces"))
    assert chat.query == "And how do I list hidden files too?"
    assert chat.context is not None and chat.context.startswith("system: You answer shell questions briefly.")
    assert chat.response == "Run ls -a to include hidden files."


def test_a_failed_root_span_fails_the_request_even_when_the_model_answered() -> None:
    def fail_root(root: dict[str, Any], chat: dict[str, Any]) -> None:
        root["status"] = {"code": "STATUS_CODE_ERROR", "message": "handler raised"}

    chat = folded(adapter.read(_chat_variant(fail_root), "traces"))
    assert (chat.outcome, chat.response) == ("failure", "Run ls -a to include hidden files.")


def test_message_content_that_was_cut_short_is_no_question() -> None:
    def truncate(root: dict[str, Any], chat: dict[str, Any]) -> None:
        (messages,) = [a for a in chat["attributes"] if a["key"] == "gen_ai.input.messages"]
        messages["value"]["stringValue"] = messages["value"]["stringValue"][:40]

    chat = folded(adapter.read(_chat_variant(truncate), "traces"))
    assert (chat.query, chat.response) == (None, "Run ls -a to include hidden files.")
