"""Opening skilld's SQLite database: owner-only files, WAL mode, and versioned migrations at start.

Migrations are written with sqlite-utils; the hot path uses the sqlite3 connection directly, and
sqlite-utils (which imports numpy when present, ~150 ms) is imported only when a migration must run,
so that store-only commands start fast.
"""

from __future__ import annotations

import os
import sqlite3
from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    import sqlite_utils

Migration = Callable[["sqlite_utils.Database"], None]


def _v1_ingestion(db: sqlite_utils.Database) -> None:
    files, events, dead_letters = db.table("files"), db.table("events"), db.table("dead_letters")
    files.create(
        {
            "id": int,
            "fingerprint": str,
            "generation": int,
            "path": str,
            "dev": int,
            "inode": int,
            "compressed": int,
            "stream": str,
            "offset": int,
            "tail_hash": str,
            "tail_len": int,
            "lines": int,
            "first_seen": str,
            "updated_at": str,
        },
        pk="id",
        not_null={
            "fingerprint",
            "generation",
            "path",
            "compressed",
            "offset",
            "tail_len",
            "lines",
            "first_seen",
            "updated_at",
        },
        defaults={"generation": 0, "compressed": 0, "offset": 0, "tail_len": 0, "lines": 0},
    )
    files.create_index(["fingerprint", "generation"], index_name="files_fingerprint")
    files.create_index(["dev", "inode"], index_name="files_inode")
    events.create(
        {
            "seq": int,
            "id": str,
            "file_id": int,
            "offset": int,
            "source": str,
            "type": str,
            "interaction_key": str,
            "user_hash": str,
            "ts": str,
            "record": str,
        },
        pk="seq",
        not_null={"id", "file_id", "offset", "source", "type", "record"},
        foreign_keys=[("file_id", "files", "id")],
    )
    events.create_index(["id"], index_name="events_id", unique=True)
    db.execute("CREATE INDEX events_interaction ON events(interaction_key) WHERE interaction_key IS NOT NULL")
    dead_letters.create(
        {
            "id": str,
            "file_id": int,
            "offset": int,
            "length": int,
            "reason": str,
            "content": str,
            "created_at": str,
        },
        pk="id",
        not_null={"file_id", "offset", "length", "reason", "content", "created_at"},
        foreign_keys=[("file_id", "files", "id")],
    )
    dead_letters.create_index(["file_id"], index_name="dead_letters_file")


def _v2_learning(db: sqlite_utils.Database) -> None:
    db.table("scores").create(
        {
            "interaction_key": str,
            "score": float,
            "outcome": float,
            "feedback": float,
            "reusability": float,
            "complexity": float,
            "novelty": float,
            "details": str,
            "high_value": int,
            "scored_at": str,
        },
        pk="interaction_key",
        not_null={"score", "outcome", "feedback", "reusability", "complexity", "novelty", "high_value", "scored_at"},
    )
    db.table("scores").create_index(["high_value"], index_name="scores_high_value")
    db.table("extraction_queue").create(
        {
            "interaction_key": str,
            "score": float,
            "state": str,
            "attempts": int,
            "next_attempt": float,
            "last_error": str,
            "skill_id": str,
            "enqueued_at": str,
            "updated_at": str,
        },
        pk="interaction_key",
        not_null={"score", "state", "attempts", "next_attempt", "enqueued_at", "updated_at"},
        defaults={"attempts": 0, "next_attempt": 0.0},
    )
    db.table("extraction_queue").create_index(["state", "score"], index_name="extraction_queue_state")
    db.table("feedback").create(
        {"id": int, "interaction_key": str, "value": int, "correction": str, "created_at": str},
        pk="id",
        not_null={"interaction_key", "value", "created_at"},
    )
    db.table("feedback").create_index(["interaction_key"], index_name="feedback_interaction")
    db.table("pipeline_state").create({"name": str, "value": int}, pk="name", not_null={"value"})


def _v3_models(db: sqlite_utils.Database) -> None:
    db.table("model_versions").create(
        {
            "id": int,
            "created_at": str,
            "base_model": str,
            "adapter": str,
            "dataset_size": int,
            "parent": int,
            "status": str,
            "metrics": str,
            "reason": str,
            "trigger": str,
            "updated_at": str,
        },
        pk="id",
        not_null={"created_at", "base_model", "dataset_size", "status", "metrics", "trigger", "updated_at"},
        foreign_keys=[("parent", "model_versions", "id")],
    )
    db.table("model_versions").create_index(["status"], index_name="model_versions_status")


def _v4_retention(db: sqlite_utils.Database) -> None:
    # The ids of events deleted by retention or at a user's request: reading a file again (a copy, a
    # compressed rotation, `skilld ingest` of old logs) must never bring them back.
    db.execute("CREATE TABLE tombstones (id TEXT PRIMARY KEY) WITHOUT ROWID")
    # Whose interaction a score is, so that `forget` finds it after retention deleted the events.
    db.execute("ALTER TABLE scores ADD COLUMN user_hash TEXT")
    db.execute("CREATE INDEX scores_user ON scores(user_hash) WHERE user_hash IS NOT NULL")


