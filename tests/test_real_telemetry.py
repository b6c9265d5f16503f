"""What skilld understands of real files written by real tools (`../shared/realworld/`, read in place).

These are other people's files from public repositories: read where they lie, never copied into the
project. Without that folder the tests skip and say why; the adapters' own fixtures cover the same shapes.
"""

from __future__ import annotations

import os
import re
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from daemon.app import Skilld
from daemon.config import load_settings
from daemon.pipeline import learnable
from tests.helpers import ROOT, rows

REALWORLD = ROOT.parent / "shared" / "realworld"
pytestmark = pytest.mark.skipif(not REALWORLD.is_dir(), reason=f"no real telemetry at {REALWORLD} (shared folder)")

# Text that only a chat template, a system prompt or a tool protocol puts into a prompt: never in a query.
TEMPLATE_TEXT = re.compile(
    r"<system>|<user>|<assistant>|<tool>|### Instruction|### Response|<important_rules>|<\|im_start\|>|\[INST\]"
    r"|<command-name>|<command-message>|<environment_context>|# AGENTS\.md|You are an AI programming assistant"
)
# Interactions each real file has events of (the rated chat counts in its chatFeedback file too).
EXPECTED = {
    "continue/jasmingabela__ai-coding-agent/dev_data/0.2.0/chatFeedback.jsonl": 1,
    "continue/jasmingabela__ai-coding-agent/dev_data/0.2.0/chatInteraction.jsonl": 30,
    "continue/dimits-ts__dotfiles/dev_data/0.2.0/chatInteraction.jsonl": 34,
    "continue/9Reg__rov_blue_light/dev_data/0.2.0/chatInteraction.jsonl": 1,
    "continue/Alexander-Bruce__resources-for-cs-student/dev_data/0.2.0/autocomplete.jsonl": 35,
    "continue/Alexander-Bruce__resources-for-cs-student/dev_data/autocomplete.jsonl": 1,
    "claude-code/d-kimuson__claude-code-viewer/projects/sample-project/1af7fc5e-8455-4414-9ccd-011d40f70b2a.jsonl": 1,
    "claude-code/d-kimuson__claude-code-viewer/projects/sample-project/5c0375b4-57a5-4f26-b12d-d022ee4e51b7.jsonl": 1,
    "claude-code/d-kimuson__claude-code-viewer/projects/sample-project/fe5e1c67-53e7-4862-81ae-d0e013e3270b.jsonl": 1,
    "codex/pinouchon__rtchess/dev_history/exported-session.lines-0001-0200.jsonl": 1,
    # six prompts, one of them resubmitted after an interrupt
    "codex/pinouchon__rtchess/dev_history/exported-session.lines-1238-1388.jsonl": 5,
    "codex/simonw__claude-code-transcripts/tests/sample_codex_session.jsonl": 1,
}
NOT_JSONL = "otel-genai/Josh-Weston__microsoft-agent-framework-samples/traces.lines-0388-0679.jsonl"


@pytest.fixture(scope="module")
def real(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Skilld]:
    home = tmp_path_factory.mktemp("real") / "home"
    with pytest.MonkeyPatch.context() as patch:
        for name in [n for n in os.environ if n.startswith("SKILLD_")]:
            patch.delenv(name)
        patch.setenv("XDG_CONFIG_HOME", str(home.parent / "xdg-config"))
        app = Skilld(load_settings(home=home))
    app.ingest([REALWORLD])
    yield app
    app.close()


@pytest.fixture(scope="module")
def understood(real: Skilld) -> list[dict[str, Any]]:
    return real.interactions(None, 10_000)


def test_every_real_jsonl_file_reads_without_a_dead_letter(real: Skilld) -> None:
    letters = real.dead_letters()
    assert {Path(d["path"]).resolve() for d in letters} == {(REALWORLD / NOT_JSONL).resolve()}
    # The one file that is not JSON lines says so on every line it could not read.
    assert all("ConsoleSpanExporter output (pretty-printed, not JSONL)" in d["reason"] for d in letters)
    sources = {s["name"]: s for s in real.status()["sources"]}
    assert sources["otel"]["dead_letters"] == len(letters) and sources["otel"]["events"] == 0
    assert set(sources) == {"continue", "claude-code", "codex", "otel", "unknown"}  # unknown: Aider's analytics


