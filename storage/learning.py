"""The learning loop's durable state in SQLite: value scores, the extraction queue, feedback, cursors."""

from __future__ import annotations

import json
import sqlite3
import time
from dataclasses import dataclass
from enum import StrEnum
from typing import Any

from storage.events import now_iso


class QueueState(StrEnum):
    """Where an item of the extraction queue stands (the `state` column; the same strings in JSON)."""

    PENDING = "pending"  # to extract, highest value first
    WAITING = "waiting"  # beyond the bounded backlog: let in when a pending one ends
    DONE = "done"  # extracted (or nothing was left to extract): never queued again
    PARKED = "parked"  # failed every attempt: waits for a person
    # Ends that are decisions, not failures: never retried. The reason is kept in last_error.
    NO_SKILL = "no_skill"  # the exchange holds no reusable skill
    REJECTED = "rejected"  # no candidate passed the quality gate


# pipeline_state: the skill patterns in the library, as the pipeline last counted them (status, metrics).
SKILL_COUNT = "skills"


@dataclass(frozen=True)
class ScoreRow:
    """One interaction's value score with its five components, and when the interaction happened."""

    interaction_key: str
    score: float
    outcome: float
    feedback: float
    reusability: float
    complexity: float
    novelty: float
    at: str

    @property
    def source(self) -> str:
        """The source the interaction came from (an interaction key starts with its adapter's name)."""
        return self.interaction_key.split(":", 1)[0]


@dataclass
class QueueItem:
    interaction_key: str
    score: float
    attempts: int


