"""The SQLite store: versioned migrations at start, owner-only files, and status that tells the truth."""

from __future__ import annotations

import json
import sqlite3
from pathlib import Path

import pytest

from daemon.app import Skilld
from storage.db import MIGRATIONS, migrate, open_database, schema_version
from tests.helpers import numbered, skilld_json, write_lines

STATUS_COUNTS = (
    "events",
    "interactions",
    "dead_letters",
    "scored",
    "high_value",
    "pending_extractions",
    "parked_extractions",
    "skills",
    "dataset_examples",
)


def test_a_new_database_is_migrated_to_the_latest_version(tmp_path: Path) -> None:
    conn = open_database(tmp_path / "s.db")
    assert schema_version(conn) == len(MIGRATIONS)
    tables = {name for (name,) in conn.execute("SELECT name FROM sqlite_master WHERE type = 'table'")}
    assert {"files", "events", "dead_letters"} <= tables
    assert conn.execute("PRAGMA journal_mode").fetchone()[0] == "wal"


def test_migrations_run_once_each_and_in_order(tmp_path: Path) -> None:
    conn = sqlite3.connect(tmp_path / "m.db", isolation_level=None)
    applied: list[int] = []

    def step(n: int):  # type: ignore[no-untyped-def]
        def run(db):  # type: ignore[no-untyped-def]
            applied.append(n)
            db.execute(f"CREATE TABLE t{n} (x)")

        return run

    assert migrate(conn, [step(1), step(2)]) == 2
    assert migrate(conn, [step(1), step(2), step(3)]) == 3
    assert applied == [1, 2, 3]


def test_a_database_from_a_newer_skilld_is_refused(tmp_path: Path) -> None:
    conn = sqlite3.connect(tmp_path / "n.db", isolation_level=None)
    conn.execute(f"PRAGMA user_version = {len(MIGRATIONS) + 1}")
    with pytest.raises(RuntimeError, match="newer than this skilld"):
        migrate(conn)


def test_status_reports_every_stage_and_every_source(app: Skilld, telemetry: Path) -> None:
    path = telemetry / "aidb-events.jsonl"
    write_lines(path, numbered(4))
    write_lines(path, ["not json"])
    app.ingest([telemetry])
    read = path.stat().st_size
    write_lines(path, numbered(1, start=4))
    status = app.status()
    for key in STATUS_COUNTS:
        assert isinstance(status[key], int), key
    assert (status["events"], status["interactions"], status["dead_letters"]) == (4, 4, 1)
    (source,) = status["sources"]
    assert source == {
        "name": "aidb",
        "files": 1,
        "bytes_read": read,
        "lines": 5,
        "events": 4,
        "dead_letters": 1,
        "lag_bytes": path.stat().st_size - read,  # the line written after the ingest, not read yet
        "types": {"query": 4},
    }
    assert source["lag_bytes"] == len(json.dumps(numbered(1, start=4)[0])) + 1


def test_status_json_from_the_cli_has_the_contract_keys(home: Path, telemetry: Path) -> None:
    write_lines(telemetry / "vscode-events.jsonl", [{"event_type": "completion", "extension": "x", "success": True}])
    skilld_json(home, "ingest", "--no-learn", str(telemetry))
    status = skilld_json(home, "status")
    assert set(STATUS_COUNTS) | {"sources"} <= set(status)
    assert status["sources"][0]["name"] == "vscode" and status["events"] == 1
