"""The SQLite event store: telemetry files and their committed offsets, events, and dead letters."""

from __future__ import annotations

import sqlite3
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from storage.db import open_database


def now_iso() -> str:
    """The current time as an ISO string in UTC."""
    return datetime.now(UTC).isoformat(timespec="milliseconds")


@dataclass
class FileRow:
    """One physical telemetry file skilld reads, with the identity its events are keyed by."""

    id: int
    fingerprint: str
    generation: int
    path: str
    dev: int | None
    inode: int | None
    compressed: bool
    stream: str | None
    offset: int
    tail_hash: str | None
    tail_len: int
    lines: int


@dataclass
class Progress:
    """How far one file was read in a batch: the new offset and the bytes just before it."""

    offset: int
    tail_hash: str
    tail_len: int
    lines: int = 0


@dataclass
class Batch:
    """Everything one transaction commits: events, dead letters, and the offsets they came from."""

    events: list[tuple[Any, ...]] = field(default_factory=list)
    dead_letters: list[tuple[Any, ...]] = field(default_factory=list)
    progress: dict[int, Progress] = field(default_factory=dict)
    lines: int = 0

    def __len__(self) -> int:
        return self.lines


# Event ids are stable, so a line stored before (a copy, a re-read after a crash) is ignored, not doubled.
_INSERT_EVENT = (
    'INSERT OR IGNORE INTO events (id, file_id, "offset", source, type, interaction_key, user_hash, ts, record) '
    "VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)"
)
# An event id starts with its file identity: 12 hex digits of the fingerprint and 4 of the generation.
FILE_KEY_LENGTH = 16
_FILE_COLUMNS = (
    'id, fingerprint, generation, path, dev, inode, compressed, stream, "offset", tail_hash, tail_len, lines'
)


