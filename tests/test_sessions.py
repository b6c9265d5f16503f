"""Agent sessions read turn by turn: Claude Code transcripts, Codex CLI rollouts and Continue agent rounds.

The records are our own, written in the shapes the real tools write (see `../shared/realworld/`).
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from daemon.adapters.turns import judge
from daemon.app import Skilld
from daemon.config import Settings
from daemon.pipeline import learnable
from tests.helpers import write_lines

SESSION = "5b1d6f0e-3c2a-4e8b-9f10-2a3b4c5d6e7f"
ROLLOUT_ID = "019c0000-1111-7222-8333-444455556666"


def _claude_path(telemetry: Path) -> Path:
    return telemetry / "projects" / "-home-dev-app" / f"{SESSION}.jsonl"  # under ~/.claude


def _claude(kind: str, uuid: str, content: Any, **extra: Any) -> dict[str, Any]:
    line = {
        "parentUuid": None,
        "isSidechain": False,
        "userType": "external",
        "cwd": "/home/dev/app",
        "sessionId": SESSION,
        "version": "1.0.108",
        "gitBranch": "feature/login",
        "type": kind,
        "message": {"role": kind, "content": content},
        "uuid": uuid,
        "timestamp": f"2026-11-01T10:00:{len(uuid):02d}.000Z",
    }
    line.update(extra)
    return line


def _assistant(uuid: str, message_id: str, block: dict[str, Any], **extra: Any) -> dict[str, Any]:
    line = _claude("assistant", uuid, [block], **extra)
    line["message"].update(id=message_id, model="claude-sonnet-4-5", type="message")
    return line


def _result(uuid: str, tool_id: str, text: str, error: bool = False, **extra: Any) -> dict[str, Any]:
    block = {"tool_use_id": tool_id, "type": "tool_result", "content": text, "is_error": error}
    return _claude("user", uuid, [block], **extra)


def claude_session() -> list[dict[str, Any]]:
    """Three turns: a task with a failed then fixed tool call, a correction, a confirmation; plus noise."""
    return [
        {"type": "summary", "summary": "Login form", "leafUuid": "x"},
        _claude("user", "u1", "add a password length check to the login form"),
        _assistant("a1", "msg_1", {"type": "text", "text": "I'll read the form first."}),
        _assistant("a2", "msg_1", {"type": "tool_use", "id": "t1", "name": "Read", "input": {"file_path": "form.py"}}),
        _result("r1", "t1", "File does not exist.", error=True),
        _assistant("a3", "msg_2", {"type": "tool_use", "id": "t2", "name": "Edit", "input": {"file_path": "login.py"}}),
        _result("r2", "t2", "The file login.py has been updated.", toolUseResult={"userModified": True}),
        _claude("user", "s1", "Check the length rule in login.py", isSidechain=True),
        _assistant("s2", "msg_s", {"type": "text", "text": "Subagent report: rule found."}, isSidechain=True),
        _assistant("a4", "msg_3", {"type": "text", "text": "Added `if len(password) < 12: raise ValueError`."}),
        _claude("user", "u2", "no, the minimum should be 8 not 12"),
        _assistant("a5", "msg_4", {"type": "text", "text": "Changed the minimum to 8."}),
        _claude("user", "u3", "thanks, that works"),
        _claude("user", "c1", "<command-message>clear</command-message>\n<command-name>/clear</command-name>"),
        _claude("user", "c2", "<local-command-stdout></local-command-stdout>"),
        _claude("user", "u4", "[Request interrupted by user]"),
    ]


def _rollout(kind: str, payload: dict[str, Any], second: int) -> dict[str, Any]:
    return {"timestamp": f"2026-11-02T09:00:{second:02d}.000Z", "type": kind, "payload": payload}


def _prompt_lines(text: str, second: int) -> list[dict[str, Any]]:
    content = [{"type": "input_text", "text": text}]
    return [
        _rollout("response_item", {"type": "message", "role": "user", "content": content}, second),
        _rollout("event_msg", {"type": "user_message", "message": text, "images": []}, second),
        _rollout("turn_context", {"cwd": "/home/dev/app", "model": "gpt-5.1-codex"}, second),
    ]


def _answer(text: str, second: int) -> list[dict[str, Any]]:
    content = [{"type": "output_text", "text": text}]
    return [
        _rollout("event_msg", {"type": "agent_message", "message": text}, second),
        _rollout("response_item", {"type": "message", "role": "assistant", "content": content}, second),
    ]


def codex_rollout() -> list[dict[str, Any]]:
    """A session: context items, a turn with a failing test run and a patch, an abort and resubmission."""
    shell = {"type": "function_call", "name": "shell_command", "arguments": '{"command":"pytest -q"}', "call_id": "c1"}
    patch = {"type": "custom_tool_call", "name": "apply_patch", "input": "*** Begin Patch", "call_id": "c2"}
    patched = '{"output":"Success. Updated the following files:\\nM app/cache.py\\n","metadata":{"exit_code":0}}'
    context = [{"type": "input_text", "text": "<environment_context>\n  <cwd>/home/dev/app</cwd>"}]
    return [
        _rollout("session_meta", {"id": ROLLOUT_ID, "cwd": "/home/dev/app", "cli_version": "0.60.1"}, 0),
        _rollout("response_item", {"type": "message", "role": "user", "content": context}, 0),
        *_prompt_lines("make the cache expire after 10 minutes", 1),
        _rollout("response_item", shell, 2),
        _rollout("response_item", {"type": "function_call_output", "call_id": "c1", "output": "Exit code: 1\n"}, 3),
        _rollout("response_item", patch, 4),
        _rollout("response_item", {"type": "custom_tool_call_output", "call_id": "c2", "output": patched}, 5),
        _rollout("response_item", {**shell, "call_id": "c3"}, 6),
        _rollout("response_item", {"type": "function_call_output", "call_id": "c3", "output": "Exit code: 0\n"}, 7),
        *_answer("Entries now expire after 600 seconds; tests pass.", 8),
        *_prompt_lines("also log every eviction", 10),
        _rollout("event_msg", {"type": "turn_aborted", "reason": "interrupted"}, 11),
        *_prompt_lines("also log every eviction at debug level", 12),
        *_answer("Evictions are logged at DEBUG.", 13),
    ]


def _rollout_path(telemetry: Path) -> Path:
    return telemetry / "sessions" / "2026" / "11" / "02" / f"rollout-2026-11-02T09-00-00-{ROLLOUT_ID}.jsonl"


def _by_query(app: Skilld, source: str) -> dict[str, dict[str, Any]]:
    return {r["query"]: r for r in app.interactions(source, 100)}


def test_a_claude_code_turn_is_a_typed_prompt_with_its_answer_and_signals(app: Skilld, telemetry: Path) -> None:
    write_lines(_claude_path(telemetry), claude_session())
    app.ingest([telemetry])
    turns = _by_query(app, "claude-code")
    assert set(turns) == {
        "add a password length check to the login form",
        "no, the minimum should be 8 not 12",
        "thanks, that works",
        "/clear",
    }
    first = turns["add a password length check to the login form"]
    assert first["response"] == "I'll read the form first.\n\nAdded `if len(password) < 12: raise ValueError`."
    assert first["signals"]["tool_calls"] == 2 and first["signals"]["tool_errors"] == 1
    assert first["signals"]["open_error"] is False  # the edit after the failed read worked
    assert first["signals"]["user_edits"] == 1 and first["signals"]["subagent_lines"] == 2
    assert first["files_modified"] == ["login.py"] and first["tools_used"] == ["Read", "Edit"]
    assert (first["session"], first["cwd"], first["branch"]) == (SESSION, "/home/dev/app", "feature/login")
    # "no, the minimum should be 8" corrects it; "thanks, that works" confirms the second turn.
    assert (first["outcome"], first["feedback"]) == ("failure", -1)
    second = turns["no, the minimum should be 8 not 12"]
    assert (second["outcome"], second["feedback"], second["response"]) == ("success", 1, "Changed the minimum to 8.")
    clear = turns["/clear"]
    assert clear["kind"] == "command" and not clear["learnable"]
    assert turns["thanks, that works"]["outcome"] is None  # nothing said about it yet


def test_compaction_summaries_and_harness_blocks_are_context_and_commands_do_not_hide_a_verdict(
    app: Skilld, telemetry: Path
) -> None:
    reminder = "<system-reminder>\nThe user opened app/db.py in the IDE.\n</system-reminder>\n"
    lines = [
        _claude("user", "u1", [{"type": "text", "text": reminder + "why is the pool size 5?"}]),
        _assistant("a1", "m1", {"type": "text", "text": "It is the default of create_engine."}),
        _claude("user", "c1", "<command-name>/compact</command-name>\n<command-message>compact</command-message>"),
        _claude("user", "s1", "This session is being continued. It still fails instead of ...", isCompactSummary=True),
        _claude("user", "u2", "that's wrong, the default is 10"),
    ]
    write_lines(_claude_path(telemetry), lines)
    app.ingest([telemetry])
    turns = _by_query(app, "claude-code")
    assert set(turns) == {"why is the pool size 5?", "/compact", "that's wrong, the default is 10"}
    pool = turns["why is the pool size 5?"]
    assert pool["context_chars"] == len(reminder.strip())
    assert (pool["outcome"], pool["signals"]["next_prompt"]) == ("failure", "correction")  # across /compact
    assert turns["/compact"]["context_chars"] > 0  # the summary is the command's context, not a prompt


def test_an_interrupted_turn_with_an_error_never_recovered_fails(app: Skilld, telemetry: Path) -> None:
    lines = [
        _claude("user", "u1", "run the migrations"),
        _assistant("a1", "m1", {"type": "tool_use", "id": "t1", "name": "Bash", "input": {"command": "make db"}}),
        _result("r1", "t1", "make: *** [db] Error 2", error=True),
        _claude("user", "u2", "[Request interrupted by user for tool use]"),
    ]
    write_lines(_claude_path(telemetry), lines)
    app.ingest([telemetry])
    (turn,) = app.interactions("claude-code", 10)
    assert turn["outcome"] == "failure" and turn["signals"]["open_error"] is True
    assert turn["signals"]["open_interrupt"] is True


def _turns(app: Skilld) -> dict[str, tuple[Any, ...]]:
    return {
        r["key"]: (r["query"], r["response"], r["outcome"], len(r["event_ids"])) for r in app.interactions(None, 50)
    }


def test_a_session_read_across_a_restart_makes_the_same_turns(
    settings: Settings, telemetry: Path, tmp_path: Path
) -> None:
    lines = claude_session()
    whole = tmp_path / "whole"
    write_lines(_claude_path(whole), lines)
    reference = Skilld(settings.model_copy(update={"home": tmp_path / "reference"}))
    reference.ingest([whole])
    expected = _turns(reference)
    reference.close()
    assert len(expected) == 4
    for cut in (3, 6, 10, 12):  # inside a turn, between tool calls, right before a prompt, after one
        home = tmp_path / f"home-{cut}"
        path = _claude_path(telemetry / str(cut))
        write_lines(path, lines[:cut])
        first = Skilld(settings.model_copy(update={"home": home}))
        first.ingest([path])
        first.close()  # the turn skilld was in is in the database now, with the offset
        write_lines(path, lines[cut:])
        second = Skilld(settings.model_copy(update={"home": home}))
        second.ingest([path])
        assert _turns(second) == expected, cut
        second.ingest([whole])  # the same content elsewhere: nothing new
        assert _turns(second) == expected, cut
        second.close()


def test_a_resumed_session_that_copies_earlier_lines_counts_them_once(app: Skilld, telemetry: Path) -> None:
    lines = claude_session()
    write_lines(_claude_path(telemetry), lines[:11])
    app.ingest([telemetry])
    before = _by_query(app, "claude-code")["add a password length check to the login form"]
    resumed = telemetry / "projects" / "-home-dev-app" / "0f0e0d0c-0b0a-4909-8807-060504030201.jsonl"
    write_lines(resumed, [{"type": "summary", "summary": "Login", "leafUuid": "a4"}, *lines[1:11]])
    app.ingest([telemetry])
    after = _by_query(app, "claude-code")["add a password length check to the login form"]
    assert (after["signals"], after["response"]) == (before["signals"], before["response"])
    assert after["signals"]["tool_calls"] == 2


def test_a_dead_lettered_session_line_replayed_joins_its_turn(settings: Settings, telemetry: Path) -> None:
    lines = claude_session()
    write_lines(_claude_path(telemetry), lines)
    path = _claude_path(telemetry)
    settings.telemetry.max_line_bytes = max(map(len, path.read_bytes().splitlines())) - 1  # the longest line
    small = Skilld(settings)
    small.ingest([telemetry])
    assert small.status()["dead_letters"] >= 1
    before = {r["query"]: r for r in small.interactions("claude-code", 10)}
    small.close()
    settings.telemetry.max_line_bytes = 16 * 1024 * 1024
    app = Skilld(settings)
    replayed = app.replay()
    assert replayed["recovered"] == replayed["replayed"] >= 1
    after = {r["query"]: r for r in app.interactions("claude-code", 10)}
    for query, turn in after.items():
        assert len(turn["event_ids"]) >= len(before[query]["event_ids"])
    assert sum(len(t["event_ids"]) for t in after.values()) - sum(len(t["event_ids"]) for t in before.values()) >= 1
    first = after["add a password length check to the login form"]
    assert first["response"] == "I'll read the form first.\n\nAdded `if len(password) < 12: raise ValueError`."
    app.close()


def test_a_turn_deleted_for_good_leaves_no_ghost_behind(app: Skilld, telemetry: Path) -> None:
    write_lines(_claude_path(telemetry), claude_session())
    app.ingest([telemetry])
    first = _by_query(app, "claude-code")["add a password length check to the login form"]
    # Retention and `forget` delete a turn's own events; the next prompt that judged it stays.
    app.store.bury("events", [e for e in first["event_ids"] if _owns(app, e, first["key"])])
    assert first["key"] not in {r["key"] for r in app.interactions(None, 50)}
    assert app.learner.interaction(first["key"]) is None


def _owns(app: Skilld, event_id: str, key: str) -> bool:
    return app.store.conn.execute("SELECT interaction_key FROM events WHERE id = ?", (event_id,)).fetchone()[0] == key


def test_a_codex_turn_counts_its_prompt_once_and_goes_on_after_a_resubmission(app: Skilld, telemetry: Path) -> None:
    write_lines(_rollout_path(telemetry), codex_rollout())
    app.ingest([telemetry])
    turns = _by_query(app, "codex")
    assert list(turns) == ["also log every eviction at debug level", "make the cache expire after 10 minutes"]
    cache = turns["make the cache expire after 10 minutes"]
    assert cache["response"] == "Entries now expire after 600 seconds; tests pass."
    assert cache["signals"]["tool_calls"] == 3 and cache["signals"]["tool_errors"] == 1
    assert cache["signals"]["open_error"] is False and cache["files_modified"] == ["app/cache.py"]
    assert (cache["session"], cache["model"], cache["cwd"]) == (ROLLOUT_ID, "gpt-5.1-codex", "/home/dev/app")
    assert cache["outcome"] == "success"  # the person moved on to the next request
    log = turns["also log every eviction at debug level"]
    assert log["signals"]["interrupted"] == 1 and log["signals"]["prompts"] == 2
    assert log["signals"]["open_interrupt"] is False and log["response"] == "Evictions are logged at DEBUG."


def test_an_abort_never_resubmitted_fails_the_turn(app: Skilld, telemetry: Path) -> None:
    lines = [*_prompt_lines("rename the module", 1), _rollout("event_msg", {"type": "turn_aborted"}, 2)]
    write_lines(_rollout_path(telemetry), lines)
    app.ingest([telemetry])
    (turn,) = app.interactions("codex", 10)
    assert turn["outcome"] == "failure" and turn["learnable"]


def test_an_older_codex_rollout_of_bare_items_reads_too(app: Skilld, telemetry: Path) -> None:
    content = [{"type": "input_text", "text": "add a health endpoint"}]
    lines = [
        {"id": ROLLOUT_ID, "timestamp": "2025-05-02T09:00:00.000Z", "instructions": None},
        {"record_type": "state"},
        {"type": "message", "role": "user", "content": content},
        {"type": "function_call", "name": "shell", "arguments": "{}", "call_id": "c1"},
        {"type": "function_call_output", "call_id": "c1", "output": '{"output":"ok","metadata":{"exit_code":0}}'},
        {"type": "message", "role": "assistant", "content": [{"type": "output_text", "text": "Added GET /health."}]},
        {"record_type": "state"},
    ]
    write_lines(_rollout_path(telemetry), lines)
    app.ingest([telemetry])
    assert app.status()["dead_letters"] == 0
    (turn,) = app.interactions("codex", 10)
    assert (turn["query"], turn["response"], turn["session"]) == (
        "add a health endpoint",
        "Added GET /health.",
        ROLLOUT_ID,
    )
    assert turn["signals"]["tool_calls"] == 1 and turn["signals"]["open_error"] is False


def _agent_round(prompt: str, completion: str) -> dict[str, Any]:
    return {
        "eventName": "chatInteraction",
        "schema": "0.2.0",
        "timestamp": 1793527200123,  # epoch milliseconds, as older Continue writers wrote it
        "userId": "",
        "sessionId": "chat-7",
        "modelTitle": "Qwen2.5-Coder 7B",
        "prompt": prompt,
        "completion": completion,
        "tools": [{"type": "function", "function": {"name": "read_file"}}],
    }


def test_continue_agent_rounds_of_one_question_are_one_interaction(app: Skilld, telemetry: Path) -> None:
    system = "<system>\nYou are a coding agent. Use tools when needed.\n\n"
    question = "<user>\nwhy does test_parse fail?\n\n"
    call = "<assistant>\nI'll read the test.\n\n"
    result = "<tool>\ndef test_parse(): assert parse('1') == 1\n\n"
    rounds = [
        _agent_round(system + question, "<assistant>\nI'll \n\n<assistant>\nread the test.\n\n"),
        _agent_round(
            system + question + call + result,
            "<think>\nparse returns str\n</think>\nparse() returns a string; cast it with int().",
        ),
    ]
    write_lines(telemetry / "dev_data" / "0.2.0" / "chatInteraction.jsonl", rounds)
    app.ingest([telemetry])
    (chat,) = app.interactions("continue", 10)
    assert chat["query"] == "why does test_parse fail?" and len(chat["event_ids"]) == 2
    assert chat["response"] == "parse() returns a string; cast it with int()."
    assert chat["signals"] == {"rounds": 2, "tool_rounds": 1}
    assert chat["context_chars"] > len("You are a coding agent.") and chat["started_at"].startswith("2026-11-01T")
    assert learnable(app.learner.interaction(chat["key"]))  # type: ignore[arg-type]


def test_old_continue_layouts_are_continue(app: Skilld, telemetry: Path) -> None:
    dev_data = telemetry / "dev_data"
    write_lines(dev_data / "0.1.0" / "tokensGenerated.jsonl", [{"model": "m", "promptTokens": 3, "generatedTokens": 4}])
    write_lines(dev_data / "tokens_generated.jsonl", [{"model": "m", "promptTokens": 5, "generatedTokens": 6}])
    legacy = {"completion": "x", "accepted": True, "completionId": "c9", "filepath": "a.ts", "timestamp": 1743140006270}
    write_lines(dev_data / "autocomplete.jsonl", [legacy])
    app.ingest([telemetry])
    (source,) = app.status()["sources"]
    assert source["name"] == "continue" and source["dead_letters"] == 0
    assert source["types"] == {"tokensGenerated": 2, "autocomplete": 1}


@pytest.mark.parametrize(
    ("prompt", "verdict"),
    [
        ("no, use the async client", "correction"),
        ("that's wrong, the default is 10", "correction"),
        ("it still fails with the same error", "correction"),
        ("The cooldown should start at the top, not the left", "correction"),
        ("this doesn't compile", "correction"),
        ("please revert the last change", "revert"),
        ("undo that", "revert"),
        ("thanks, that works", "confirmation"),
        ("perfect", "confirmation"),
        ("lgtm, now add tests", "confirmation"),
        ("now add a README section", "moved_on"),
        ("Nothing changed in the config?", "moved_on"),
        ("know any good pytest plugins?", "moved_on"),
    ],
)
def test_the_next_prompt_judges_the_turn_before_it(prompt: str, verdict: str) -> None:
    assert judge(prompt) == verdict