def _v5_sessions(db: sqlite_utils.Database) -> None:
    # What an adapter remembers between the lines of one file (the turn the next line belongs to),
    # committed with the file's offset.
    db.execute("ALTER TABLE files ADD COLUMN state TEXT")
    # Events that also inform an interaction other than their own (a person's next prompt judging the
    # turn before it; one OTLP line with spans of several traces).
    db.execute(
        "CREATE TABLE event_links (event_id TEXT NOT NULL, interaction_key TEXT NOT NULL, "
        "PRIMARY KEY (event_id, interaction_key)) WITHOUT ROWID"
    )
    db.execute("CREATE INDEX event_links_interaction ON event_links(interaction_key)")


def _v6_usage(db: sqlite_utils.Database) -> None:
    # The usage ledger (storage/usage.py): every time a skill was served or rated, and how it turned out.
    db.execute(
        "CREATE TABLE skill_usage (id INTEGER PRIMARY KEY, skill_id TEXT NOT NULL, kind TEXT NOT NULL, "
        "at TEXT NOT NULL, client TEXT NOT NULL, session TEXT, prompt_hash TEXT, outcome TEXT, "
        "interaction_key TEXT, note TEXT)"
    )
    db.execute("CREATE INDEX skill_usage_skill ON skill_usage(skill_id)")
    db.execute("CREATE INDEX skill_usage_open ON skill_usage(session) WHERE outcome IS NULL AND session IS NOT NULL")


def _v7_experiments(db: sqlite_utils.Database) -> None:
    # A/B tests of extraction (storage/experiments.py): each experiment's state, and every trial of an arm.
    db.execute(
        "CREATE TABLE experiments (name TEXT PRIMARY KEY, state TEXT NOT NULL, started_at TEXT NOT NULL, "
        "stopped_at TEXT, promoted TEXT, prompt TEXT, decision TEXT)"
    )
    db.execute(
        "CREATE TABLE experiment_trials (experiment TEXT NOT NULL, interaction_key TEXT NOT NULL, arm TEXT NOT NULL, "
        "prompt TEXT NOT NULL, outcome TEXT NOT NULL, passed INTEGER NOT NULL, grounding REAL, seconds REAL, "
        "stored INTEGER NOT NULL, merged INTEGER NOT NULL, skill_id TEXT, at TEXT NOT NULL, "
        "PRIMARY KEY (experiment, interaction_key)) WITHOUT ROWID"
    )
    # When a scored interaction happened (its telemetry's time): drift windows are by it, so a first ingest
    # of months of history has a reference window at once.
    db.execute("ALTER TABLE scores ADD COLUMN started_at TEXT")
    db.execute("UPDATE scores SET started_at = scored_at")  # scored before: counted at their scoring time
    db.execute("CREATE INDEX scores_started ON scores(started_at)")
    # How long the model took on an item (the report's extraction latency, over restarts).
    db.execute("ALTER TABLE extraction_queue ADD COLUMN seconds REAL")


MIGRATIONS: list[Migration] = [
    _v1_ingestion,
    _v2_learning,
    _v3_models,
    _v4_retention,
    _v5_sessions,
    _v6_usage,
    _v7_experiments,
]


def schema_version(conn: sqlite3.Connection) -> int:
    """The schema version a database is at (SQLite's user_version)."""
    return int(conn.execute("PRAGMA user_version").fetchone()[0])


class NewerDatabase(RuntimeError):
    """The database was written by a newer skilld: this one cannot go on (one line, the process ends)."""


def migrate(conn: sqlite3.Connection, migrations: list[Migration] | None = None) -> int:
    """Apply every migration past the database's version, each in its own transaction; return the version."""
    steps = MIGRATIONS if migrations is None else migrations
    version = schema_version(conn)
    if version > len(steps):
        raise NewerDatabase(f"database schema v{version} is newer than this skilld (v{len(steps)}); upgrade skilld")
    if version == len(steps):
        return version
    import sqlite_utils

    db = sqlite_utils.Database(conn)
    for number, step in enumerate(steps[version:], start=version + 1):
        with conn:
            conn.execute("BEGIN IMMEDIATE")
            if schema_version(conn) >= number:  # another process migrated meanwhile
                continue
            step(db)
            conn.execute(f"PRAGMA user_version = {number}")
    return schema_version(conn)


def ensure_private_dir(path: Path) -> Path:
    """Create a directory readable by its owner only (and tighten it if it exists)."""
    path.mkdir(parents=True, exist_ok=True, mode=0o700)
    os.chmod(path, 0o700)
    return path


def open_read_only(path: Path) -> sqlite3.Connection:
    """A connection to the database at path that can only read, for observers beside the writer (WAL lets it)."""
    conn = sqlite3.connect(f"file:{path}?mode=ro", uri=True, check_same_thread=False)
    conn.execute("PRAGMA busy_timeout = 5000")
    return conn


def open_database(path: Path) -> sqlite3.Connection:
    """Open (creating and migrating) the database at path."""
    ensure_private_dir(path.parent)
    if not path.exists():
        os.close(os.open(path, os.O_WRONLY | os.O_CREAT, 0o600))
    conn = sqlite3.connect(path, timeout=30, isolation_level=None, check_same_thread=False)
    conn.execute("PRAGMA journal_mode = WAL")
    conn.execute("PRAGMA synchronous = NORMAL")
    conn.execute("PRAGMA busy_timeout = 30000")
    conn.execute("PRAGMA foreign_keys = ON")
    conn.execute("PRAGMA cache_size = -65536")
    # Fewer, larger checkpoints: each one fsyncs, and bulk ingest would otherwise pay one every 4 MB.
    conn.execute("PRAGMA wal_autocheckpoint = 8192")
    migrate(conn)
    return conn
