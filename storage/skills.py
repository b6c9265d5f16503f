"""The skill library in Qdrant: merge-or-insert, search, retire, forget, and export/import between workstations."""

from __future__ import annotations

import json
import uuid
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, ValidationError

from storage.embeddings import Embedder
from storage.events import now_iso
from storage.files import write_atomic
from storage.vectors.base import RETIRED_SKILLS, SKILLS, Hit, VectorPoint, VectorStore, point_id

PATTERN_FIELDS = ("name", "description", "prerequisites", "steps", "tags", "example")


class Skill(BaseModel):
    """A skill as its point's payload and its export record hold it: the pattern, its evidence, its quality.

    Payloads of older versions load: a missing field takes its default and an unknown key is kept, and
    `payload()` gives back the keys a skill was stored or made with, so reading and writing one keeps them.
    The pattern is not bounded here as in `SkillPattern`: a re-check judges stored ones against the gate.
    """

    model_config = ConfigDict(extra="allow")

    name: str
    description: str
    prerequisites: list[str] = []
    steps: list[str]
    tags: list[str] = []
    example: str = ""
    source_query: str = ""
    source_queries: list[str] = []
    source_events: list[str] = []
    source_interactions: list[str] = []
    source_users: list[str] = []
    evidence_count: int = 1
    success_rate: float = 0.0
    # How it served, from the usage ledger (storage/usage.py): times served, when last, and the evidence of
    # whether it helped, with the usefulness estimate (storage/usefulness.py) kept for readers of Qdrant.
    usage_count: int = 0
    last_used: str | None = None
    helped: int = 0
    not_helped: int = 0
    usefulness: float = 0.5
    usefulness_interval: list[float] = [0.05, 0.95]
    value_score: float = 0.0
    prompt_version: str = ""
    model: str = ""
    quality: dict[str, Any] = {}  # the gate's figures (extractors/gate.py)
    created_at: str = ""
    last_seen: str = ""
    # Why, when and by what (the quality gate, or its usefulness) it was retired: the retired collection only.
    retired: dict[str, Any] | None = None

    def payload(self) -> dict[str, Any]:
        """The JSON payload: the keys it was stored or made with (a point's id is never one of them)."""
        return self.model_dump(exclude_unset=True, exclude={"id"})

    def pattern(self) -> dict[str, Any]:
        """The pattern fields it has (an imported skill may lack some), for `SkillPattern` to judge."""
        return self.model_dump(include=set(PATTERN_FIELDS), exclude_unset=True)


# What every view of a skill carries, stored or not yet (older payloads lack the usage keys).
USAGE_FIELDS = ("usage_count", "last_used", "helped", "not_helped", "usefulness", "usefulness_interval", "retired")


def view(skill_id: str, skill: Skill, **extra: Any) -> dict[str, Any]:
    """A skill as commands, the API and MCP show it: its id and every field, those its payload lacks (an
    older or imported one) at their defaults, the usage keys among them."""
    return {"id": skill_id, **skill.model_dump(exclude={"id"}), **extra}


def skill_text(skill: Skill) -> str:
    """What a skill's vector embeds: its name, description and every question that produced it."""
    return "\n".join([skill.name, skill.description, *(skill.source_queries or [skill.source_query])])


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


@dataclass(frozen=True)
class StoredSkill:
    """A skill in the library, with its point id."""

    id: str
    skill: Skill

    @property
    def payload(self) -> dict[str, Any]:
        return self.skill.payload()


@dataclass(frozen=True)
class Forgotten:
    """What forgetting a user did to the library (ids)."""

    deleted: list[str]  # skills only they gave evidence for, and retired skills they gave any
    updated: list[str]  # skills that lost their part and were embedded again without it


