"""Every telemetry format read into one normalized Interaction; unknown objects stored and counted."""

from __future__ import annotations

from datetime import UTC, datetime
from pathlib import Path

import pytest

from daemon.app import Skilld
from daemon.config import GenericStream, Settings
from daemon.pipeline import learnable
from tests.helpers import ralph, rows, write_lines

CONTINUE = ("dev_data", "0.2.0")


def _continue(telemetry: Path, event: str) -> Path:
    return telemetry.joinpath(*CONTINUE, f"{event}.jsonl")


def _chat(**fields: object) -> dict[str, object]:
    base = {
        "eventName": "chatInteraction",
        "schema": "0.2.0",
        "timestamp": "2026-11-01T10:00:00Z",
        "userId": "u1",
        "userAgent": "VSCode",
        "selectedProfileId": "local",
        "sessionId": "s1",
        "prompt": "How do I reverse a list?",
        "completion": "Use xs[::-1].",
        "modelTitle": "Qwen",
        "modelProvider": "ollama",
        "tools": [],
        "rules": [],
    }
    return {**base, **fields}


def _feedback(up: bool | None) -> dict[str, object]:
    record = _chat(eventName="chatFeedback", modelName="qwen")
    del record["tools"], record["rules"]
    if up is not None:
        record["feedback"] = up
    return record


def test_ralph_events_of_one_task_fold_into_one_task(app: Skilld, telemetry: Path) -> None:
    write_lines(
        telemetry / "ralph-events.jsonl",
        [
            ralph("t1", "task_submitted", prompt="Implement user authentication"),
            ralph("t1", "iteration_started", iteration=1),
            ralph("t1", "iteration_completed", iteration="2", output="draft"),
            ralph("t2", "task_submitted", prompt="Other task"),
            ralph(
                "t1",
                "task_completed",
                iteration=3,
                exit_code=0,
                output="Added JWT auth with bcrypt",
                context={"files_modified": ["auth.py", "models.py"], "lines_changed": "245", "tests_passed": True},
                timestamp="2026-11-01T12:30:00+02:00",
            ),
        ],
    )
    app.ingest([telemetry])
    status = app.status()
    assert (status["events"], status["interactions"]) == (5, 2)
    task = app.interaction("ralph:t1")
    assert task is not None
    assert task.kind == "task" and task.outcome == "success" and task.iterations == 3
    assert task.query == "Implement user authentication" and task.response == "Added JWT auth with bcrypt"
    assert task.files_modified == ["auth.py", "models.py"] and task.file_count == 2 and task.lines_changed == 245
    assert task.tests_passed is True and len(task.event_ids) == 4
    assert task.ended_at == datetime(2026, 11, 1, 10, 30, tzinfo=UTC)


def test_a_failed_task_has_a_failure_outcome(app: Skilld, telemetry: Path) -> None:
    write_lines(telemetry / "ralph-events.jsonl", [ralph("t", "task_submitted", prompt="p"), ralph("t", "task_failed")])
    app.ingest([telemetry])
    assert app.interaction("ralph:t").outcome == "failure"  # type: ignore[union-attr]


@pytest.mark.parametrize("feedback_first", [False, True])
def test_chat_feedback_joins_its_chat_whichever_file_is_read_first(
    settings: Settings, telemetry: Path, feedback_first: bool
) -> None:
    chat, feedback = _continue(telemetry, "chatInteraction"), _continue(telemetry, "chatFeedback")
    write_lines(chat, [_chat(), _chat(sessionId="s2", prompt="Another question")])
    write_lines(feedback, [_feedback(True)])
    order = [feedback, chat] if feedback_first else [chat, feedback]
    for path in order:  # separate runs: the join survives a restart
        app = Skilld(settings)
        app.ingest([path])
        app.close()
    app = Skilld(settings)
    status = app.status()
    assert (status["events"], status["interactions"]) == (3, 2)
    (key,) = [k for (k,) in rows(settings.home, "SELECT interaction_key FROM events WHERE type = 'chatFeedback'")]
    joined = app.interaction(key)
    assert joined is not None and joined.feedback == 1 and joined.kind == "chat" and len(joined.event_ids) == 2
    assert joined.query == "How do I reverse a list?" and joined.user is not None and joined.user.startswith("user:")
    app.close()


def test_autocomplete_and_edit_outcomes_are_acceptance_signals_not_questions(app: Skilld, telemetry: Path) -> None:
    write_lines(
        _continue(telemetry, "autocomplete"),
        [
            {
                "eventName": "autocomplete",
                "schema": "0.2.0",
                "accepted": True,
                "time": "120",
                "prefix": "def f(",
                "suffix": ")",
                "prompt": "p",
                "completion": "x): pass",
                "modelProvider": "ollama",
                "modelName": "qwen",
                "cacheHit": False,
                "filepath": "a.py",
                "completionId": "c1",
                "uniqueId": "machine-1",
                "timestamp": 1793527200000,
            },
        ],
    )
    write_lines(
        _continue(telemetry, "editOutcome"),
        [
            {
                "eventName": "editOutcome",
                "schema": "0.2.0",
                "timestamp": "2026-11-01T10:00:00",
                "prompt": "rename",
                "completion": "y = 1",
                "previousCode": "x = 1",
                "newCode": "y = 1",
                "lineChange": 1,
                "accepted": False,
                "filepath": "a.py",
                "modelProvider": "ollama",
                "modelName": "qwen",
            },
        ],
    )
    app.ingest([telemetry])
    auto = app.interaction("continue:autocomplete:c1")
    assert auto is not None and auto.accepted is True and auto.latency_ms == 120.0
    assert auto.kind == "autocomplete" and not learnable(auto)
    assert rows(app.home, "SELECT interaction_key FROM events WHERE type = 'editOutcome'") == [(None,)]
    acceptance = {
        (a["signal"], a["model"], a["file_type"]): (a["accepted"], a["shown"]) for a in app.status()["acceptance"]
    }
    assert acceptance == {("autocomplete", "qwen", ".py"): (1, 1), ("editOutcome", "qwen", ".py"): (0, 1)}