class LearningStore:
    """Scores, the extraction queue (highest value first, bounded backlog), feedback and stage cursors."""

    def __init__(self, conn: sqlite3.Connection) -> None:
        self.conn = conn

    # -- cursors -------------------------------------------------------------------------------------------
    def cursor(self, name: str) -> int:
        row = self.conn.execute("SELECT value FROM pipeline_state WHERE name = ?", (name,)).fetchone()
        return int(row[0]) if row else 0

    def remember(self, name: str, value: int) -> None:
        """Keep one figure of the pipeline's state (a count, a version) in SQLite."""
        with self.conn:
            self.conn.execute("INSERT OR REPLACE INTO pipeline_state (name, value) VALUES (?, ?)", (name, value))

    def events_after(self, seq: int, limit: int) -> list[tuple[int, str | None]]:
        """(seq, interaction key) of stored events after a cursor, and of the interactions they are linked to."""
        rows = self.conn.execute(
            "SELECT seq, interaction_key FROM events WHERE seq > ? ORDER BY seq LIMIT ?", (seq, limit)
        ).fetchall()
        if not rows:
            return []
        linked = self.conn.execute(
            "SELECT e.seq, l.interaction_key FROM event_links l JOIN events e ON e.id = l.event_id "
            "WHERE e.seq > ? AND e.seq <= ? ORDER BY e.seq",
            (seq, rows[-1][0]),
        ).fetchall()
        out: list[tuple[int, str | None]] = list(rows)
        # The linked keys go before the last event, so that the last row still carries the cursor's end.
        return out[:-1] + [(r[0], r[1]) for r in linked] + out[-1:]

    # -- scores --------------------------------------------------------------------------------------------
    def save_scores(
        self,
        rows: list[tuple[str, dict[str, Any], bool]],
        cursor: tuple[str, int] | None,
        threshold: float,
        max_backlog: int,
    ) -> None:
        """Store scores, queue the high-value ones, and move the cursor, in one transaction."""
        stamp = now_iso()
        with self.conn:
            self.conn.execute("BEGIN IMMEDIATE")
            for key, score, _ in rows:
                self.conn.execute(
                    "INSERT OR REPLACE INTO scores (interaction_key, score, outcome, feedback, reusability, complexity,"
                    " novelty, details, high_value, scored_at, user_hash, started_at)"
                    " VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
                    (
                        key,
                        score["score"],
                        score["outcome"],
                        score["feedback"],
                        score["reusability"],
                        score["complexity"],
                        score["novelty"],
                        json.dumps(score["reasons"]),
                        int(score["score"] >= threshold),
                        stamp,
                        score.get("user"),
                        score.get("started_at") or stamp,
                    ),
                )
            for key, score, extractable in rows:
                if score["score"] >= threshold and extractable:
                    self._enqueue(key, score["score"], stamp, max_backlog)
                else:
                    self.conn.execute(
                        "DELETE FROM extraction_queue WHERE interaction_key = ? AND state IN (?, ?)",
                        (key, QueueState.PENDING, QueueState.WAITING),
                    )
            if cursor is not None:
                self.conn.execute("INSERT OR REPLACE INTO pipeline_state (name, value) VALUES (?, ?)", cursor)

    def _enqueue(self, key: str, score: float, stamp: str, max_backlog: int) -> None:
        row = self.conn.execute("SELECT state FROM extraction_queue WHERE interaction_key = ?", (key,)).fetchone()
        if row is not None:
            if row[0] in (QueueState.PENDING, QueueState.WAITING):
                self.conn.execute(
                    "UPDATE extraction_queue SET score = ?, updated_at = ? WHERE interaction_key = ?",
                    (score, stamp, key),
                )
            return  # done or parked: extracted once is enough; a parked one waits for a person
        pending = self.conn.execute(
            "SELECT COUNT(*) FROM extraction_queue WHERE state = ?", (QueueState.PENDING,)
        ).fetchone()[0]
        state = QueueState.PENDING
        if pending >= max_backlog:
            lowest = self.conn.execute(
                "SELECT interaction_key, score FROM extraction_queue WHERE state = ? ORDER BY score LIMIT 1",
                (QueueState.PENDING,),
            ).fetchone()
            if lowest is not None and lowest[1] < score:
                self.conn.execute(
                    "UPDATE extraction_queue SET state = ? WHERE interaction_key = ?", (QueueState.WAITING, lowest[0])
                )
            else:
                state = QueueState.WAITING
        self.conn.execute(
            "INSERT INTO extraction_queue (interaction_key, score, state, attempts, next_attempt, enqueued_at,"
            " updated_at) VALUES (?, ?, ?, 0, 0, ?, ?)",
            (key, score, state, stamp, stamp),
        )

    def score_of(self, key: str) -> dict[str, Any] | None:
        row = self.conn.execute(
            "SELECT score, outcome, feedback, reusability, complexity, novelty, details, high_value, scored_at"
            " FROM scores WHERE interaction_key = ?",
            (key,),
        ).fetchone()
        if row is None:
            return None
        names = ("score", "outcome", "feedback", "reusability", "complexity", "novelty")
        return {
            **dict(zip(names, row[:6], strict=True)),
            "reasons": json.loads(row[6]),
            "high_value": bool(row[7]),
            "scored_at": row[8],
        }

    # -- the extraction queue --------------------------------------------------------------------------------
    def next_item(self) -> QueueItem | None:
        """The highest-value pending item whose retry time has come."""
        row = self.conn.execute(
            "SELECT interaction_key, score, attempts FROM extraction_queue WHERE state = ? AND next_attempt <= ?"
            " ORDER BY score DESC, enqueued_at LIMIT 1",
            (QueueState.PENDING, time.time()),
        ).fetchone()
        return QueueItem(*row) if row else None

    def finish(
        self,
        key: str,
        skill_id: str | None,
        state: QueueState = QueueState.DONE,
        reason: str | None = None,
        seconds: float | None = None,
    ) -> None:
        """Mark an item extracted (or decided: no skill, rejected, with the reason, and how long the model took),
        and let the best waiting in."""
        with self.conn:
            self.conn.execute("BEGIN IMMEDIATE")
            self.conn.execute(
                "UPDATE extraction_queue SET state = ?, skill_id = ?, last_error = ?, updated_at = ?, seconds = ?"
                " WHERE interaction_key = ?",
                (state, skill_id, reason[:500] if reason else None, now_iso(), seconds, key),
            )
            self.conn.execute(
                "UPDATE extraction_queue SET state = ? WHERE interaction_key = (SELECT interaction_key FROM"
                " extraction_queue WHERE state = ? ORDER BY score DESC LIMIT 1)",
                (QueueState.PENDING, QueueState.WAITING),
            )

    def extract_again(self, keys: list[str], reason: str) -> None:
        """Queue interactions for a fresh extraction (their skill was retired), noting why."""
        with self.conn:
            self.conn.executemany(
                "UPDATE extraction_queue SET state = ?, attempts = 0, next_attempt = 0, skill_id = NULL,"
                " last_error = ?, updated_at = ? WHERE interaction_key = ?",
                [(QueueState.PENDING, reason[:500], now_iso(), key) for key in keys],
            )

    def fail(self, key: str, error: str, max_attempts: int, backoff: float) -> QueueState:
        """Record a failed attempt: retry later with exponential backoff, or park it; return the new state."""
        row = self.conn.execute("SELECT attempts FROM extraction_queue WHERE interaction_key = ?", (key,)).fetchone()
        attempts = (row[0] if row else 0) + 1
        state = QueueState.PARKED if attempts >= max_attempts else QueueState.PENDING
        with self.conn:
            self.conn.execute(
                "UPDATE extraction_queue SET attempts = ?, state = ?, last_error = ?, next_attempt = ?, updated_at = ?"
                " WHERE interaction_key = ?",
                (attempts, state, error[:500], time.time() + backoff * 2 ** (attempts - 1), now_iso(), key),
            )
        return state

    def parked(self) -> list[dict[str, Any]]:
        rows = self.conn.execute(
            "SELECT interaction_key, score, attempts, last_error, updated_at FROM extraction_queue WHERE state = ?",
            (QueueState.PARKED,),
        ).fetchall()
        return [
            dict(zip(("interaction_key", "score", "attempts", "error", "updated_at"), r, strict=True)) for r in rows
        ]

    def counts(self) -> dict[str, int]:
        """Scored, high-value, and queue items per state."""
        states = dict(self.conn.execute("SELECT state, COUNT(*) FROM extraction_queue GROUP BY state").fetchall())
        return {
            "scored": int(self.conn.execute("SELECT COUNT(*) FROM scores").fetchone()[0]),
            "high_value": int(self.conn.execute("SELECT COUNT(*) FROM scores WHERE high_value = 1").fetchone()[0]),
            "pending_extractions": int(states.get(QueueState.PENDING, 0)),
            "waiting_extractions": int(states.get(QueueState.WAITING, 0)),
            "parked_extractions": int(states.get(QueueState.PARKED, 0)),
            "extracted": int(states.get(QueueState.DONE, 0)),
            "no_skill": int(states.get(QueueState.NO_SKILL, 0)),
            "rejected": int(states.get(QueueState.REJECTED, 0)),
        }

    def extraction_of(self, key: str) -> dict[str, Any] | None:
        """Where an interaction stands in the extraction queue: its state, skill and the reason of a decision."""
        row = self.conn.execute(
            "SELECT state, skill_id, last_error FROM extraction_queue WHERE interaction_key = ?", (key,)
        ).fetchone()
        return {"state": row[0], "skill_id": row[1], "reason": row[2]} if row else None

    # -- feedback --------------------------------------------------------------------------------------------
    def add_feedback(self, key: str, value: int, correction: str | None) -> None:
        with self.conn:
            self.conn.execute(
                "INSERT INTO feedback (interaction_key, value, correction, created_at) VALUES (?, ?, ?, ?)",
                (key, value, correction, now_iso()),
            )

    def latest_feedback(self, key: str) -> tuple[int, str | None] | None:
        row = self.conn.execute(
            "SELECT value, correction FROM feedback WHERE interaction_key = ? ORDER BY id DESC LIMIT 1", (key,)
        ).fetchone()
        return (int(row[0]), row[1]) if row else None

    def forget_interactions(self, keys: set[str]) -> dict[str, int]:
        """Delete the scores, queue items and feedback of these interactions, in one transaction; how many."""
        marks = ",".join("?" * len(keys))
        counts: dict[str, int] = {}
        with self.conn:
            self.conn.execute("BEGIN IMMEDIATE")
            if keys:
                self.conn.execute(f"DELETE FROM experiment_trials WHERE interaction_key IN ({marks})", sorted(keys))
            for table, name in (("scores", "scores"), ("extraction_queue", "queued"), ("feedback", "feedback")):
                sql = f"DELETE FROM {table} WHERE interaction_key IN ({marks})"
                counts[name] = self.conn.execute(sql, sorted(keys)).rowcount if keys else 0
        return counts

    def interaction_of_event(self, event_id: str) -> str | None:
        row = self.conn.execute("SELECT interaction_key FROM events WHERE id = ?", (event_id,)).fetchone()
        return row[0] if row else None

    # -- insights (drift, failures, the report) ----------------------------------------------------------------
    def scores_between(self, start: str, end: str, limit: int = 100_000) -> list[ScoreRow]:
        """Scores of the interactions that happened in [start, end) (ISO times, UTC), newest first, with their
        five components (one scored before skilld kept that time counts at its scoring time)."""
        rows = self.conn.execute(
            "SELECT interaction_key, score, outcome, feedback, reusability, complexity, novelty, started_at "
            "FROM scores WHERE started_at >= ? AND started_at < ? ORDER BY started_at DESC LIMIT ?",
            (start, end, limit),
        ).fetchall()
        return [ScoreRow(*row) for row in rows]

    def extraction_seconds(self, since: str) -> list[float]:
        """How long the model took on each item that ended since a time (items it ran on only)."""
        rows = self.conn.execute(
            "SELECT seconds FROM extraction_queue WHERE updated_at >= ? AND seconds IS NOT NULL", (since,)
        )
        return [float(row[0]) for row in rows]

    def queue_outcomes_by_day(self, since: str) -> list[tuple[str, str, int]]:
        """(day, state, how many) of extraction items that ended since a time, by the day they ended."""
        return [
            (str(day), str(state), int(count))
            for day, state, count in self.conn.execute(
                "SELECT substr(updated_at, 1, 10), state, COUNT(*) FROM extraction_queue "
                "WHERE updated_at >= ? AND state NOT IN (?, ?) GROUP BY 1, 2 ORDER BY 1",
                (since, QueueState.PENDING, QueueState.WAITING),
            )
        ]

    # -- metrics ---------------------------------------------------------------------------------------------
    def score_histogram(self, bounds: tuple[float, ...]) -> tuple[list[int], int, float]:
        """Scores at or below each bound (cumulative), how many there are, and their sum.

        One aggregate query: the scores themselves never leave SQLite.
        """
        counted = ", ".join(f"COALESCE(SUM(score <= {bound}), 0)" for bound in bounds)
        *below, count, total = self.conn.execute(
            f"SELECT {counted}, COUNT(*), COALESCE(SUM(score), 0) FROM scores"
        ).fetchone()
        return [int(n) for n in below], int(count), float(total)