class EventStore:
    """Events and dead letters, committed together with the file offsets that produced them."""

    def __init__(self, conn: sqlite3.Connection) -> None:
        self.conn = conn
        self._floors: dict[str, int] | None = None  # file key -> offset below which events expired
        self._forgotten: bool | None = None

    @classmethod
    def open(cls, home: Path) -> EventStore:
        """Open the store under a skilld home."""
        return cls(open_database(home / "skilld.db"))

    def close(self) -> None:
        """Close the database connection."""
        self.conn.close()

    # -- files -------------------------------------------------------------------------------------------
    def _files(self, where: str, params: tuple[Any, ...]) -> list[FileRow]:
        rows = self.conn.execute(f"SELECT {_FILE_COLUMNS} FROM files WHERE {where} ORDER BY id", params).fetchall()
        return [FileRow(r[0], r[1], r[2], r[3], r[4], r[5], bool(r[6]), r[7], r[8], r[9], r[10], r[11]) for r in rows]

    def file_by_inode(self, dev: int, inode: int) -> FileRow | None:
        """The file row last seen at this device and inode."""
        rows = self._files("dev = ? AND inode = ?", (dev, inode))
        return rows[-1] if rows else None

    def files_by_fingerprint(self, fingerprint: str) -> list[FileRow]:
        """Every file row whose content starts with the same first line."""
        return self._files("fingerprint = ?", (fingerprint,))

    def file(self, file_id: int) -> FileRow | None:
        """One file row."""
        rows = self._files("id = ?", (file_id,))
        return rows[0] if rows else None

    def all_files(self) -> list[FileRow]:
        """Every file row."""
        return self._files("1", ())

    def add_file(
        self,
        fingerprint: str,
        generation: int,
        path: str,
        dev: int | None,
        inode: int | None,
        compressed: bool,
        stream: str | None,
        offset: int = 0,
        tail_hash: str | None = None,
        tail_len: int = 0,
    ) -> FileRow:
        """Register a physical file; a row that held the same inode before lets go of it."""
        stamp = now_iso()
        with self.conn:
            self.conn.execute("BEGIN IMMEDIATE")
            if dev is not None and inode is not None:
                self.conn.execute("UPDATE files SET dev = NULL, inode = NULL WHERE dev = ? AND inode = ?", (dev, inode))
            cursor = self.conn.execute(
                'INSERT INTO files (fingerprint, generation, path, dev, inode, compressed, stream, "offset", '
                "tail_hash, tail_len, first_seen, updated_at) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
                (
                    fingerprint,
                    generation,
                    path,
                    dev,
                    inode,
                    int(compressed),
                    stream,
                    offset,
                    tail_hash,
                    tail_len,
                    stamp,
                    stamp,
                ),
            )
        file_id = cursor.lastrowid
        assert file_id is not None
        row = self.file(file_id)
        assert row is not None
        return row

    def move_file(self, file_id: int, path: str) -> None:
        """Record that a file is now found under another name (a rotation by rename)."""
        with self.conn:
            self.conn.execute("UPDATE files SET path = ?, updated_at = ? WHERE id = ?", (path, now_iso(), file_id))

    def set_stream(self, file_id: int, stream: str) -> None:
        """Record which stream a file of unknown name turned out to hold."""
        with self.conn:
            self.conn.execute("UPDATE files SET stream = ? WHERE id = ? AND stream IS NULL", (stream, file_id))

    def max_generation(self, fingerprint: str) -> int:
        """The highest generation of a fingerprint, -1 if none."""
        row = self.conn.execute("SELECT MAX(generation) FROM files WHERE fingerprint = ?", (fingerprint,)).fetchone()
        return -1 if row[0] is None else int(row[0])

    # -- the hot path -------------------------------------------------------------------------------------
    def commit(self, batch: Batch) -> int:
        """Commit a batch atomically; return how many events were new."""
        stamp = now_iso()
        events, dead_letters = self._not_expired(batch.events), self._not_expired(batch.dead_letters)
        with self.conn:
            self.conn.execute("BEGIN IMMEDIATE")
            events = self._not_forgotten(events)
            before = self.conn.total_changes
            self.conn.executemany(_INSERT_EVENT, events)
            added = self.conn.total_changes - before
            if dead_letters:
                self.conn.executemany(
                    'INSERT OR IGNORE INTO dead_letters (id, file_id, "offset", length, reason, content, created_at) '
                    "VALUES (?, ?, ?, ?, ?, ?, ?)",
                    [(*row, stamp) for row in dead_letters],
                )
            self.conn.executemany(
                'UPDATE files SET "offset" = ?, tail_hash = ?, tail_len = ?, lines = lines + ?, updated_at = ? '
                "WHERE id = ?",
                [(p.offset, p.tail_hash, p.tail_len, p.lines, stamp, fid) for fid, p in batch.progress.items()],
            )
        return added

    # -- what must not come back ---------------------------------------------------------------------------
    def _not_expired(self, rows: list[tuple[Any, ...]]) -> list[tuple[Any, ...]]:
        """Rows (id first, offset third) that retention has not deleted before."""
        if self._floors is None:
            self._floors = dict(self.conn.execute('SELECT file_key, "offset" FROM expired').fetchall())
        if not self._floors or not rows:
            return rows
        floors = self._floors
        return [row for row in rows if row[2] >= floors.get(row[0][:FILE_KEY_LENGTH], 0)]

    def _not_forgotten(self, rows: list[tuple[Any, ...]]) -> list[tuple[Any, ...]]:
        """Rows whose event was not forgotten at a user's request."""
        if self._forgotten is None:
            self._forgotten = self.conn.execute("SELECT 1 FROM forgotten LIMIT 1").fetchone() is not None
        if not self._forgotten or not rows:
            return rows
        gone: set[str] = set()
        ids = [row[0] for row in rows]
        for start in range(0, len(ids), 500):
            chunk = ids[start : start + 500]
            marks = ",".join("?" * len(chunk))
            gone.update(r[0] for r in self.conn.execute(f"SELECT id FROM forgotten WHERE id IN ({marks})", chunk))
        return [row for row in rows if row[0] not in gone] if gone else rows

    def expire(self, cutoff: str) -> dict[str, int]:
        """Delete events stamped before `cutoff` (ISO UTC) and dead letters stored before it.

        Each file identity remembers the offset below which its events expired, so a re-read skips them.
        """
        stamp = now_iso()
        with self.conn:
            self.conn.execute("BEGIN IMMEDIATE")
            self.conn.execute(
                'INSERT INTO expired (file_key, "offset", updated_at) '
                f'SELECT substr(id, 1, {FILE_KEY_LENGTH}), MAX("offset") + 1, ? FROM events '
                "WHERE ts IS NOT NULL AND ts < ? GROUP BY 1 "
                'ON CONFLICT (file_key) DO UPDATE SET "offset" = MAX("offset", excluded."offset"), '
                "updated_at = excluded.updated_at",
                (stamp, cutoff),
            )
            events = self.conn.execute("DELETE FROM events WHERE ts IS NOT NULL AND ts < ?", (cutoff,)).rowcount
            self.conn.execute(
                'INSERT INTO expired (file_key, "offset", updated_at) '
                f'SELECT substr(id, 1, {FILE_KEY_LENGTH}), MAX("offset") + 1, ? FROM dead_letters '
                "WHERE created_at < ? GROUP BY 1 "
                'ON CONFLICT (file_key) DO UPDATE SET "offset" = MAX("offset", excluded."offset"), '
                "updated_at = excluded.updated_at",
                (stamp, cutoff),
            )
            dead = self.conn.execute("DELETE FROM dead_letters WHERE created_at < ?", (cutoff,)).rowcount
        self._floors = None
        return {"events": events, "dead_letters": dead}

    def forget_events(self, ids: list[str]) -> int:
        """Delete events for good: their ids are kept (nothing else) so a re-read skips them."""
        with self.conn:
            self.conn.execute("BEGIN IMMEDIATE")
            self.conn.executemany("INSERT OR IGNORE INTO forgotten (id) VALUES (?)", [(i,) for i in ids])
            deleted = 0
            for start in range(0, len(ids), 500):
                chunk = ids[start : start + 500]
                marks = ",".join("?" * len(chunk))
                deleted += self.conn.execute(f"DELETE FROM events WHERE id IN ({marks})", chunk).rowcount
        self._forgotten = None
        return deleted

    def events_of(self, interaction_key: str) -> list[tuple[str, str, str, str]]:
        """(id, source, file hint, record) of every event of one interaction, in the order they were stored."""
        return self.conn.execute(
            "SELECT e.id, e.source, f.path, e.record FROM events e JOIN files f ON f.id = e.file_id "
            "WHERE e.interaction_key = ? ORDER BY e.seq",
            (interaction_key,),
        ).fetchall()

    # -- dead letters ------------------------------------------------------------------------------------
    def dead_letters(self, limit: int | None = None) -> list[dict[str, Any]]:
        """Dead letters, oldest first, with the file they came from."""
        sql = (
            'SELECT d.id, d.file_id, f.path, d."offset", d.length, d.reason, d.content, d.created_at '
            'FROM dead_letters d JOIN files f ON f.id = d.file_id ORDER BY d.created_at, d.file_id, d."offset"'
        )
        if limit is not None:
            sql += f" LIMIT {int(limit)}"
        keys = ("id", "file_id", "path", "offset", "length", "reason", "content", "created_at")
        return [dict(zip(keys, row, strict=True)) for row in self.conn.execute(sql).fetchall()]

    def resolve_dead_letter(self, dead_letter_id: str, events: list[tuple[Any, ...]]) -> None:
        """Replace a dead letter by the event it now reads as (or delete it when events is empty)."""
        with self.conn:
            self.conn.execute("BEGIN IMMEDIATE")
            self.conn.executemany(_INSERT_EVENT, self._not_forgotten(events))
            self.conn.execute("DELETE FROM dead_letters WHERE id = ?", (dead_letter_id,))

    def update_dead_letter(self, dead_letter_id: str, reason: str) -> None:
        """Record the reason a replayed dead letter still fails."""
        with self.conn:
            self.conn.execute("UPDATE dead_letters SET reason = ? WHERE id = ?", (reason, dead_letter_id))

    # -- counts ------------------------------------------------------------------------------------------
    def scalar(self, sql: str, params: tuple[Any, ...] = ()) -> int:
        """One integer from a query."""
        row = self.conn.execute(sql, params).fetchone()
        return int(row[0] or 0)

    def grouped(self, sql: str) -> list[tuple[Any, ...]]:
        """Rows of a grouping query."""
        return list(self.conn.execute(sql).fetchall())