def test_each_real_file_holds_the_interactions_its_tool_recorded(real: Skilld) -> None:
    counts = {
        str(Path(path).resolve().relative_to(REALWORLD.resolve())): n
        for path, n in rows(
            real.home,
            "SELECT f.path, COUNT(DISTINCT e.interaction_key) FROM events e JOIN files f ON f.id = e.file_id "
            "WHERE e.interaction_key IS NOT NULL GROUP BY f.path",
        )
    }
    assert counts == EXPECTED


def test_the_rated_continue_chat_is_the_persons_own_question_with_its_thumb_up(
    understood: list[dict[str, Any]],
) -> None:
    (rated,) = [r for r in understood if r["feedback"] is not None and r["source"] == "continue"]
    assert rated["query"] == "can you check our chat history and tell me the date of eurosong 2025 finals"
    assert rated["feedback"] == 1 and len(rated["event_ids"]) == 2  # the chat and its chatFeedback
    assert rated["context_chars"] > 10_000  # the system text and the 18 turns before it, kept apart
    assert rated["response"].startswith("Based on our chat history")


def test_no_query_holds_template_or_system_text(understood: list[dict[str, Any]]) -> None:
    questions = [r for r in understood if r["query"]]
    assert len(questions) > 70
    leaks = [(r["key"], m.group(0)) for r in questions if (m := TEMPLATE_TEXT.search(r["query"]))]
    assert leaks == []


def test_no_response_holds_reasoning_or_chunk_wrappers(understood: list[dict[str, Any]]) -> None:
    answers = [r["response"] for r in understood if r["response"]]
    assert len(answers) > 60
    assert [a[:60] for a in answers if "<think>" in a or "</think>" in a or "<assistant>" in a] == []


def test_reasoning_and_streamed_chunks_are_removed_from_real_answers(understood: list[dict[str, Any]]) -> None:
    by_query = {r["query"]: r for r in understood if r["source"] == "continue"}
    deepseek_r1 = by_query["explain the round robin algorithm in one concise sentence"]
    assert deepseek_r1["response"].startswith("The Round Robin scheduling algorithm")
    ollama_agent = by_query["are you (quen2.5) now running inside this container?"]
    assert ollama_agent["response"] == '{"name": "read_skill", "arguments": {"skillName": "quen2.5"}}'


def test_autocomplete_is_a_counted_signal_never_a_question(real: Skilld, understood: list[dict[str, Any]]) -> None:
    completions = [r for r in understood if r["kind"] == "autocomplete"]
    assert len(completions) == 36 and not any(r["learnable"] for r in completions)
    # The epoch-millisecond timestamps that once became [REDACTED:CARD] are read as times.
    assert all(r["started_at"] and r["started_at"].startswith("2025-") for r in completions)
    rates = {(a["signal"], a["file_type"]): (a["accepted"], a["shown"]) for a in real.status()["acceptance"]}
    assert rates[("autocomplete", ".py")] == (3, 23)
    assert rates[("toolUsage", "none")] == (3, 5)


def test_claude_code_turns_are_the_prompts_the_person_typed(understood: list[dict[str, Any]]) -> None:
    turns = {r["session"]: r for r in understood if r["source"] == "claude-code"}
    init = turns["1af7fc5e-8455-4414-9ccd-011d40f70b2a"]
    assert (init["kind"], init["query"], init["learnable"]) == ("command", "/init", False)
    todo = turns["fe5e1c67-53e7-4862-81ae-d0e013e3270b"]
    assert (todo["kind"], todo["query"], todo["cwd"]) == ("task", "create TODO app by Next.js", "/path/to/Demo")
    assert todo["signals"]["command"] == "/orchestrator" and todo["signals"]["subagent_lines"] > 0
    update = turns["5c0375b4-57a5-4f26-b12d-d022ee4e51b7"]
    assert update["query"] == "@CLAUDE.md を最新の状態にアップデートしてください" and update["branch"] == "main"
    assert update["signals"]["tool_errors"] == 2 and update["signals"]["open_error"] is False
    assert update["files_modified"] == ["/path/to/Demo/CLAUDE.md"]
    # The answer is the assistant's own text, from its first message to its last; subagents' text is not in it.
    assert update["response"].startswith("I'll help you update the CLAUDE.md file to the latest state.")
    assert update["response"].endswith("- プロジェクトの実際の場所を反映")
    assert "Package.json Analysis Summary" not in update["response"]


