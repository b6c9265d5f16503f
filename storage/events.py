"""The SQLite event store: telemetry files and their committed offsets, events, and dead letters."""

from __future__ import annotations

import sqlite3
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, NamedTuple, TypeVar

from storage.db import open_database, schema_version


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
    state: str | None = None


@dataclass
class Progress:
    """How far one file was read in a batch: the new offset, the bytes just before it, the adapter's state."""

    offset: int
    tail_hash: str
    tail_len: int
    lines: int = 0
    state: str | None = None


class EventRow(NamedTuple):
    """One stored event, in the column order of the events table."""

    id: str
    file_id: int
    offset: int
    source: str
    type: str
    interaction_key: str | None
    user_hash: str | None
    ts: str | None
    record: str


class DeadLetterRow(NamedTuple):
    """One dead letter: where the line was, why it could not be read, and its redacted beginning."""

    id: str
    file_id: int
    offset: int
    length: int
    reason: str
    content: str


class LinkRow(NamedTuple):
    """An event that also informs an interaction other than its own (a person's next prompt judging a turn)."""

    event_id: str
    interaction_key: str


class StreamFiles(NamedTuple):
    """The files of one stream (None: not identified yet) and how much of them was read."""

    stream: str | None
    files: int
    bytes_read: int
    lines: int


class StreamEventType(NamedTuple):
    """How many events of one type one stream's files produced."""

    stream: str | None
    type: str
    events: int


Row = TypeVar("Row", EventRow, DeadLetterRow)


@dataclass
class Batch:
    """Everything one transaction commits: events, dead letters, links, and the offsets they came from."""

    events: list[EventRow] = field(default_factory=list)
    dead_letters: list[DeadLetterRow] = field(default_factory=list)
    links: list[LinkRow] = field(default_factory=list)
    progress: dict[int, Progress] = field(default_factory=dict)
    lines: int = 0

    def __len__(self) -> int:
        return self.lines


# Event ids are stable, so a line stored before (a copy, a re-read after a crash) is ignored, not doubled.
_INSERT_EVENT = (
    'INSERT OR IGNORE INTO events (id, file_id, "offset", source, type, interaction_key, user_hash, ts, record) '
    "VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)"
)
_INSERT_LINK = "INSERT OR IGNORE INTO event_links (event_id, interaction_key) VALUES (?, ?)"
_FILE_COLUMNS = (
    'id, fingerprint, generation, path, dev, inode, compressed, stream, "offset", tail_hash, tail_len, lines, state'
)


