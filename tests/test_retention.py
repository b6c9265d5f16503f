"""Retention, compression of read telemetry, and vacuum: old data goes, and never comes back by a re-read."""

from __future__ import annotations

import gzip
import os
import shutil
import subprocess
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

from daemon.app import Skilld
from tests.helpers import numbered, rows, skilld_json, write_lines

OLD = (datetime.now(UTC) - timedelta(days=200)).isoformat()
RECENT = (datetime.now(UTC) - timedelta(days=1)).isoformat()


def _records(n: int, stamp: str, start: int = 0) -> list[dict[str, Any]]:
    return [{**r, "timestamp": stamp} for r in numbered(n, start=start)]


def _score_all(app: Skilld, embedder: Any) -> None:
    app.learner._embedder = embedder
    app.settings.scoring.threshold = 1.0  # nothing to extract: these tests are about retention
    while app.learner.score_batch():
        pass


def test_old_events_expire_and_no_re_read_brings_them_back(
    app: Skilld, telemetry: Path, tmp_path: Path, embedder: Any
) -> None:
    log = telemetry / "aidb-events.jsonl"
    write_lines(log, _records(2000, OLD) + _records(3, RECENT, start=5000))
    assert app.ingest([log]).events == 2003
    assert app.housekeeping()["expired"] == {"events": 0, "dead_letters": 0}  # not scored yet: kept
    _score_all(app, embedder)
    done = app.housekeeping()
    assert done["expired"] == {"events": 2000, "dead_letters": 0}
    assert done["vacuum"]["database_bytes"] < done["vacuum"]["database_bytes_before"]
    assert app.status()["events"] == 3

    # The same file, a copy, a gzip of it, and a shorter copy (read from its start): nothing comes back.
    elsewhere = tmp_path / "elsewhere"
    elsewhere.mkdir()
    shutil.copy(log, elsewhere / "copy-aidb-events.jsonl")
    with open(log, "rb") as source, gzip.open(elsewhere / "aidb-events.jsonl.1.gz", "wb") as sink:
        sink.write(source.read())
    head = log.read_bytes().split(b"\n")[:1500]
    (elsewhere / "head-aidb-events.jsonl").write_bytes(b"\n".join(head) + b"\n")
    assert app.ingest([log, elsewhere]).events == 0
    assert app.status()["events"] == 3

    # New lines after the expired ones are read as usual.
    write_lines(log, _records(2, RECENT, start=9000))
    assert app.ingest([log]).events == 2 and app.status()["events"] == 5


def test_undated_events_go_by_when_their_file_was_first_seen(app: Skilld, telemetry: Path, embedder: Any) -> None:
    log = telemetry / "aidb-events.jsonl"
    undated = [{k: v for k, v in r.items() if k != "timestamp"} for r in numbered(2)]
    write_lines(log, [*undated, "{not json"])
    app.ingest([log])
    _score_all(app, embedder)
    assert app.housekeeping()["expired"] == {"events": 0, "dead_letters": 0}
    with app.store.conn:
        app.store.conn.execute("UPDATE files SET first_seen = ?", (OLD,))
        app.store.conn.execute("UPDATE dead_letters SET created_at = ?", (OLD,))
    assert app.housekeeping()["expired"] == {"events": 2, "dead_letters": 1}
    assert app.ingest([log]).events == 0 and app.status()["dead_letters"] == 0


def _age(path: Path, days: float) -> None:
    stamp = time.time() - days * 86400
    os.utime(path, (stamp, stamp))


def test_fully_read_old_telemetry_is_compressed_only_when_managed(app: Skilld, telemetry: Path) -> None:
    read = telemetry / "aidb-events.jsonl"
    write_lines(read, _records(50, RECENT))
    read.chmod(0o640)  # a mode of its own, which the compressed file keeps
    unfinished = telemetry / "ralph-events.jsonl"
    write_lines(unfinished, numbered(3))
    with open(unfinished, "a") as handle:
        handle.write('{"half": ')  # a writer mid-line: not fully read
    fresh = telemetry / "hybrid-events.jsonl"
    write_lines(fresh, numbered(3))
    held = telemetry / "vscode-events.jsonl"
    write_lines(held, numbered(3))
    app.ingest([telemetry])
    for path in (read, unfinished, held):
        _age(path, 10)
    original = read.read_bytes()

    assert app.housekeeping()["telemetry"] == {"compressed": 0, "bytes_saved": 0, "failed": 0}  # not managed
    assert read.exists()

    app.settings.retention.manage_telemetry = True
    with open(held, "rb") as handle:
        writer = subprocess.Popen(["sleep", "60"], stdin=handle)  # another process has it open
    try:
        result = app.housekeeping()["telemetry"]
    finally:
        writer.kill()
        writer.wait()
    compressed = read.with_name(read.name + ".1.gz")  # rotated first, so a writer by name starts anew
    assert not read.exists() and gzip.decompress(compressed.read_bytes()) == original
    saved = len(original) - compressed.stat().st_size
    assert result == {"compressed": 1, "bytes_saved": saved, "failed": 0} and saved > 0
    assert (compressed.stat().st_mode & 0o777) == 0o640
    assert [p.name for p in telemetry.iterdir() if p.name.startswith(".")] == []
    assert unfinished.exists() and fresh.exists() and held.exists()
    # The compressed file's 50 events, once (the other files' lines are no events of their streams).
    assert app.ingest([telemetry]).events == 0 and app.status()["events"] == 50


def test_housekeeping_runs_on_demand_through_the_command_line(home: Path, telemetry: Path) -> None:
    write_lines(telemetry / "aidb-events.jsonl", _records(4, OLD) + _records(1, RECENT, start=10))
    skilld_json(home, "ingest", str(telemetry))
    result = skilld_json(home, "housekeeping")
    assert result["expired"]["events"] == 4
    assert rows(home, "SELECT COUNT(*) FROM events") == [(1,)]