def test_codex_turns_follow_prompts_resubmissions_and_corrections(understood: list[dict[str, Any]]) -> None:
    codex = [r for r in understood if r["source"] == "codex"]
    queries = [r["query"][:40] for r in reversed(codex) if r["session"] is None]
    assert queries == [
        "count the total lines of js code",
        "Now let's go forward and implement the r",
        "The cooldown should go the other way, cl",
        "The cooldown should start at the top, no",
        "Make the cooldown circle slightly larger",
    ]
    by_query = {r["query"][:40]: r for r in codex}
    realtime = by_query["Now let's go forward and implement the r"]
    assert realtime["signals"]["interrupted"] == 1 and realtime["signals"]["prompts"] == 2  # resubmitted once
    assert realtime["query"].endswith("are controlled by the user")  # the resubmitted wording
    assert (realtime["outcome"], realtime["feedback"]) == ("failure", -1)  # "should go the other way ... instead of"
    assert by_query["count the total lines of js code"]["outcome"] == "success"  # the person moved on
    assert by_query["The cooldown should start at the top, no"]["signals"]["patches"] == 1
    first = [r for r in codex if r["session"] == "019aad50-a7e6-7422-b7a8-0b384290624f"]
    assert len(first) == 1 and first[0]["query"].startswith("I want to make a chess variant")
    assert not any(TEMPLATE_TEXT.search(r["query"]) for r in codex)


@pytest.mark.slow
def test_only_questions_are_scored_and_queued(real: Skilld) -> None:
    while real.learner.score_batch():
        pass
    scored = {key for (key,) in rows(real.home, "SELECT interaction_key FROM scores")}
    queued = {key for (key,) in rows(real.home, "SELECT interaction_key FROM extraction_queue")}
    assert not any(key.startswith("continue:autocomplete:") for key in scored | queued)
    assert not any(key.startswith("claude-code:1af7fc5e") for key in scored)  # /init is a command
    interactions = [real.learner.interaction(key) for key in queued]
    assert queued and all(i is not None and learnable(i) for i in interactions)


@pytest.mark.slow
def test_what_skilld_learns_from_real_files_is_a_skill_or_a_decision_with_its_reason(
    tmp_path: Path, embedder: Any, llama: Any
) -> None:
    from extractors.extractor import Extractor
    from extractors.gate import assess
    from extractors.schema import SkillPattern
    from storage.skills import PATTERN_FIELDS

    with pytest.MonkeyPatch.context() as patch:
        for name in [n for n in os.environ if n.startswith("SKILLD_")]:
            patch.delenv(name)
        patch.setenv("XDG_CONFIG_HOME", str(tmp_path / "xdg-config"))
        app = Skilld(load_settings(home=tmp_path / "home"))
    app.learner._embedder = embedder
    app.learner._extractor = Extractor(llama)
    try:
        app.ingest([REALWORLD], learn=True)
        decided = {r["query"]: r["extraction"] for r in app.interactions(None, 10_000) if r["extraction"] is not None}
        # A question of fact and an agent's report of its own edits teach nothing, and say so.
        date = decided["can you check our chat history and tell me the date of eurosong 2025 finals"]
        assert date["state"] == "no_skill" and "question of fact" in date["reason"]
        report = decided["The cooldown should start at the top, not the left"]
        assert report["state"] == "no_skill" and "reports changes" in report["reason"]
        (skill,) = app.skills("list")
        assert skill["name"] == "Count the total lines of js code" and skill["steps"] == ["Run `wc -l *.js`"]
        for stored in app.skills("list"):  # every stored skill passes the gate against its own exchange
            interaction = app.interaction(stored["source_interactions"][0])
            assert interaction is not None
            pattern = SkillPattern.model_validate({k: stored[k] for k in PATTERN_FIELDS})
            verdict = assess(pattern, interaction.query or "", interaction.response or "", interaction.context or "")
            assert verdict.passed, verdict.reason
    finally:
        app.close()
