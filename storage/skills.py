"""The skill library in Qdrant: merge-or-insert, search, and export/import between workstations."""

from __future__ import annotations

import json
import os
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from storage.embeddings import Embedder
from storage.events import now_iso
from storage.vectors.base import RETIRED_SKILLS, SKILLS, Hit, VectorPoint, VectorStore, point_id

PATTERN_FIELDS = ("name", "description", "prerequisites", "steps", "tags", "example")


def skill_text(payload: dict[str, Any]) -> str:
    """What a skill's vector embeds: its name, description and every question that produced it."""
    queries = payload.get("source_queries") or [payload.get("source_query", "")]
    return "\n".join([str(payload.get("name", "")), str(payload.get("description", "")), *map(str, queries)])


@dataclass(frozen=True)
class Evidence:
    """One extraction's contribution to a skill."""

    pattern: dict[str, Any]
    interaction_key: str
    event_ids: list[str]
    query: str
    success: bool
    value_score: float
    prompt_version: str
    model: str
    user: str | None
    quality: dict[str, Any] = field(default_factory=dict)  # the gate's figures (extractors/gate.py)


class SkillLibrary:
    """Skill patterns with their evidence, in the `skills-patterns` collection."""

    def __init__(self, vectors: VectorStore, embedder: Embedder, merge_threshold: float) -> None:
        self.vectors = vectors
        self.embedder = embedder
        self.merge_threshold = merge_threshold
        vectors.ensure_collection(SKILLS, embedder.dimensions)
        vectors.ensure_collection(RETIRED_SKILLS, embedder.dimensions)

    def add(self, evidence: Evidence) -> tuple[str, bool]:
        """Merge into the nearest skill at or above the merge threshold, else insert; return (id, merged)."""
        payload = self._new_payload(evidence)
        vector = self.embedder.encode_one(skill_text(payload))
        near = self.vectors.search(SKILLS, vector, 1, threshold=self.merge_threshold)
        if near:
            merged = merge(near[0].payload, payload)
            if merged is not near[0].payload:
                self._put(near[0].id, merged)
            return near[0].id, True
        skill_id = point_id("skill", payload["name"].lower(), evidence.interaction_key)
        self.vectors.upsert(SKILLS, [VectorPoint(skill_id, vector, payload)])
        return skill_id, False

    def _new_payload(self, e: Evidence) -> dict[str, Any]:
        stamp = now_iso()
        return {
            **{k: e.pattern[k] for k in PATTERN_FIELDS},
            "source_query": e.query,
            "source_queries": [e.query],
            "source_events": list(e.event_ids),
            "source_interactions": [e.interaction_key],
            "source_users": [e.user] if e.user else [],
            "evidence_count": 1,
            "success_rate": 1.0 if e.success else 0.0,
            "usage_count": 0,
            "value_score": e.value_score,
            "prompt_version": e.prompt_version,
            "model": e.model,
            "quality": e.quality,
            "created_at": stamp,
            "last_seen": stamp,
        }

    def _put(self, skill_id: str, payload: dict[str, Any]) -> None:
        self.vectors.upsert(SKILLS, [VectorPoint(skill_id, self.embedder.encode_one(skill_text(payload)), payload)])

    def search(self, query: str, limit: int = 5) -> list[dict[str, Any]]:
        """Skills best matching a question, best first, each with its score."""
        hits = self.vectors.search(SKILLS, self.embedder.encode_one(query), limit)
        return [{"id": h.id, "score": round(h.score, 4), **h.payload} for h in hits]

    def get(self, skill_id: str) -> dict[str, Any] | None:
        """A skill by id, served or retired (a retired one carries `retired`: its reason and when)."""
        found = self.vectors.retrieve(SKILLS, [skill_id]) or self.vectors.retrieve(RETIRED_SKILLS, [skill_id])
        return {"id": found[0].id, **found[0].payload} if found else None

    def all(self) -> Iterator[Hit]:
        return self.vectors.scroll(SKILLS)

    def retired(self) -> Iterator[Hit]:
        return self.vectors.scroll(RETIRED_SKILLS)

    def retire(self, skill_id: str, reason: str, gate: int) -> bool:
        """Move a skill out of service, kept with the reason; False if it is not a served skill."""
        found = self.vectors.retrieve(SKILLS, [skill_id], with_vectors=True)
        if not found or found[0].vector is None:
            return False
        payload = {**found[0].payload, "retired": {"reason": reason, "at": now_iso(), "gate": gate}}
        self.vectors.upsert(RETIRED_SKILLS, [VectorPoint(skill_id, found[0].vector, payload)])
        self.vectors.delete(SKILLS, [skill_id])  # after the copy: a crash in between leaves it in both, not lost
        return True

    def set_quality(self, skill_id: str, quality: dict[str, Any]) -> None:
        """Record the gate's figures on a served skill (its vector unchanged)."""
        found = self.vectors.retrieve(SKILLS, [skill_id], with_vectors=True)
        if found and found[0].vector is not None:
            payload = {**found[0].payload, "quality": quality}
            self.vectors.upsert(SKILLS, [VectorPoint(skill_id, found[0].vector, payload)])

    def count(self) -> int:
        return self.vectors.count(SKILLS)

    def delete(self, skill_id: str) -> bool:
        if not self.vectors.retrieve(SKILLS, [skill_id]):
            return False
        self.vectors.delete(SKILLS, [skill_id])
        return True

    def export(self, path: Path) -> int:
        """Write every skill as one JSON line (id and payload); return how many."""
        count = 0
        partial = path.with_name(path.name + ".partial")
        with open(partial, "w", encoding="utf-8") as handle:
            for hit in self.all():
                handle.write(json.dumps({"id": hit.id, **hit.payload}, sort_keys=True) + "\n")
                count += 1
            handle.flush()
            os.fsync(handle.fileno())
        os.replace(partial, path)
        return count

    def import_(self, path: Path) -> dict[str, int]:
        """Read an export: a skill already here (same id, or as near as a merge) gains the evidence only."""
        counts = {"added": 0, "merged": 0, "unchanged": 0}
        with open(path, encoding="utf-8") as handle:
            for number, line in enumerate(handle, 1):
                if not line.strip():
                    continue
                try:
                    record = json.loads(line)
                    skill_id = str(record.pop("id"))
                    missing = [k for k in ("name", "description", "steps") if k not in record]
                except (ValueError, KeyError, AttributeError) as exc:
                    raise ValueError(f"{path}:{number}: not a skill record ({exc})") from None
                if missing:
                    raise ValueError(f"{path}:{number}: not a skill record (missing {', '.join(missing)})")
                existing = self.vectors.retrieve(SKILLS, [skill_id])
                if not existing:
                    vector = self.embedder.encode_one(skill_text(record))
                    near = self.vectors.search(SKILLS, vector, 1, threshold=self.merge_threshold)
                    existing = near
                if existing:
                    merged = merge(existing[0].payload, record)
                    if merged is existing[0].payload:
                        counts["unchanged"] += 1
                    else:
                        self._put(existing[0].id, merged)
                        counts["merged"] += 1
                else:
                    self._put(skill_id, record)
                    counts["added"] += 1
        return counts


