"""Serving skills and learning whether they helped: the usage ledger, the Beta usefulness, ranking with it,
retirement of a skill that confidently does not help, and attribution from a Claude Code session's outcome.

In process, on the real embedder and vector store; the skills are added as the extraction stage adds them.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from daemon.adapters.claude_code import typed_request
from daemon.app import Skilld
from storage.skills import Evidence
from storage.usage import Outcome, UsageLedger
from storage.usefulness import confidently_low, estimate
from storage.vectors.base import SKILLS
from tests.helpers import write_lines

pytestmark = pytest.mark.slow

UNDO = {
    "name": "Undo the last git commit but keep its changes",
    "description": "Move the branch back one commit while the commit's changes stay staged.",
    "prerequisites": ["The commit has not been pushed"],
    "steps": ["Run `git reset --soft HEAD~1`", "Check with `git status` that the changes are staged"],
    "tags": ["git"],
    "example": "git reset --soft HEAD~1",
}
DISK = {
    "name": "Find the largest files under a folder",
    "description": "List what takes the most disk space below the current directory.",
    "prerequisites": [],
    "steps": ["Run `du -ah . | sort -rh | head -20`"],
    "tags": ["shell"],
    "example": "du -ah . | sort -rh | head -20",
}
SESSION = "7d3c2b1a-0f9e-4d8c-b7a6-5e4d3c2b1a09"


def _learn(app: Skilld, pattern: dict[str, Any], query: str) -> str:
    evidence = Evidence(dict(pattern), f"test:{query}", [], query, True, 0.8, "v2", "test", None)
    skill_id, _ = app.learner.library.add(evidence)
    app.learner.remember_skill_count()
    return skill_id


@pytest.fixture
def served(app: Skilld, embedder: Any) -> tuple[Skilld, str, str]:
    app.learner._embedder = embedder
    undo = _learn(app, UNDO, "How do I undo my last git commit but keep the changes?")
    disk = _learn(app, DISK, "Which command shows the biggest files in a directory?")
    return app, undo, disk


def test_the_posterior_narrows_with_evidence_and_only_confident_failure_retires() -> None:
    fresh, one_bad, five_bad, mixed = estimate(0, 0), estimate(0, 1), estimate(0, 5), estimate(5, 5)
    assert (fresh.mean, fresh.low, fresh.high) == (0.5, 0.05, 0.95)
    assert one_bad.mean == pytest.approx(1 / 3, abs=1e-4)
    assert five_bad.high < 0.4 < one_bad.high  # one bad rating is not enough to judge a skill
    assert mixed.mean == 0.5 and mixed.high - mixed.low < fresh.high - fresh.low
    assert confidently_low(five_bad, 0.4) and not confidently_low(mixed, 0.4)
    assert estimate(3, 0, prior=(2.0, 2.0)).mean == pytest.approx(5 / 7, abs=1e-4)


def test_a_serve_is_closed_once_by_its_sessions_prompt(app: Skilld) -> None:
    ledger = UsageLedger(app.store.conn)
    ledger.served(["a", "b"], "claude-code", "s1", "how do I  undo\na commit")
    ledger.served(["a"], "cli", None, "how do I undo a commit")
    assert ledger.has_open({"s1"}) and not ledger.has_open({"s2"})
    assert ledger.resolve("s1", "how do I undo a commit", Outcome.HELPED, "k1") == ["a", "b"]  # whitespace aside
    assert ledger.resolve("s1", "how do I undo a commit", Outcome.NOT_HELPED, "k1") == []  # never twice
    ledger.rated("a", Outcome.NOT_HELPED, "cli", "wrong branch")
    totals = ledger.totals("a")
    assert (totals.usage_count, totals.helped, totals.not_helped) == (2, 1, 1)
    assert totals.last_used is not None and ledger.totals("nothing").usage_count == 0
    assert [row["outcome"] for row in ledger.history("a")] == ["not_helped", None, "helped"]


def test_every_stored_skill_carries_the_usage_keys_in_its_payload(served: tuple[Skilld, str, str]) -> None:
    app, undo, _ = served
    raw = app.learner.vectors.retrieve(SKILLS, [undo])[0].payload  # what a tool reading Qdrant sees
    assert {k: raw[k] for k in ("usage_count", "last_used", "helped", "not_helped", "usefulness", "retired")} == {
        "usage_count": 0,
        "last_used": None,
        "helped": 0,
        "not_helped": 0,
        "usefulness": 0.5,
        "retired": None,
    }
    app.rate(undo, True, None, "cli")
    raw = app.learner.vectors.retrieve(SKILLS, [undo])[0].payload
    assert (raw["helped"], raw["usefulness"], raw["usefulness_interval"]) == (1, 0.6667, [0.2236, 0.9747])


def test_search_records_each_serve_and_ranks_a_skill_that_helped_above_an_equal_one(
    served: tuple[Skilld, str, str],
) -> None:
    app, undo, disk = served
    first = app.search("git", 2, "mcp:claude-code")
    assert {s["id"] for s in first} == {undo, disk}
    for key in ("usage_count", "last_used", "helped", "not_helped", "usefulness", "retired"):
        assert key in first[0]
    assert all(s["usage_count"] == 1 and s["last_used"] for s in first)
    assert app.skills("show", undo)["history"][0]["client"] == "mcp:claude-code"
    # A query about as close to both: rating decides the order.
    query = "clean up my workspace"
    before = {s["id"]: s for s in app.search(query, 2)}
    loser = min(before.values(), key=lambda s: s["score"])["id"]
    for _ in range(4):
        app.rate(loser, True, "it worked", "cli")
    after = app.search(query, 2)
    assert after[0]["id"] == loser, [(s["name"], s["relevance"], s["score"]) for s in after]
    assert after[0]["relevance"] == before[loser]["relevance"]  # relevance itself unchanged
    assert after[0]["helped"] == 4 and after[0]["usefulness"] == pytest.approx(5 / 6, abs=1e-4)


def test_a_skill_that_confidently_does_not_help_is_retired_and_can_be_restored(
    served: tuple[Skilld, str, str],
) -> None:
    app, undo, _ = served
    for n in range(4):
        assert app.rate(undo, False, f"bad {n}", "cli")["retired"] is None  # not yet confident
    retired = app.rate(undo, False, "still wrong", "cli")
    assert retired["retired"]["by"] == "usefulness" and "helped 0, not helped 5" in retired["retired"]["reason"]
    assert undo not in {s["id"] for s in app.search("undo my last commit", 5)}  # no longer served
    assert undo not in {s["id"] for s in app.skills("list")}
    assert [s["id"] for s in app.skills("retired")] == [undo]
    assert app.status()["retired"]["skills"] == 1
    with pytest.raises(LookupError):
        app.skills("restore", "4f1c0a53-0000-4000-8000-000000000000")
    assert app.skills("restore", undo) == {"restored": 1}
    again = app.search("undo my last commit", 1)[0]
    assert again["id"] == undo and again["not_helped"] == 5 and again["retired"] is None


def test_context_puts_only_relevant_skills_in_a_bounded_block(served: tuple[Skilld, str, str]) -> None:
    app, undo, disk = served
    block = app.context("I committed too early, how do I take the commit back without losing my edits?", "s", "cli")
    assert [s["id"] for s in block["skills"]] == [undo]
    assert "git reset --soft HEAD~1" in block["markdown"] and "du -ah" not in block["markdown"]
    assert app.context("write a haiku about autumn leaves", "s", "cli") == {"markdown": "", "skills": []}
    whole = app.context("undo my last git commit", None, "cli")["markdown"]
    assert "Example:" in whole
    app.settings.skills.context_max_chars = len(whole) - 10  # too small for the example: the steps still fit
    short = app.context("undo my last git commit", None, "cli")["markdown"]
    assert len(short) < len(whole) - 10 and "Run `git reset --soft HEAD~1`" in short and "Example" not in short
    app.settings.skills.context_max_chars = 200  # not even one skill: nothing rather than a piece
    assert app.context("undo my last git commit", None, "cli") == {"markdown": "", "skills": []}
    app.settings.skills.context_max_chars = 2500
    # A session starting: the skills that helped, by name, nothing when none has.
    assert app.context(None, "s", "claude-code")["markdown"] == ""
    app.rate(disk, True, None, "cli")
    index = app.context(None, "s", "claude-code")["markdown"]
    assert DISK["name"] in index and UNDO["name"] not in index


def _transcript(session: str, turns: list[tuple[str, str, str]]) -> list[dict[str, Any]]:
    """Claude Code lines: per turn a prompt, the assistant's answer, in the order given."""
    lines: list[dict[str, Any]] = []
    for n, (uuid, prompt, answer) in enumerate(turns):
        for kind, content, suffix in (("user", prompt, "u"), ("assistant", [{"type": "text", "text": answer}], "a")):
            line = {
                "type": kind,
                "uuid": f"{uuid}-{suffix}",
                "sessionId": session,
                "cwd": "/home/dev/shop",
                "timestamp": f"2026-11-20T09:{n:02d}:{0 if suffix == 'u' else 30:02d}.000Z",
                "message": {"role": kind, "content": content},
            }
            if kind == "assistant":
                line["message"].update(id=f"msg-{uuid}", model="claude-sonnet-4-5")
            lines.append(line)
    return lines