def _stored(hit: Hit) -> StoredSkill:
    return StoredSkill(hit.id, Skill.model_validate(hit.payload))


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
        skill = self._new_payload(evidence)
        vector = self.embedder.encode_one(skill_text(skill))
        near = self.vectors.search(SKILLS, vector, 1, threshold=self.merge_threshold)
        if near:
            current = Skill.model_validate(near[0].payload)
            merged = merge(current, skill)
            if merged is not current:
                self._put(near[0].id, merged)
            return near[0].id, True
        skill_id = point_id("skill", skill.name.lower(), evidence.interaction_key)
        self.vectors.upsert(SKILLS, [VectorPoint(skill_id, vector, skill.payload())])
        return skill_id, False

    def _new_payload(self, e: Evidence) -> Skill:
        stamp = now_iso()
        return Skill(
            **{k: e.pattern[k] for k in PATTERN_FIELDS},
            source_query=e.query,
            source_queries=[e.query],
            source_events=list(e.event_ids),
            source_interactions=[e.interaction_key],
            source_users=[e.user] if e.user else [],
            evidence_count=1,
            success_rate=1.0 if e.success else 0.0,
            # The usage keys from the start, so that a tool reading Qdrant finds them on every skill.
            **{k: Skill.model_fields[k].default for k in USAGE_FIELDS},
            value_score=e.value_score,
            prompt_version=e.prompt_version,
            model=e.model,
            quality=e.quality,
            created_at=stamp,
            last_seen=stamp,
        )

    def _put(self, skill_id: str, skill: Skill) -> None:
        vector = self.embedder.encode_one(skill_text(skill))
        self.vectors.upsert(SKILLS, [VectorPoint(skill_id, vector, skill.payload())])

    def search(self, query: str, limit: int = 5, weight: float = 0.0, prior_mean: float = 0.5) -> list[dict[str, Any]]:
        """Skills best matching a question, best first: each with its `relevance` (cosine similarity) and
        `score`, the relevance weighed by how useful the skill has been (`weight` 0: relevance alone).

        A skill at the prior's mean keeps its relevance; one that helped more ranks higher, one that did
        not lower, by up to `weight` of it. Candidates beyond `limit` are read so that a useful skill a
        little less similar can still take a place.
        """
        vector = self.embedder.encode_one(query)
        hits = self.vectors.search(SKILLS, vector, max(limit * 3, 10) if weight else limit)
        found = []
        for hit in hits:
            skill = Skill.model_validate(hit.payload)
            judged = skill.helped + skill.not_helped > 0  # else it stands at the (configured) prior's mean
            score = hit.score * (1 + weight * ((skill.usefulness if judged else prior_mean) - prior_mean))
            found.append((round(score, 4), view(hit.id, skill, relevance=round(hit.score, 4))))
        found.sort(key=lambda pair: -pair[0])
        return [{**skill, "score": score} for score, skill in found[:limit]]

    def get(self, skill_id: str) -> dict[str, Any] | None:
        """A skill's view by id, served or retired (a retired one carries `retired`: its reason and when)."""
        skill = self.get_skill(skill_id)
        return view(skill_id, skill) if skill is not None else None

    def get_skill(self, skill_id: str) -> Skill | None:
        """A skill by id, served or retired (None for an id that is not one)."""
        try:
            uuid.UUID(skill_id)
        except ValueError:
            return None  # a point id is a UUID: anything else names no skill
        found = self.vectors.retrieve(SKILLS, [skill_id]) or self.vectors.retrieve(RETIRED_SKILLS, [skill_id])
        return Skill.model_validate(found[0].payload) if found else None

    def all(self) -> Iterator[StoredSkill]:
        """Every served skill."""
        return map(_stored, self.vectors.scroll(SKILLS))

    def proven(self, limit: int) -> list[dict[str, Any]]:
        """The served skills that helped more often than not, most useful first (at most `limit`)."""
        helpful = [s for s in self.all() if s.skill.helped > s.skill.not_helped]
        helpful.sort(key=lambda s: (-s.skill.usefulness, -s.skill.usage_count, s.id))
        return [view(s.id, s.skill) for s in helpful[:limit]]

    def retired(self) -> Iterator[StoredSkill]:
        """Every retired skill (each with its `retired` reason)."""
        return map(_stored, self.vectors.scroll(RETIRED_SKILLS))

    def retire(self, skill_id: str, reason: str, gate: int | None = None, by: str = "quality gate") -> bool:
        """Move a skill out of service, kept with the reason; False if it is not a served skill."""
        found = self.vectors.retrieve(SKILLS, [skill_id], with_vectors=True)
        if not found or found[0].vector is None:
            return False
        retired: dict[str, Any] = {"reason": reason, "at": now_iso(), "by": by}
        if gate is not None:
            retired["gate"] = gate
        skill = Skill.model_validate(found[0].payload).model_copy(update={"retired": retired})
        self.vectors.upsert(RETIRED_SKILLS, [VectorPoint(skill_id, found[0].vector, skill.payload())])
        self.vectors.delete(SKILLS, [skill_id])  # after the copy: a crash in between leaves it in both, not lost
        return True

    def restore(self, skill_id: str) -> bool:
        """Serve a retired skill again (a person's decision); False if it is not retired."""
        found = self.vectors.retrieve(RETIRED_SKILLS, [skill_id], with_vectors=True)
        if not found or found[0].vector is None:
            return False
        skill = Skill.model_validate(found[0].payload).model_copy(update={"retired": None})
        self.vectors.upsert(SKILLS, [VectorPoint(skill_id, found[0].vector, skill.payload())])
        self.vectors.delete(RETIRED_SKILLS, [skill_id])
        return True

    def set_usage(self, skill_id: str, usage: dict[str, Any]) -> Skill | None:
        """Record a skill's usage counters and usefulness, served or retired (its vector unchanged)."""
        for collection in (SKILLS, RETIRED_SKILLS):
            found = self.vectors.retrieve(collection, [skill_id], with_vectors=True)
            if found and found[0].vector is not None:
                skill = Skill.model_validate(found[0].payload).model_copy(update=usage)
                self.vectors.upsert(collection, [VectorPoint(skill_id, found[0].vector, skill.payload())])
                return skill
        return None

    def set_quality(self, skill_id: str, quality: dict[str, Any]) -> None:
        """Record the gate's figures on a served skill (its vector unchanged)."""
        found = self.vectors.retrieve(SKILLS, [skill_id], with_vectors=True)
        if found and found[0].vector is not None:
            skill = Skill.model_validate(found[0].payload).model_copy(update={"quality": quality})
            self.vectors.upsert(SKILLS, [VectorPoint(skill_id, found[0].vector, skill.payload())])

    def count(self) -> int:
        return self.vectors.count(SKILLS)

    def count_retired(self) -> int:
        """How many skills are retired (kept, not served)."""
        return self.vectors.count(RETIRED_SKILLS)

    def delete(self, skill_id: str) -> bool:
        if not self.vectors.retrieve(SKILLS, [skill_id]):
            return False
        self.vectors.delete(SKILLS, [skill_id])
        return True

    def forget(
        self, keys: set[str], user: str, queries: set[str], owner_of_event: Callable[[str], str | None]
    ) -> Forgotten:
        """Remove a user's evidence: their interactions (`keys`), user hash, questions and events.

        A served skill with no other evidence goes; one with other evidence keeps the rest and is embedded
        again without their questions. A retired skill goes whole: never served, it still holds their words.
        `owner_of_event` gives an event's interaction, so the events must still be stored.
        """
        deleted: list[str] = []
        updated: list[str] = []
        for stored in list(self.all()):
            skill = stored.skill
            theirs = [k for k in skill.source_interactions if k in keys]
            if not theirs and user not in skill.source_users:
                continue
            remaining = [k for k in skill.source_interactions if k not in keys]
            if not remaining:
                self.vectors.delete(SKILLS, [stored.id])
                deleted.append(stored.id)
                continue
            others = [q for q in skill.source_queries if q not in queries]
            kept = {
                "source_interactions": remaining,
                "source_users": [u for u in skill.source_users if u != user],
                "source_events": [e for e in skill.source_events if owner_of_event(e) not in keys],
                "source_queries": others,
                "source_query": others[0] if others else "",
                "evidence_count": max(1, skill.evidence_count - len(theirs)),
            }
            self._put(stored.id, skill.model_copy(update=kept))
            updated.append(stored.id)
        for stored in list(self.retired()):
            if any(k in keys for k in stored.skill.source_interactions) or user in stored.skill.source_users:
                self.vectors.delete(RETIRED_SKILLS, [stored.id])
                deleted.append(stored.id)
        return Forgotten(deleted, updated)

    def export(self, path: Path) -> int:
        """Write every skill as one JSON line (id and payload); return how many."""
        lines = [json.dumps({"id": s.id, **s.payload}, sort_keys=True) + "\n" for s in self.all()]
        write_atomic(path, lines)
        return len(lines)

    def import_(self, path: Path) -> dict[str, int]:
        """Read an export: a skill already here (same id, or as near as a merge) gains the evidence only."""
        counts = {"added": 0, "merged": 0, "unchanged": 0}
        with open(path, encoding="utf-8") as handle:
            for number, line in enumerate(handle, 1):
                if line.strip():
                    skill_id, skill = _record(path, number, line)
                    counts[self._import_one(skill_id, skill)] += 1
        return counts

    def _import_one(self, skill_id: str, skill: Skill) -> Literal["added", "merged", "unchanged"]:
        """Add one imported skill, or merge its evidence into the same or a near one; return which."""
        existing = self.vectors.retrieve(SKILLS, [skill_id])
        if not existing:
            vector = self.embedder.encode_one(skill_text(skill))
            existing = self.vectors.search(SKILLS, vector, 1, threshold=self.merge_threshold)
        if not existing:
            # Usage is this workstation's own (its ledger): an imported skill starts unserved here.
            self._put(skill_id, skill.model_copy(update={k: Skill.model_fields[k].default for k in USAGE_FIELDS}))
            return "added"
        current = Skill.model_validate(existing[0].payload)
        merged = merge(current, skill)
        if merged is current:
            return "unchanged"
        self._put(existing[0].id, merged)
        return "merged"