def _union(a: list[Any], b: list[Any]) -> list[Any]:
    return a + [x for x in b if x not in a]


def merge(current: dict[str, Any], new: dict[str, Any]) -> dict[str, Any]:
    """A skill with another's evidence added; `current` itself when the other adds nothing new."""
    fresh = [k for k in new.get("source_interactions", []) if k not in current.get("source_interactions", [])]
    if not fresh:
        return current
    old_n, new_n = int(current.get("evidence_count", 1)), int(new.get("evidence_count", 1))
    merged = dict(current)
    merged["evidence_count"] = old_n + new_n
    merged["success_rate"] = round(
        (float(current.get("success_rate", 0)) * old_n + float(new.get("success_rate", 0)) * new_n) / (old_n + new_n), 4
    )
    for key in ("source_queries", "source_events", "source_interactions", "source_users", "tags"):
        merged[key] = _union(list(current.get(key, [])), list(new.get(key, [])))
    merged["last_seen"] = max(str(current.get("last_seen", "")), str(new.get("last_seen", "")))
    merged["usage_count"] = int(current.get("usage_count", 0)) + int(new.get("usage_count", 0))
    if float(new.get("value_score", 0)) > float(current.get("value_score", 0)):
        # The better description: the one extracted from the more valuable interaction.
        for key in (*PATTERN_FIELDS, "value_score", "prompt_version", "model", "quality"):
            if key in new and key != "tags":
                merged[key] = new[key]
    return merged
