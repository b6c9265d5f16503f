"""The whole loop with the real models: telemetry written while `skilld run` runs becomes searchable skills."""

from __future__ import annotations

import textwrap
from pathlib import Path

import pytest

from storage.datasets import read_records
from tests.helpers import Daemon, run_writer, skilld_json, wait_for

pytestmark = pytest.mark.slow

WRITER = textwrap.dedent("""
    import json, os, sys, time
    root = sys.argv[1]
    def append(name, *records):
        path = os.path.join(root, name)
        os.makedirs(os.path.dirname(path), exist_ok=True)
        with open(path, "a") as f:
            for r in records:
                f.write(json.dumps(r) + "\\n"); f.flush(); time.sleep(0.05)
    chat = {"eventName": "chatInteraction", "schema": "0.2.0", "timestamp": "2026-11-20T09:00:00Z",
            "userId": "dev", "sessionId": "s1",
            "prompt": "How do I undo my last git commit but keep the changes staged?",
            "completion": "Run `git reset --soft HEAD~1`. The commit disappears and its changes stay staged."}
    append("dev_data/0.2.0/chatInteraction.jsonl", chat)
    append("dev_data/0.2.0/chatFeedback.jsonl", {**chat, "eventName": "chatFeedback", "feedback": True})
    task = "t-42"
    append("ralph-events.jsonl",
        {"event": "task_submitted", "task_id": task, "timestamp": "2026-11-20T09:00:00Z",
         "prompt": "Add a retry with exponential backoff to the HTTP client"},
        {"event": "iteration_completed", "task_id": task, "iteration": 1, "timestamp": "2026-11-20T09:05:00Z"},
        {"event": "task_completed", "task_id": task, "iteration": 2, "exit_code": 0, "user_feedback": 1,
         "timestamp": "2026-11-20T09:10:00Z",
         "output": "Wrapped `send()` in a loop that sleeps 2**attempt seconds and retries up to 5 times.",
         "context": {"files_modified": ["http.py", "retry.py", "config.py", "test_http.py"], "tests_passed": True}})
    append("vscode-events.jsonl",
        {"event_type": "completion", "extension": "ai", "success": True, "user_feedback": 1,
         "prompt": "How do I read a CSV file into a pandas DataFrame?",
         "completion": "Use `pd.read_csv('data.csv')`; pass `sep=';'` for semicolon files.",
         "timestamp": "2026-11-20T09:20:00Z"})
    append("aidb-events.jsonl",
        {"event_type": "query", "query": "What is the capital of France?", "response": "Paris.",
         "timestamp": "2026-11-20T09:30:00Z"})
    append("hybrid-events.jsonl",
        {"event": "route_decided", "query": "summarize this page", "route": "local", "reasoning": "short",
         "timestamp": "2026-11-20T09:31:00Z"})
""")

PARAPHRASES = {
    "revert the most recent commit in git without losing my work": "How do I undo my last git commit",
    "load a csv with pandas": "How do I read a CSV file into a pandas DataFrame?",
    "retry failed http requests with growing delays": "Add a retry with exponential backoff",
}


def test_telemetry_written_while_the_daemon_runs_becomes_skills_and_examples(home: Path, telemetry: Path) -> None:
    with Daemon(home, telemetry) as daemon:
        assert run_writer(WRITER, str(telemetry)).wait(timeout=60) == 0
        wait_for(
            lambda: daemon.status()["extracted"] + daemon.status()["parked_extractions"] >= 3, 300, "three extractions"
        )
        wait_for(lambda: daemon.status()["pending_extractions"] == 0, 120, "an empty queue")
        status = daemon.status()
        assert (status["interactions"], status["scored"], status["high_value"]) == (5, 5, 3)
        assert (status["skills"], status["parked_extractions"], status["dataset_examples"]) == (3, 0, 3)
        for paraphrase, source in PARAPHRASES.items():
            hits = skilld_json(home, "search", paraphrase, "--limit", "1", env=daemon.env)
            assert hits and hits[0]["source_query"].startswith(source), (paraphrase, hits)
    records = read_records(home / "datasets" / "finetune.jsonl")
    assert sorted(r["metadata"]["source"] for r in records) == ["continue", "ralph", "vscode"]
    questions = {r["messages"][1]["content"] for r in records}
    assert "What is the capital of France?" not in questions and "summarize this page" not in questions
    after = skilld_json(home, "status")  # the same answer from the stores, with no daemon running
    assert (after["events"], after["skills"], after["dataset_examples"]) == (8, 3, 3)
