"""Bad lines never stop ingestion: each is dead-lettered with file, offset and reason; the rest is stored."""

from __future__ import annotations

import json
import os
from pathlib import Path

import pytest

from daemon.app import Skilld
from daemon.config import GenericStream, Settings
from tests.helpers import numbered, skilld, skilld_json

GOOD = json.dumps(numbered(1)[0]).encode()

BAD_LINES: dict[str, tuple[bytes, str]] = {
    "invalid JSON": (b'{"event_type": "query", ', "invalid JSON at byte"),
    "invalid UTF-8": (b'{"query": "caf\xe9"}', "invalid UTF-8 at byte 14"),
    "bare array": (b"[1, 2, 3]", "not a JSON object but an array"),
    "bare number": (b"42", "not a JSON object but a number"),
    "bare string": (b'"hello"', "not a JSON object but a string"),
    "null": (b"null", "not a JSON object but null"),
    "binary garbage": (bytes(range(1, 10)) + b"\xff\xfe", "invalid UTF-8"),
    "nesting past the parser": (b"[" * 100_000 + b"]" * 100_000, "invalid JSON at byte"),
    "nesting past Python's recursion": (
        b'{"event_type": "query", "extra": ' + b'{"a": ' * 1000 + b'"password=hunter22"' + b"}" * 1000 + b"}",
        "nesting too deep to read",
    ),
}


@pytest.mark.parametrize("name", list(BAD_LINES))
def test_a_bad_line_is_dead_lettered_and_the_lines_around_it_are_stored(
    app: Skilld, telemetry: Path, name: str
) -> None:
    line, reason = BAD_LINES[name]
    path = telemetry / "aidb-events.jsonl"
    path.write_bytes(GOOD + b"\n" + line + b"\n" + GOOD + b"\n")
    report = app.ingest([telemetry])
    assert (report.events, report.dead_letters) == (2, 1)
    (letter,) = app.dead_letters()
    assert letter["path"] == str(path) and letter["offset"] == len(GOOD) + 1 and letter["length"] == len(line)
    assert letter["reason"].startswith(reason)
    assert "\n" not in letter["reason"]


def test_a_60_mb_line_is_dead_lettered_capped_and_redacted(app: Skilld, telemetry: Path) -> None:
    path = telemetry / "aidb-events.jsonl"
    huge = b'{"query": "mail bob@example.com ' + b"x" * (60 * 1024 * 1024) + b'"}'
    with open(path, "wb") as handle:
        handle.write(GOOD + b"\n" + huge + b"\n" + GOOD + b"\n")
    report = app.ingest([telemetry])
    assert (report.events, report.dead_letters) == (2, 1)
    (letter,) = app.dead_letters()
    assert letter["reason"].startswith(f"line of {len(huge)} bytes is longer than telemetry.max_line_bytes")
    assert len(letter["content"]) <= 4096
    assert "bob@example.com" not in letter["content"] and "[REDACTED:EMAIL]" in letter["content"]


def test_an_unfinished_huge_line_waits_without_being_cut(app: Skilld, telemetry: Path) -> None:
    path = telemetry / "aidb-events.jsonl"
    partial = b'{"query": "' + b"y" * (17 * 1024 * 1024)
    path.write_bytes(GOOD + b"\n" + partial)
    assert app.ingest([telemetry]).dead_letters == 0
    with open(path, "ab") as handle:
        handle.write(b'"}\n')
    report = app.ingest([telemetry])
    assert (report.events, report.dead_letters) == (0, 1)
    assert app.status()["events"] == 1


def test_ingest_exits_0_and_counts_dead_letters(home: Path, telemetry: Path) -> None:
    (telemetry / "aidb-events.jsonl").write_bytes(GOOD + b"\nnot json\n[1]\n")
    report = skilld_json(home, "ingest", str(telemetry))
    assert (report["events"], report["dead_letters"]) == (1, 2)
    status = skilld_json(home, "status")
    assert status["dead_letters"] == 2 and status["sources"][0]["dead_letters"] == 2
    listed = skilld_json(home, "deadletters", "list")
    assert [d["offset"] for d in listed] == [len(GOOD) + 1, len(GOOD) + 10]


def test_an_unreadable_path_is_a_failure_with_one_line(home: Path, tmp_path: Path) -> None:
    result = skilld(home, "ingest", str(tmp_path / "missing"), check=False)
    assert result.returncode == 1
    assert result.stderr.strip().splitlines() == [
        f"skilld: cannot read {tmp_path / 'missing'}: no such file or directory"
    ]
    if os.geteuid() != 0:  # root reads anything
        locked = tmp_path / "locked.jsonl"
        locked.write_text("{}\n")
        locked.chmod(0)
        assert skilld(home, "ingest", str(locked), check=False).returncode == 1


def test_replay_turns_dead_letters_into_events_after_a_fix(settings: Settings, telemetry: Path) -> None:
    path = telemetry / "mytool-1.jsonl"
    path.write_text(json.dumps({"prompt": "how to x", "answer": "do y"}) + "\n" + "broken\n")
    settings.telemetry.generic = [
        GenericStream(name="mytool", match="mytool-*.jsonl", query="input", response="output")
    ]
    app = Skilld(settings)
    assert app.ingest([telemetry]).dead_letters == 2
    app.close()
    settings.telemetry.generic = [
        GenericStream(name="mytool", match="mytool-*.jsonl", query="prompt", response="answer")
    ]
    app = Skilld(settings)
    counts = app.replay()
    assert counts == {"replayed": 2, "recovered": 1, "still_failing": 1, "source_gone": 0}
    status = app.status()
    assert (status["events"], status["dead_letters"]) == (1, 1)
    assert app.replay()["recovered"] == 0  # replaying again changes nothing
    assert app.ingest([telemetry]).events == 0  # and the recovered line is not stored twice
    app.close()