def _record(path: Path, number: int, line: str) -> tuple[str, Skill]:
    """One export line's id and skill; ValueError naming the file and line when it is not a skill record."""
    try:
        record = json.loads(line)
        skill_id = str(record.pop("id"))
        missing = [k for k in ("name", "description", "steps") if k not in record]
    except (ValueError, KeyError, AttributeError) as exc:
        raise ValueError(f"{path}:{number}: not a skill record ({exc})") from None
    if missing:
        raise ValueError(f"{path}:{number}: not a skill record (missing {', '.join(missing)})")
    try:
        return skill_id, Skill.model_validate(record)
    except ValidationError as exc:
        error = exc.errors()[0]
        where = ".".join(map(str, error["loc"]))
        raise ValueError(f"{path}:{number}: not a skill record ({where}: {error['msg']})") from None


def _union(a: list[Any], b: list[Any]) -> list[Any]:
    return a + [x for x in b if x not in a]


def merge(current: Skill, new: Skill) -> Skill:
    """A skill with another's evidence added; `current` itself when the other adds nothing new."""
    fresh = [k for k in new.source_interactions if k not in current.source_interactions]
    if not fresh:
        return current
    old_n, new_n = current.evidence_count, new.evidence_count
    update: dict[str, Any] = {
        "evidence_count": old_n + new_n,
        "success_rate": round((current.success_rate * old_n + new.success_rate * new_n) / (old_n + new_n), 4),
        "last_seen": max(current.last_seen, new.last_seen),
    }
    for key in ("source_queries", "source_events", "source_interactions", "source_users", "tags"):
        update[key] = _union(list(getattr(current, key)), list(getattr(new, key)))
    if new.value_score > current.value_score:
        # The better description: the one extracted from the more valuable interaction.
        for key in (*PATTERN_FIELDS, "value_score", "prompt_version", "model", "quality"):
            if key in new.model_fields_set and key != "tags":
                update[key] = getattr(new, key)
    return current.model_copy(update=update)
