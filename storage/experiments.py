"""A/B tests of extraction in SQLite: which experiment runs, and every trial of its arms.

A trial is one interaction extracted under an arm: whether the model's proposal passed the quality gate
(`passed`), its grounding, whether the model said there is no skill (`outcome` "no_skill"), how long the
model took, and whether a skill was stored and merged into an existing one. One experiment runs at a time.
"""

from __future__ import annotations

import sqlite3
from dataclasses import dataclass
from typing import Any

from storage.events import now_iso


@dataclass(frozen=True)
class Trial:
    experiment: str
    interaction_key: str
    arm: str
    prompt: str
    outcome: str  # "proposed" (a skill), "no_skill" (the model said none), "failed" (invalid or a backend error)
    passed: bool  # the model's proposal passed the quality gate
    grounding: float | None
    seconds: float | None
    stored: bool  # a skill was kept for this interaction (the proposal, or the grounded draft)
    merged: bool
    skill_id: str | None


class ExperimentStore:
    """The `experiments` and `experiment_trials` tables."""

    def __init__(self, conn: sqlite3.Connection) -> None:
        self.conn = conn

    def running(self) -> str | None:
        row = self.conn.execute("SELECT name FROM experiments WHERE state = 'running'").fetchone()
        return str(row[0]) if row else None

    def state(self, name: str) -> dict[str, Any] | None:
        row = self.conn.execute(
            "SELECT state, started_at, stopped_at, promoted, prompt, decision FROM experiments WHERE name = ?", (name,)
        ).fetchone()
        keys = ("state", "started_at", "stopped_at", "promoted", "prompt", "decision")
        return dict(zip(keys, row, strict=True)) if row else None

    def start(self, name: str) -> None:
        """Run an experiment, afresh (a run started again forgets its earlier trials and decision: the
        decision is made once per run); any other running one is stopped."""
        stamp = now_iso()
        with self.conn:
            self.conn.execute("BEGIN IMMEDIATE")
            self.conn.execute(
                "UPDATE experiments SET state = 'stopped', stopped_at = ? WHERE state = 'running' AND name != ?",
                (stamp, name),
            )
            self.conn.execute("DELETE FROM experiment_trials WHERE experiment = ?", (name,))
            self.conn.execute(
                "INSERT INTO experiments (name, state, started_at) VALUES (?, 'running', ?) "
                "ON CONFLICT(name) DO UPDATE SET state = 'running', started_at = excluded.started_at, "
                "stopped_at = NULL, promoted = NULL, prompt = NULL, decision = NULL",
                (name, stamp),
            )

    def stop(self, name: str, promoted: str | None = None, prompt: str | None = None, decision: str = "") -> bool:
        """End an experiment, with the arm it promoted if any; False if it does not run."""
        with self.conn:
            changed = self.conn.execute(
                "UPDATE experiments SET state = ?, stopped_at = ?, promoted = ?, prompt = ?, decision = ? "
                "WHERE name = ? AND state = 'running'",
                ("promoted" if promoted else "stopped", now_iso(), promoted, prompt, decision, name),
            ).rowcount
        return changed > 0

    def promoted_prompt(self) -> str | None:
        """The prompt version of the latest promoted arm: what extraction uses outside an experiment."""
        row = self.conn.execute(
            "SELECT prompt FROM experiments WHERE state = 'promoted' ORDER BY stopped_at DESC LIMIT 1"
        ).fetchone()
        return str(row[0]) if row and row[0] else None

    def record(self, trial: Trial) -> None:
        """Keep a trial (once per interaction and experiment: an extraction retried replaces its trial)."""
        with self.conn:
            self.conn.execute(
                "INSERT OR REPLACE INTO experiment_trials (experiment, interaction_key, arm, prompt, outcome, passed, "
                "grounding, seconds, stored, merged, skill_id, at) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
                (
                    trial.experiment,
                    trial.interaction_key,
                    trial.arm,
                    trial.prompt,
                    trial.outcome,
                    int(trial.passed),
                    trial.grounding,
                    trial.seconds,
                    int(trial.stored),
                    int(trial.merged),
                    trial.skill_id,
                    now_iso(),
                ),
            )

    def trials(self, name: str) -> list[Trial]:
        rows = self.conn.execute(
            "SELECT experiment, interaction_key, arm, prompt, outcome, passed, grounding, seconds, stored, merged, "
            "skill_id FROM experiment_trials WHERE experiment = ? ORDER BY at",
            (name,),
        ).fetchall()
        return [
            Trial(r[0], r[1], r[2], r[3], r[4], bool(r[5]), r[6], r[7], bool(r[8]), bool(r[9]), r[10]) for r in rows
        ]
