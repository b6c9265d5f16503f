"""The model registry: every fine-tuned version with its dataset size, metrics, parent and status."""

from __future__ import annotations

import json
import sqlite3
from enum import StrEnum
from typing import Any

from storage.events import now_iso


class ModelStatus(StrEnum):
    """Where a fine-tuned version stands (the `status` column; the same strings in JSON)."""

    TRAINING = "training"  # its run is training
    CANDIDATE = "candidate"  # trained, being evaluated
    ACTIVE = "active"  # promoted: the model in use
    REJECTED = "rejected"  # evaluated, not good enough (the reason says why)
    ROLLED_BACK = "rolled back"  # was active until a rollback
    SUPERSEDED = "superseded"  # was active until a newer one was promoted
    FAILED = "failed"  # its run failed or was interrupted


_COLUMNS = (
    "id",
    "created_at",
    "base_model",
    "adapter",
    "dataset_size",
    "parent",
    "status",
    "metrics",
    "reason",
    "trigger",
    "updated_at",
)


class ModelRegistry:
    """Versions in SQLite; their adapters are files under `<home>/models/`."""

    def __init__(self, conn: sqlite3.Connection) -> None:
        self.conn = conn

    def _rows(self, where: str = "1", params: tuple[Any, ...] = ()) -> list[dict[str, Any]]:
        found = self.conn.execute(
            f"SELECT {', '.join(_COLUMNS)} FROM model_versions WHERE {where} ORDER BY id", params
        ).fetchall()
        return [{**dict(zip(_COLUMNS, row, strict=True)), "metrics": json.loads(row[7])} for row in found]

    def versions(self) -> list[dict[str, Any]]:
        return self._rows()

    def get(self, version: int) -> dict[str, Any] | None:
        rows = self._rows("id = ?", (version,))
        return rows[0] if rows else None

    def active(self) -> dict[str, Any] | None:
        rows = self._rows("status = ?", (ModelStatus.ACTIVE,))
        return rows[-1] if rows else None

    def running(self) -> dict[str, Any] | None:
        rows = self._rows("status IN (?, ?)", (ModelStatus.TRAINING, ModelStatus.CANDIDATE))
        return rows[-1] if rows else None

    def start(self, base_model: str, dataset_size: int, trigger: str) -> int:
        """Register a training run; it fails if another one is training (runs never overlap)."""
        stamp = now_iso()
        active = self.active()
        parent = active["id"] if active else None
        with self.conn:
            self.conn.execute("BEGIN IMMEDIATE")
            if self.conn.execute(
                "SELECT 1 FROM model_versions WHERE status IN (?, ?)", (ModelStatus.TRAINING, ModelStatus.CANDIDATE)
            ).fetchone():
                raise RuntimeError("a fine-tuning run is already in progress")
            cursor = self.conn.execute(
                "INSERT INTO model_versions (created_at, base_model, dataset_size, parent, status, metrics, trigger,"
                " updated_at) VALUES (?, ?, ?, ?, ?, '{}', ?, ?)",
                (stamp, base_model, dataset_size, parent, ModelStatus.TRAINING, trigger, stamp),
            )
        assert cursor.lastrowid is not None
        return int(cursor.lastrowid)

    def update(self, version: int, **fields: Any) -> None:
        """Change a version's status, adapter, metrics or reason."""
        if "metrics" in fields:
            fields["metrics"] = json.dumps(fields["metrics"])
        fields["updated_at"] = now_iso()
        assignments = ", ".join(f"{name} = ?" for name in fields)
        with self.conn:
            self.conn.execute(f"UPDATE model_versions SET {assignments} WHERE id = ?", (*fields.values(), version))

    def promote(self, version: int) -> None:
        """Make a version the active one; the previous active one is superseded."""
        with self.conn:
            self.conn.execute("BEGIN IMMEDIATE")
            self.conn.execute(
                "UPDATE model_versions SET status = ?, updated_at = ? WHERE status = ?",
                (ModelStatus.SUPERSEDED, now_iso(), ModelStatus.ACTIVE),
            )
            self.conn.execute(
                "UPDATE model_versions SET status = ?, updated_at = ? WHERE id = ?",
                (ModelStatus.ACTIVE, now_iso(), version),
            )

    def rollback(self) -> tuple[dict[str, Any] | None, dict[str, Any] | None]:
        """Retire the active version and reactivate its parent (None: the base model); return (old, new)."""
        current = self.active()
        if current is None:
            raise LookupError("no fine-tuned version is active; the base model is in use")
        parent = self.get(current["parent"]) if current["parent"] else None
        with self.conn:
            self.conn.execute("BEGIN IMMEDIATE")
            self.conn.execute(
                "UPDATE model_versions SET status = ?, updated_at = ? WHERE id = ?",
                (ModelStatus.ROLLED_BACK, now_iso(), current["id"]),
            )
            if parent is not None:
                self.conn.execute(
                    "UPDATE model_versions SET status = ?, updated_at = ? WHERE id = ?",
                    (ModelStatus.ACTIVE, now_iso(), parent["id"]),
                )
        return current, self.get(parent["id"]) if parent else None

    def interrupted(self) -> int:
        """Mark runs left `training` by a daemon that stopped mid-run as failed; return how many."""
        with self.conn:
            cursor = self.conn.execute(
                "UPDATE model_versions SET status = ?, reason = ?, updated_at = ? WHERE status IN (?, ?)",
                (
                    ModelStatus.FAILED,
                    "interrupted: skilld stopped during training or evaluation",
                    now_iso(),
                    ModelStatus.TRAINING,
                    ModelStatus.CANDIDATE,
                ),
            )
        return cursor.rowcount

    def examples_at_last_run(self) -> int:
        row = self.conn.execute(
            "SELECT MAX(dataset_size) FROM model_versions WHERE status != ?", (ModelStatus.FAILED,)
        ).fetchone()
        return int(row[0] or 0)
