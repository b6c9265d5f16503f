"""Opening skilld's SQLite database: owner-only files, WAL mode, and versioned migrations at start."""

from __future__ import annotations

import os
import sqlite3
from collections.abc import Callable
from pathlib import Path

import sqlite_utils

Migration = Callable[[sqlite_utils.Database], None]


def _v1_ingestion(db: sqlite_utils.Database) -> None:
    db.executescript(
        """
        CREATE TABLE files (
            id INTEGER PRIMARY KEY,
            fingerprint TEXT NOT NULL,
            generation INTEGER NOT NULL DEFAULT 0,
            path TEXT NOT NULL,
            dev INTEGER,
            inode INTEGER,
            compressed INTEGER NOT NULL DEFAULT 0,
            stream TEXT,
            "offset" INTEGER NOT NULL DEFAULT 0,
            tail_hash TEXT,
            tail_len INTEGER NOT NULL DEFAULT 0,
            lines INTEGER NOT NULL DEFAULT 0,
            first_seen TEXT NOT NULL,
            updated_at TEXT NOT NULL
        );
        CREATE INDEX files_fingerprint ON files(fingerprint, generation);
        CREATE INDEX files_inode ON files(dev, inode);
        CREATE TABLE events (
            seq INTEGER PRIMARY KEY,
            id TEXT NOT NULL UNIQUE,
            file_id INTEGER NOT NULL REFERENCES files(id),
            "offset" INTEGER NOT NULL,
            source TEXT NOT NULL,
            type TEXT NOT NULL,
            interaction_key TEXT,
            user_hash TEXT,
            ts TEXT,
            record TEXT NOT NULL
        );
        CREATE INDEX events_interaction ON events(interaction_key) WHERE interaction_key IS NOT NULL;
        CREATE INDEX events_source_type ON events(source, type);
        CREATE INDEX events_file ON events(file_id);
        CREATE TABLE dead_letters (
            id TEXT PRIMARY KEY,
            file_id INTEGER NOT NULL REFERENCES files(id),
            "offset" INTEGER NOT NULL,
            length INTEGER NOT NULL,
            reason TEXT NOT NULL,
            content TEXT NOT NULL,
            created_at TEXT NOT NULL
        );
        CREATE INDEX dead_letters_file ON dead_letters(file_id);
        """
    )


MIGRATIONS: list[Migration] = [_v1_ingestion]


def schema_version(db: sqlite_utils.Database) -> int:
    """The schema version a database is at (SQLite's user_version)."""
    return int(db.execute("PRAGMA user_version").fetchone()[0])


def migrate(db: sqlite_utils.Database, migrations: list[Migration] | None = None) -> int:
    """Apply every migration past the database's version, each in its own transaction; return the version."""
    steps = MIGRATIONS if migrations is None else migrations
    version = schema_version(db)
    if version > len(steps):
        raise RuntimeError(f"database schema v{version} is newer than this skilld (v{len(steps)}); upgrade skilld")
    for number, step in enumerate(steps[version:], start=version + 1):
        with db.conn:
            db.execute("BEGIN IMMEDIATE")
            if schema_version(db) >= number:  # another process migrated meanwhile
                continue
            step(db)
            db.execute(f"PRAGMA user_version = {number}")
    return schema_version(db)


def ensure_private_dir(path: Path) -> Path:
    """Create a directory readable by its owner only (and tighten it if it exists)."""
    path.mkdir(parents=True, exist_ok=True, mode=0o700)
    os.chmod(path, 0o700)
    return path


def open_database(path: Path) -> sqlite_utils.Database:
    """Open (creating and migrating) the database at path."""
    ensure_private_dir(path.parent)
    if not path.exists():
        os.close(os.open(path, os.O_WRONLY | os.O_CREAT, 0o600))
    conn = sqlite3.connect(path, timeout=30, isolation_level=None, check_same_thread=False)
    db = sqlite_utils.Database(conn)
    db.execute("PRAGMA journal_mode = WAL")
    db.execute("PRAGMA synchronous = NORMAL")
    db.execute("PRAGMA busy_timeout = 30000")
    db.execute("PRAGMA foreign_keys = ON")
    db.execute("PRAGMA cache_size = -65536")
    migrate(db)
    return db
