"""`skilld forget --user`: everything derived from one user goes, the rest stays, and nothing comes back."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

from daemon.app import Skilld
from storage.skills import Evidence, merge
from storage.usage import Outcome
from tests.helpers import Daemon, continue_chat, rows, skilld_json, write_lines

pytestmark = pytest.mark.slow

CHATS = Path("dev_data") / "0.2.0" / "chatInteraction.jsonl"
PATTERN = {
    "name": "Find large files",
    "description": "List the biggest files under a directory.",
    "steps": ["Run du -ah . | sort -rh | head"],
    "tags": ["shell"],
    "prerequisites": [],
    "example": "du -ah ~/Downloads | sort -rh | head",
}
QUESTIONS = {
    "alice-1": ("alice", "How do I find which files use the most disk space?"),
    "alice-2": ("alice", "Which command lists the largest files in a folder?"),
    "bob-1": ("bob", "How can I see the biggest files on my disk?"),
}


def _chat(session: str, user: str, prompt: str) -> dict[str, Any]:
    return continue_chat(session, prompt, "Run `du -ah . | sort -rh | head -20` to list the largest entries.", user)


def _keys(app: Skilld) -> dict[str, str]:
    return {
        session: key
        for session, key in app.store.conn.execute(
            "SELECT json_extract(record, '$.sessionId'), interaction_key FROM events"
        ).fetchall()
    }


def _evidence(app: Skilld, key: str, user: str, query: str) -> Evidence:
    events = [row[0] for row in app.store.events_of(key)]
    return Evidence(dict(PATTERN), key, events, query, True, 0.8, "v1", "test", app.privacy.hasher.hash(user))


def _everything_under(root: Path) -> bytes:
    # The SQLite files and the datasets; the vector store's segments are checked through its API.
    files = [p for p in root.rglob("*") if p.is_file() and "vectors" not in p.parts]
    return b"".join(p.read_bytes() for p in files)


def test_forget_removes_the_users_data_keeps_the_others_and_reports_model_versions(
    app: Skilld, telemetry: Path, embedder: Any
) -> None:
    app.learner._embedder = embedder
    write_lines(telemetry / CHATS, [_chat(s, user, q) for s, (user, q) in QUESTIONS.items()])
    write_lines(telemetry / "aidb-events.jsonl", ['{"userId": "alice", "query": "broken'])
    app.ingest([telemetry])
    while app.learner.score_batch():
        pass
    keys = _keys(app)
    library, datasets = app.learner.library, app.learner.datasets
    only_alice, _ = library.add(_evidence(app, keys["alice-1"], "alice", QUESTIONS["alice-1"][1]))
    shared_payload = merge(
        library._new_payload(_evidence(app, keys["bob-1"], "bob", QUESTIONS["bob-1"][1])),
        library._new_payload(_evidence(app, keys["alice-2"], "alice", QUESTIONS["alice-2"][1])),
    )
    library._put("00000000-0000-0000-0000-0000000000b0", shared_payload)
    # Usage: the shared skill served in alice's and bob's sessions and judged by their turns; alice's only skill
    # served once. What alice's turns taught goes with her; bob's evidence stays.
    ledger = app.learner.usage.ledger
    for session in ("alice-2", "bob-1"):
        ledger.served(["00000000-0000-0000-0000-0000000000b0"], "continue", session, QUESTIONS[session][1])
        ledger.resolve(session, QUESTIONS[session][1], Outcome.HELPED, keys[session])
    ledger.served([only_alice], "cli", None, None)
    for session in ("alice-1", "bob-1"):
        datasets.add_example(QUESTIONS[session][1], "Use du.", {"interaction": keys[session], "source": "continue"})
    app.learner.learning.add_feedback(keys["alice-2"], -1, None)
    trained = app.home / "models" / "v1" / "data"
    trained.mkdir(parents=True)
    (trained / "train.jsonl").write_text(json.dumps({"metadata": {"interaction": keys["alice-1"]}}) + "\n")
    (trained / "validation.jsonl").write_text(json.dumps({"metadata": {"interaction": keys["bob-1"]}}) + "\n")
    alice = app.privacy.hasher.hash("alice")
    assert alice.encode() in _everything_under(app.home)

    result = app.forget("alice")

    assert {k: result[k] for k in result if k != "user"} == {
        "interactions": 2,
        "events": 2,
        "scores": 2,
        "queued": 0,
        "feedback": 1,
        "dead_letters": 1,
        "skills_deleted": 1,
        "skills_updated": 1,
        "usage_records": 2,
        "dataset_examples": 1,
        "preference_pairs": 0,
        "model_versions": [1],
    }
    assert result["user"] == alice
    assert [session for session in _keys(app)] == ["bob-1"]
    assert library.get(only_alice) is None
    shared = library.get("00000000-0000-0000-0000-0000000000b0")
    assert shared is not None and shared["source_interactions"] == [keys["bob-1"]]
    assert shared["source_users"] == [app.privacy.hasher.hash("bob")] and shared["evidence_count"] == 1
    assert shared["source_queries"] == [QUESTIONS["bob-1"][1]]
    assert (shared["usage_count"], shared["helped"]) == (1, 1)  # bob's serve and his turn's verdict
    assert ledger.totals(only_alice).usage_count == 0
    assert [h["id"] for h in app.search(QUESTIONS["bob-1"][1], 5)] == ["00000000-0000-0000-0000-0000000000b0"]
    assert app.dataset("stats")["examples"] == 1
    assert (trained / "train.jsonl").read_text() == ""
    everything = _everything_under(app.home)
    assert alice.encode() not in everything
    for session in ("alice-1", "alice-2"):
        assert QUESTIONS[session][1].encode() not in everything

    # Reading the telemetry again brings none of it back.
    app.tailer.close()
    assert app.ingest([telemetry]).events == 0
    assert [session for session in _keys(app)] == ["bob-1"]


def test_forget_through_the_running_daemon(home: Path, telemetry: Path) -> None:
    write_lines(telemetry / CHATS, [_chat(s, user, q) for s, (user, q) in QUESTIONS.items()])
    with Daemon(home, telemetry) as daemon:
        daemon.wait_events(3)
        result = skilld_json(home, "forget", "--user", "bob", env=daemon.env)
        assert result["interactions"] == 1 and result["events"] == 1
        assert daemon.status()["events"] == 2
        write_lines(telemetry / CHATS, [_chat("bob-2", "bob", "A new question from bob?")])
        daemon.wait_events(3)  # new telemetry of the same user is read as usual
    assert rows(home, "SELECT COUNT(*) FROM events WHERE user_hash IS NOT NULL") == [(3,)]
