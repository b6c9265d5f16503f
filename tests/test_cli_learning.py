"""The learning commands as automation sees them: one JSON document, contract keys, one-line failures."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from tests.helpers import rows, skilld, skilld_json, write_lines

pytestmark = pytest.mark.slow


def test_learning_commands_keep_the_cli_contract(home: Path, telemetry: Path, tmp_path: Path) -> None:
    chat = {
        "eventName": "chatInteraction",
        "schema": "0.2.0",
        "sessionId": "s",
        "timestamp": "2026-11-01T10:00:00Z",
        "prompt": "How do I list the largest files in a directory?",
        "completion": "Run `du -ah . | sort -rh | head -20` to see the twenty largest files and folders.",
    }
    write_lines(telemetry / "dev_data" / "0.2.0" / "chatInteraction.jsonl", [chat])
    write_lines(
        telemetry / "dev_data" / "0.2.0" / "chatFeedback.jsonl",
        [{**chat, "eventName": "chatFeedback", "feedback": True}],
    )
    report = skilld_json(home, "ingest", str(telemetry))
    assert report["events"] == 2
    hits = skilld_json(home, "search", "find the biggest files on disk", "--limit", "3")
    assert isinstance(hits, list) and len(hits) == 1
    assert {"score", "id", "name", "description", "steps", "tags", "source_query", "source_queries"} <= set(hits[0])
    ((event_id,),) = rows(home, "SELECT id FROM events WHERE type = 'chatInteraction'")
    explained = skilld_json(home, "explain", event_id)
    assert explained["score"] >= 0.7 and set(explained["reasons"]) == {
        "outcome",
        "feedback",
        "reusability",
        "complexity",
        "novelty",
    }
    listed = skilld_json(home, "skills", "list")
    assert [s["id"] for s in listed] == [hits[0]["id"]]
    assert skilld_json(home, "skills", "show", hits[0]["id"])["name"] == hits[0]["name"]
    assert skilld_json(home, "skills", "export", str(tmp_path / "s.jsonl"))["exported"] == 1
    assert json.loads((tmp_path / "s.jsonl").read_text())["id"] == hits[0]["id"]
    assert skilld_json(home, "dataset", "stats")["examples"] == 1
    exported = skilld_json(home, "dataset", "export", str(tmp_path / "out"))
    assert exported["train"] + exported["validation"] == 1

    missing = skilld(home, "explain", "no-such-event", check=False)
    assert missing.returncode == 1 and missing.stderr.strip().splitlines() == [
        "skilld: no event or interaction 'no-such-event'"
    ]
    no_flag = skilld(home, "feedback", event_id, check=False)
    assert no_flag.returncode == 2 and no_flag.stderr.strip() == "skilld: feedback: give --up or --down"
    assert skilld(home, "skills", "delete", "not-a-skill", check=False).returncode == 1
