"""The usage ledger in SQLite: each time a skill was served (to which client, in which session, for which
prompt) and each piece of evidence of whether it helped.

The ledger is the record; the counters a skill's payload carries (`usage_count`, `last_used`, `helped`,
`not_helped`) are recomputed from it (`totals`), so a crash between the two never counts anything twice.
A served row stays open (`outcome` NULL) until the outcome of the interaction it was served for is known;
a rating is a row with its outcome from the start. Prompts are kept as hashes only.
"""

from __future__ import annotations

import hashlib
import sqlite3
from dataclasses import dataclass
from enum import StrEnum

from storage.events import now_iso


class Outcome(StrEnum):
    HELPED = "helped"
    NOT_HELPED = "not_helped"


@dataclass(frozen=True)
class Totals:
    """A skill's counters, as the ledger holds them."""

    usage_count: int = 0
    last_used: str | None = None
    helped: int = 0
    not_helped: int = 0


@dataclass(frozen=True)
class Forgotten:
    """What forgetting did to the ledger."""

    rows: int
    changed: list[str]  # skills that remain, with fewer rows


def prompt_hash(prompt: str) -> str:
    """The hash a served prompt is kept and matched by (whitespace-insensitive)."""
    return hashlib.sha256(" ".join(prompt.split()).encode()).hexdigest()[:32]


class UsageLedger:
    """Serves and ratings of skills (the `skill_usage` table)."""

    def __init__(self, conn: sqlite3.Connection) -> None:
        self.conn = conn

    def served(self, skill_ids: list[str], client: str, session: str | None, prompt: str | None) -> str:
        """Record skills served together for one prompt; return the time recorded."""
        stamp = now_iso()
        hashed = prompt_hash(prompt) if prompt else None
        with self.conn:
            self.conn.execute("BEGIN IMMEDIATE")  # the skills of one block, together or not at all
            self.conn.executemany(
                "INSERT INTO skill_usage (skill_id, kind, at, client, session, prompt_hash) VALUES (?, ?, ?, ?, ?, ?)",
                [(skill_id, "served", stamp, client, session, hashed) for skill_id in skill_ids],
            )
        return stamp

    def rated(self, skill_id: str, outcome: Outcome, client: str, note: str | None) -> None:
        """Record explicit evidence (`rate_skill`, `skilld skills rate`, the API)."""
        with self.conn:
            self.conn.execute(
                "INSERT INTO skill_usage (skill_id, kind, at, client, outcome, note) VALUES (?, ?, ?, ?, ?, ?)",
                (skill_id, "rated", now_iso(), client, outcome, note),
            )

    def has_open(self, sessions: set[str]) -> bool:
        """Whether any of these sessions was served a skill whose outcome is not known yet (one cheap query)."""
        if not sessions:
            return False
        marks = ",".join("?" * len(sessions))
        sql = f"SELECT 1 FROM skill_usage WHERE outcome IS NULL AND session IN ({marks}) LIMIT 1"
        return self.conn.execute(sql, sorted(sessions)).fetchone() is not None

    def resolve(self, session: str, prompt: str, outcome: Outcome, interaction_key: str) -> list[str]:
        """Close the open serves of a session's prompt with the outcome of its interaction; the skills they
        served. Each serve is closed once: a later re-scoring of the same interaction finds none open."""
        with self.conn:
            rows = self.conn.execute(
                "UPDATE skill_usage SET outcome = ?, interaction_key = ? "
                "WHERE outcome IS NULL AND session = ? AND prompt_hash = ? RETURNING skill_id",
                (outcome, interaction_key, session, prompt_hash(prompt)),
            ).fetchall()
        return sorted({row[0] for row in rows})

    def totals(self, skill_id: str) -> Totals:
        """A skill's counters from its rows."""
        row = self.conn.execute(
            "SELECT COALESCE(SUM(kind = 'served'), 0), MAX(CASE WHEN kind = 'served' THEN at END), "
            "COALESCE(SUM(outcome = 'helped'), 0), COALESCE(SUM(outcome = 'not_helped'), 0) "
            "FROM skill_usage WHERE skill_id = ?",
            (skill_id,),
        ).fetchone()
        return Totals(int(row[0]), row[1], int(row[2]), int(row[3]))

    def history(self, skill_id: str, limit: int = 10) -> list[dict[str, str | None]]:
        """A skill's latest rows, newest first (for `skills show`)."""
        rows = self.conn.execute(
            "SELECT kind, at, client, session, outcome, interaction_key, note FROM skill_usage "
            "WHERE skill_id = ? ORDER BY id DESC LIMIT ?",
            (skill_id, limit),
        ).fetchall()
        names = ("kind", "at", "client", "session", "outcome", "interaction", "note")
        return [dict(zip(names, row, strict=True)) for row in rows]

    def forget(self, skill_ids: list[str], interaction_keys: set[str], sessions: set[str]) -> Forgotten:
        """Delete the rows of skills that are gone, and those of a forgotten user: the serves in their
        sessions and the evidence their interactions gave. Return how many rows went and the remaining
        skills whose counters changed."""
        gone = 0
        changed: set[str] = set()
        with self.conn:
            self.conn.execute("BEGIN IMMEDIATE")
            if skill_ids:
                marks = ",".join("?" * len(skill_ids))
                sql = f"DELETE FROM skill_usage WHERE skill_id IN ({marks})"
                gone += self.conn.execute(sql, skill_ids).rowcount
            for column, values in (("interaction_key", interaction_keys), ("session", sessions)):
                if values:
                    marks = ",".join("?" * len(values))
                    sql = f"DELETE FROM skill_usage WHERE {column} IN ({marks}) RETURNING skill_id"
                    rows = self.conn.execute(sql, sorted(values)).fetchall()
                    gone += len(rows)
                    changed.update(row[0] for row in rows)
        return Forgotten(gone, sorted(changed - set(skill_ids)))