def test_a_served_skill_gains_evidence_when_its_sessions_turn_ends(
    served: tuple[Skilld, str, str], telemetry: Path
) -> None:
    app, undo, disk = served
    ask = "/fix I committed the wrong files, how do I undo my last git commit and keep the changes?"
    block = app.context(ask, SESSION, "claude-code")  # the hook, with the session's id
    assert [s["id"] for s in block["skills"]] == [undo]
    path = telemetry / "projects" / "-home-dev-shop" / f"{SESSION}.jsonl"
    command = (
        "<command-message>fix is running…</command-message>\n<command-name>/fix</command-name>\n"
        f"<command-args>{typed_request(ask)}</command-args>"
    )
    write_lines(path, _transcript(SESSION, [("t1", command, "Run `git reset --soft HEAD~1`; the changes stay.")]))
    app.ingest([path], learn=True)
    assert app.skills("show", undo)["helped"] == 0  # the turn is still open: no verdict yet
    write_lines(path, _transcript(SESSION, [("t2", "thanks, that works", "Glad it helped.")]))
    app.ingest([path], learn=True)
    shown = app.skills("show", undo)
    assert (shown["helped"], shown["not_helped"], shown["usage_count"]) == (1, 0, 1)
    assert shown["history"][0]["interaction"] == f"claude-code:{SESSION}:t1-u"
    app.ingest([path], learn=True)  # read again, scored again: counted once
    assert app.skills("show", undo)["helped"] == 1

    other = "0a1b2c3d-4e5f-4a6b-8c7d-9e0f1a2b3c4d"
    app.context("show me the largest files in this folder", other, "claude-code")
    path = telemetry / "projects" / "-home-dev-shop" / f"{other}.jsonl"
    turns = [
        ("d1", "show me the largest files in this folder", "Run `ls -S | head`."),
        ("d2", "no, that only looks at this folder, not the ones below it", "Use `du -ah . | sort -rh`."),
    ]
    write_lines(path, _transcript(other, turns))
    app.ingest([path], learn=True)
    shown = app.skills("show", disk)
    assert (shown["helped"], shown["not_helped"]) == (0, 1)
    assert app.skills("show", undo)["not_helped"] == 0  # served elsewhere: not judged by this session


def test_a_typed_prompt_is_the_request_its_transcript_records() -> None:
    assert typed_request("/orchestrator create TODO app by Next.js") == "create TODO app by Next.js"
    assert typed_request("/clear") is None and typed_request("!ls -la") is None
    assert typed_request("  fix the login bug\nplease ") == "fix the login bug\nplease"
    assert typed_request("/usr/bin/python crashes on start, why?") == "/usr/bin/python crashes on start, why?"