def test_records_with_nothing_to_learn_are_stored_and_counted_by_type(app: Skilld, telemetry: Path) -> None:
    write_lines(
        _continue(telemetry, "tokensGenerated"),
        [
            {
                "eventName": "tokensGenerated",
                "schema": "0.2.0",
                "timestamp": "2026-11-01T10:00:00Z",
                "model": "q",
                "promptTokens": 3,
                "generatedTokens": 4,
            },
        ]
        * 2,
    )
    write_lines(_continue(telemetry, "toolUsage"), [{"eventName": "toolUsage", "schema": "0.1.0", "tool": "grep"}])
    app.ingest([telemetry])
    status = app.status()
    assert (status["events"], status["interactions"], status["dead_letters"]) == (3, 0, 0)
    (source,) = status["sources"]
    assert source["name"] == "continue" and source["types"] == {"tokensGenerated": 2, "toolUsage": 1}


def test_objects_of_unknown_streams_are_stored_and_counted(app: Skilld, telemetry: Path) -> None:
    write_lines(telemetry / "other.jsonl", [{"type": "heartbeat"}, {"type": "heartbeat"}, {"anything": 1}])
    app.ingest([telemetry])
    status = app.status()
    assert (status["events"], status["dead_letters"]) == (3, 0)
    assert status["sources"][0]["types"] == {"heartbeat": 2, "object": 1}


def test_records_in_a_file_of_unknown_name_are_read_by_their_shape(app: Skilld, telemetry: Path) -> None:
    write_lines(
        telemetry / "mixed.jsonl",
        [
            ralph("t9", "task_submitted", prompt="p"),
            _chat(),
            {"event_type": "completion", "extension": "ext", "success": "true", "user_feedback": "1", "prompt": "q"},
        ],
    )
    app.ingest([telemetry])
    sources = dict(rows(app.home, "SELECT type, source FROM events"))
    assert sources == {"task_submitted": "ralph", "chatInteraction": "continue", "completion": "vscode"}
    ((key,),) = rows(app.home, "SELECT interaction_key FROM events WHERE source = 'vscode'")
    vscode = app.interaction(key)
    assert vscode is not None and vscode.outcome == "success" and vscode.feedback == 1


def test_the_seed_streams_read_into_interactions(app: Skilld, telemetry: Path) -> None:
    write_lines(
        telemetry / "aidb-events.jsonl",
        [
            {
                "event_type": "query",
                "query": "How to configure NixOS networking?",
                "llm_used": "local",
                "tokens_input": "150",
                "latency_ms": 850,
                "success": False,
                "timestamp": "2026-11-01 10:00:00",
            },
        ],
    )
    write_lines(
        telemetry / "hybrid-events.jsonl",
        [
            {
                "event": "route_decided",
                "query": "q?",
                "confidence_score": 0.82,
                "route": "local",
                "reasoning": "simple",
                "timestamp": "2026-11-01T10:00:00Z",
            },
        ],
    )
    app.ingest([telemetry])
    keys = dict(rows(app.home, "SELECT source, interaction_key FROM events"))
    aidb = app.interaction(keys["aidb"])
    hybrid = app.interaction(keys["hybrid"])
    assert aidb is not None and aidb.outcome == "failure" and aidb.tokens_in == 150
    assert aidb.started_at == datetime(2026, 11, 1, 10, tzinfo=UTC)
    assert hybrid is not None and hybrid.response == "simple" and hybrid.kind == "route"


def test_a_generic_stream_is_mapped_from_configuration(settings: Settings, telemetry: Path) -> None:
    settings.telemetry.generic = [
        GenericStream(
            name="mytool",
            match="mytool-*.jsonl",
            query="input.text",
            response="output",
            outcome="status",
            feedback="rating",
        )
    ]
    write_lines(
        telemetry / "mytool-2026.jsonl",
        [
            {
                "input": {"text": "how to x"},
                "output": "do y",
                "status": "passed",
                "rating": "up",
                "timestamp": 1793527200,
            },
            {"unrelated": True},
        ],
    )
    app = Skilld(settings)
    app.ingest([telemetry])
    status = app.status()
    assert (status["events"], status["dead_letters"]) == (1, 1)
    ((key,),) = rows(settings.home, "SELECT interaction_key FROM events")
    generic = app.interaction(key)
    assert generic is not None
    assert (generic.query, generic.response, generic.outcome, generic.feedback) == ("how to x", "do y", "success", 1)
    app.close()


def test_an_object_its_known_stream_cannot_read_is_a_dead_letter(app: Skilld, telemetry: Path) -> None:
    write_lines(
        telemetry / "ralph-events.jsonl",
        [
            ralph("t", "task_submitted", prompt="p"),
            {"event": "task_submitted"},
            ralph("t", "iteration_completed", iteration="three"),
        ],
    )
    report = app.ingest([telemetry])
    assert (report.events, report.dead_letters) == (1, 2)
    reasons = [d["reason"] for d in app.dead_letters()]
    assert reasons == [
        "ralph: task_id: Field required",
        "ralph: iteration: Input should be a valid integer, unable to parse string as an integer",
    ]