class EventStore:
    """Events and dead letters, committed together with the file offsets that produced them."""

    def __init__(self, conn: sqlite3.Connection) -> None:
        self.conn = conn
        self._tombstones: bool | None = None  # whether any event was deleted for good

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
        return [
            FileRow(r[0], r[1], r[2], r[3], r[4], r[5], bool(r[6]), r[7], r[8], r[9], r[10], r[11], r[12]) for r in rows
        ]

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
        state: str | None = None,
    ) -> FileRow:
        """Register a physical file; a row that held the same inode before lets go of it."""
        stamp = now_iso()
        with self.conn:
            self.conn.execute("BEGIN IMMEDIATE")
            if dev is not None and inode is not None:
                self.conn.execute("UPDATE files SET dev = NULL, inode = NULL WHERE dev = ? AND inode = ?", (dev, inode))
            cursor = self.conn.execute(
                'INSERT INTO files (fingerprint, generation, path, dev, inode, compressed, stream, "offset", '
                "tail_hash, tail_len, state, first_seen, updated_at) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
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
                    state,
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
        with self.conn:
            self.conn.execute("BEGIN IMMEDIATE")
            events, dead_letters = self._alive(batch.events), self._alive(batch.dead_letters)
            before = self.conn.total_changes
            self.conn.executemany(_INSERT_EVENT, events)
            added = self.conn.total_changes - before
            if batch.links:
                alive = {row.id for row in events}
                self.conn.executemany(_INSERT_LINK, [link for link in batch.links if link.event_id in alive])
            if dead_letters:
                self.conn.executemany(
                    'INSERT OR IGNORE INTO dead_letters (id, file_id, "offset", length, reason, content, created_at) '
                    "VALUES (?, ?, ?, ?, ?, ?, ?)",
                    [(*row, stamp) for row in dead_letters],
                )
            self.conn.executemany(
                'UPDATE files SET "offset" = ?, tail_hash = ?, tail_len = ?, lines = lines + ?, state = ?, '
                "updated_at = ? WHERE id = ?",
                [
                    (p.offset, p.tail_hash, p.tail_len, p.lines, p.state, stamp, fid)
                    for fid, p in batch.progress.items()
                ],
            )
        return added

    # -- what must not come back ---------------------------------------------------------------------------
    def _alive(self, rows: list[Row]) -> list[Row]:
        """Rows (id first) whose event was not deleted for good by retention or `forget`."""
        if self._tombstones is None:
            self._tombstones = self.conn.execute("SELECT 1 FROM tombstones LIMIT 1").fetchone() is not None
        if not self._tombstones or not rows:
            return rows
        gone: set[str] = set()
        ids = [row.id for row in rows]
        for start in range(0, len(ids), 500):
            chunk = ids[start : start + 500]
            marks = ",".join("?" * len(chunk))
            gone.update(r[0] for r in self.conn.execute(f"SELECT id FROM tombstones WHERE id IN ({marks})", chunk))
        return [row for row in rows if row.id not in gone] if gone else rows

    def bury(self, table: str, ids: list[str], chunk: int = 5000) -> int:
        """Delete rows of `events` or `dead_letters` for good, keeping their ids as tombstones only.

        Each chunk is its own transaction, so no write stays open long.
        """
        assert table in ("events", "dead_letters")
        deleted = 0
        for start in range(0, len(ids), chunk):
            part = ids[start : start + chunk]
            marks = ",".join("?" * len(part))
            with self.conn:
                self.conn.execute("BEGIN IMMEDIATE")
                keys = []
                if table == "events":
                    keys = self.conn.execute(
                        f"SELECT DISTINCT interaction_key FROM events WHERE id IN ({marks}) "
                        "AND interaction_key IS NOT NULL",
                        part,
                    ).fetchall()
                self.conn.executemany("INSERT OR IGNORE INTO tombstones (id) VALUES (?)", [(i,) for i in part])
                deleted += self.conn.execute(f"DELETE FROM {table} WHERE id IN ({marks})", part).rowcount
                if table == "events":
                    self.conn.execute(f"DELETE FROM event_links WHERE event_id IN ({marks})", part)
                    # A later event's link to an interaction now gone would leave a ghost of it behind.
                    self.conn.executemany(
                        "DELETE FROM event_links WHERE interaction_key = ? AND NOT EXISTS "
                        "(SELECT 1 FROM events WHERE interaction_key = ?)",
                        [(k, k) for (k,) in keys],
                    )
            self._tombstones = True
        return deleted

    def expirable(self, cutoff: str, scored_seq: int) -> tuple[list[str], list[str]]:
        """Ids of the events and dead letters retention may delete now.

        An interaction goes whole, once its newest event is older than the cutoff, it has been scored, and
        it is not waiting for extraction. An event's time is its own timestamp, else when its file was
        first seen. Dead letters go by when they were stored.
        """
        events = [
            row[0]
            for row in self.conn.execute(
                "WITH stamped AS (SELECT e.seq, e.id, e.interaction_key, COALESCE(e.ts, f.first_seen) AS t "
                "FROM events e JOIN files f ON f.id = e.file_id), "
                "old AS (SELECT interaction_key FROM stamped WHERE interaction_key IS NOT NULL "
                "GROUP BY interaction_key HAVING MAX(t) < :cutoff AND MAX(seq) <= :scored "
                "EXCEPT SELECT interaction_key FROM extraction_queue WHERE state IN ('pending', 'waiting')) "
                "SELECT id FROM stamped WHERE interaction_key IN old "
                "OR (interaction_key IS NULL AND t < :cutoff AND seq <= :scored)",
                {"cutoff": cutoff, "scored": scored_seq},
            )
        ]
        dead = [r[0] for r in self.conn.execute("SELECT id FROM dead_letters WHERE created_at < ?", (cutoff,))]
        return events, dead

    def events_of(self, interaction_key: str) -> list[tuple[str, str, str, str]]:
        """(id, source, file hint, record) of every event of one interaction, in the order they were stored."""
        return self.conn.execute(
            "SELECT e.id, e.source, f.path, e.record FROM events e JOIN files f ON f.id = e.file_id "
            "WHERE e.interaction_key = ? ORDER BY e.seq",
            (interaction_key,),
        ).fetchall()

    def evidence_of(self, interaction_key: str) -> list[tuple[str, str, str, str, bool]]:
        """Every event of one interaction and every event linked to it, in stored order.

        Rows are (id, source, file hint, record, own): own is False for an event that only informs the
        interaction (a person's next prompt judging it).
        """
        return [
            (r[0], r[1], r[2], r[3], bool(r[4]))
            for r in self.conn.execute(
                "SELECT e.id, e.source, f.path, e.record, 1, e.seq FROM events e JOIN files f ON f.id = e.file_id "
                "WHERE e.interaction_key = :key "
                "UNION ALL SELECT e.id, e.source, f.path, e.record, 0, e.seq FROM event_links l "
                "JOIN events e ON e.id = l.event_id JOIN files f ON f.id = e.file_id "
                "WHERE l.interaction_key = :key AND e.interaction_key IS NOT :key ORDER BY 6",
                {"key": interaction_key},
            )
        ]

    def acceptance_counts(self, types: tuple[str, ...]) -> list[tuple[str, str | None, str | None, int, int]]:
        """(event type, model, file path, shown, accepted) of the acceptance signals of some event types."""
        marks = ",".join("?" * len(types))
        return [
            (r[0], r[1], r[2], int(r[3]), int(r[4] or 0))
            for r in self.conn.execute(
                "SELECT type, COALESCE(json_extract(record, '$.modelName'), json_extract(record, '$.modelTitle'), "
                "json_extract(record, '$.model'), json_extract(record, '$.completionOptions.model')) AS model, "
                "json_extract(record, '$.filepath') AS path, COUNT(*), "
                "SUM(json_extract(record, '$.accepted') IN (1, 'true')) "
                f"FROM events WHERE type IN ({marks}) GROUP BY 1, 2, 3",
                types,
            )
        ]

    def recent_interactions(self, source: str | None, limit: int) -> list[str]:
        """Interaction keys, the most recently added to first, optionally of one source.

        An interaction only linked to (the second trace of an OTLP line) counts too.
        """
        where = " AND e.source = :source" if source else ""
        return [
            row[0]
            for row in self.conn.execute(
                "SELECT key FROM (SELECT e.interaction_key AS key, e.seq AS seq FROM events e "
                f"WHERE e.interaction_key IS NOT NULL{where} "
                "UNION ALL SELECT l.interaction_key, e.seq FROM event_links l JOIN events e ON e.id = l.event_id "
                f"WHERE 1{where}) GROUP BY key ORDER BY MAX(seq) DESC LIMIT :limit",
                {"source": source, "limit": limit},
            )
        ]

    # -- one user's data (`skilld forget`) -------------------------------------------------------------------
    def interactions_of_user(self, user_hash: str) -> set[str]:
        """Interactions with an event, or a score, of this (hashed) user."""
        return {
            row[0]
            for row in self.conn.execute(
                "SELECT interaction_key FROM events WHERE user_hash = ? AND interaction_key IS NOT NULL "
                "UNION SELECT interaction_key FROM scores WHERE user_hash = ?",
                (user_hash, user_hash),
            )
        }

    def events_of_user(self, user_hash: str) -> list[str]:
        """Ids of the events this (hashed) user wrote."""
        return [row[0] for row in self.conn.execute("SELECT id FROM events WHERE user_hash = ?", (user_hash,))]

    def dead_letters_containing(self, needle: str) -> list[str]:
        """Ids of the dead letters whose kept content holds this text."""
        rows = self.conn.execute("SELECT id FROM dead_letters WHERE instr(content, ?) > 0", (needle,))
        return [row[0] for row in rows]

    def find_continue_chat(self, key_prefix: str, session_id: str, prompt: str) -> str | None:
        """The interaction key (starting with the adapter's chat prefix) of the latest Continue chat with this
        session id and prompt (both as stored)."""
        row = self.conn.execute(
            "SELECT interaction_key FROM events WHERE source = 'continue' AND substr(interaction_key, 1, ?) = ? "
            "AND json_extract(record, '$.sessionId') = ? AND json_extract(record, '$.prompt') = ? "
            "ORDER BY seq DESC LIMIT 1",
            (len(key_prefix), key_prefix, session_id, prompt),
        ).fetchone()
        return None if row is None else str(row[0])

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

    def resolve_dead_letter(
        self, dead_letter_id: str, events: list[EventRow], links: list[LinkRow] | None = None
    ) -> None:
        """Replace a dead letter by the event it now reads as (or delete it when events is empty)."""
        with self.conn:
            self.conn.execute("BEGIN IMMEDIATE")
            alive = self._alive(events)
            self.conn.executemany(_INSERT_EVENT, alive)
            if links and alive:
                self.conn.executemany(_INSERT_LINK, links)
            self.conn.execute("DELETE FROM dead_letters WHERE id = ?", (dead_letter_id,))

    def update_dead_letter(self, dead_letter_id: str, reason: str) -> None:
        """Record the reason a replayed dead letter still fails."""
        with self.conn:
            self.conn.execute("UPDATE dead_letters SET reason = ? WHERE id = ?", (reason, dead_letter_id))

    # -- counts ------------------------------------------------------------------------------------------
    def schema_version(self) -> int:
        """The schema version the database is at."""
        return schema_version(self.conn)

    def count_events(self) -> int:
        """Events stored."""
        return self._count("SELECT COUNT(*) FROM events")

    def count_interactions(self) -> int:
        """Interactions the stored events belong to."""
        return self._count("SELECT COUNT(DISTINCT interaction_key) FROM events WHERE interaction_key IS NOT NULL")

    def count_dead_letters(self) -> int:
        """Dead letters stored."""
        return self._count("SELECT COUNT(*) FROM dead_letters")

    def _count(self, sql: str) -> int:
        return int(self.conn.execute(sql).fetchone()[0] or 0)

    def source_file_stats(self) -> list[StreamFiles]:
        """Per stream: its files, the bytes read of them and the lines read."""
        return [
            StreamFiles(r[0], r[1], r[2] or 0, r[3] or 0)
            for r in self.conn.execute(
                'SELECT f.stream, COUNT(*), SUM(f."offset"), SUM(f.lines) FROM files f GROUP BY f.stream'
            )
        ]

    def dead_letters_by_stream(self) -> dict[str | None, int]:
        """Dead letters per stream of the file they came from."""
        return dict(
            self.conn.execute(
                "SELECT f.stream, COUNT(*) FROM dead_letters d JOIN files f ON f.id = d.file_id GROUP BY f.stream"
            ).fetchall()
        )

    def event_types_by_stream(self) -> list[StreamEventType]:
        """Events per stream of the file they came from and per event type."""
        return [
            StreamEventType(*r)
            for r in self.conn.execute(
                "SELECT f.stream, e.type, COUNT(*) FROM events e JOIN files f ON f.id = e.file_id "
                "GROUP BY f.stream, e.type"
            )
        ]

    # -- upkeep ------------------------------------------------------------------------------------------
    def database_bytes(self) -> int:
        """The size of the database file's pages."""
        pages = int(self.conn.execute("PRAGMA page_count").fetchone()[0])
        return pages * int(self.conn.execute("PRAGMA page_size").fetchone()[0])

    def vacuum(self) -> None:
        """Give deleted pages back to the filesystem, empty the WAL and refresh the query planner's statistics."""
        self.conn.execute("VACUUM")
        self.conn.execute("PRAGMA wal_checkpoint(TRUNCATE)")
        self.conn.execute("PRAGMA optimize")
