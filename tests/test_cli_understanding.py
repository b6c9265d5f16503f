"""`skilld init` and `skilld interactions` as a new user meets them: real processes, real files."""

from __future__ import annotations

import json
import tomllib
from pathlib import Path

from tests.helpers import cli_env, skilld, skilld_json, write_lines

CONTRACT_KEYS = {
    "key",
    "source",
    "kind",
    "session",
    "query",
    "response",
    "context_chars",
    "outcome",
    "feedback",
    "value_score",
    "event_ids",
    "signals",
}


def _machine(tmp_path: Path) -> Path:
    """A home directory where Continue, Claude Code and Codex CLI have written telemetry."""
    user = tmp_path / "user"
    (user / ".continue" / "dev_data" / "0.2.0").mkdir(parents=True)
    (user / ".continue" / "dev_data" / "0.2.0" / "chatInteraction.jsonl").write_text("")
    (user / ".claude" / "projects" / "-src-app").mkdir(parents=True)
    (user / ".codex" / "sessions" / "2026" / "11" / "23").mkdir(parents=True)
    return user


def test_init_writes_the_found_telemetry_into_a_new_config_only(home: Path, tmp_path: Path) -> None:
    user = _machine(tmp_path)
    env = cli_env(home, HOME=str(user))
    config = tmp_path / "xdg-config" / "skilld" / "config.toml"
    result = skilld_json(home, "init", "--yes", env=env)
    expected = [str(user / ".continue/dev_data"), str(user / ".claude/projects"), str(user / ".codex/sessions")]
    assert result["written"] is True and result["config"] == str(config)
    assert [f["tool"] for f in result["found"]] == ["continue", "claude-code", "codex"]
    assert tomllib.loads(config.read_text())["telemetry"]["paths"] == expected
    assert config.stat().st_mode & 0o077 == 0
    # skilld itself reads what init wrote.
    status = skilld_json(home, "status", env=env)
    assert status["events"] == 0

    config.write_text(config.read_text() + "\n[scoring]\nthreshold = 0.5\n")
    before = config.read_text()
    again = skilld(home, "init", "--yes", env=env, check=False)
    assert again.returncode == 1 and "exists; run `skilld init --force`" in again.stderr
    assert config.read_text() == before

    (user / ".codex").rename(tmp_path / "gone")
    forced = skilld_json(home, "init", "--yes", "--force", env=env)
    settings = tomllib.loads(config.read_text())
    assert settings["scoring"] == {"threshold": 0.5}  # the user's other settings are kept
    assert settings["telemetry"]["paths"] == expected == forced["paths"]  # and no path twice


def test_init_without_consent_or_telemetry_writes_nothing(home: Path, tmp_path: Path) -> None:
    config = tmp_path / "xdg-config" / "skilld" / "config.toml"
    empty = tmp_path / "empty"
    empty.mkdir()
    nothing = skilld(home, "init", "--yes", env=cli_env(home, HOME=str(empty)))
    assert "no telemetry of Continue, Claude Code or Codex CLI found" in nothing.stderr and not config.exists()
    refused = skilld(home, "init", env=cli_env(home, HOME=str(_machine(tmp_path))), check=False)
    assert refused.returncode == 1 and "run `skilld init --yes`" in refused.stderr and not config.exists()


def test_interactions_lists_what_was_understood_newest_first(home: Path, telemetry: Path) -> None:
    chats = [
        {
            "eventName": "chatInteraction",
            "schema": "0.2.0",
            "sessionId": "s1",
            "timestamp": f"2026-11-0{i}T10:00:00Z",
            "prompt": f"<system>\nBe brief.\n\n<user>\n{question}\n\n",
            "completion": answer,
        }
        for i, (question, answer) in enumerate(
            [("how do I undo the last commit?", "git reset --soft HEAD~1"), ("list open ports", "ss -tlnp")], 1
        )
    ]
    write_lines(telemetry / "dev_data" / "0.2.0" / "chatInteraction.jsonl", chats)
    write_lines(
        telemetry / "aidb-events.jsonl",
        [{"event_type": "query", "query": "what is WAL?", "llm_used": "local", "success": True}],
    )
    skilld(home, "ingest", "--no-learn", str(telemetry))
    listed = skilld_json(home, "interactions")
    assert [r["query"] for r in listed] == ["what is WAL?", "list open ports", "how do I undo the last commit?"]
    assert all(set(r) >= CONTRACT_KEYS for r in listed)
    newest_chat = skilld_json(home, "interactions", "--source", "continue", "--limit", "1")
    assert len(newest_chat) == 1
    (chat,) = newest_chat
    assert (chat["source"], chat["kind"], chat["session"], chat["response"]) == ("continue", "chat", "s1", "ss -tlnp")
    assert chat["context_chars"] == len("<system>\nBe brief.") and chat["feedback"] is None
    assert chat["value_score"] is None and json.dumps(chat["event_ids"]).startswith('["')
    human = skilld(home, "interactions", "--limit", "1")
    assert human.stdout == "" and "Q: what is WAL?" in human.stderr
