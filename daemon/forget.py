"""`skilld forget --user USER_ID`: remove everything derived from one user.

The user's interactions are those with at least one event carrying their (hashed) id. Removed: those
interactions' events (their ids are kept as tombstones so a re-read never brings them back), scores,
queue items, feedback, interaction vectors, dataset records (and the copies in fine-tuning runs' data),
skills whose only evidence is theirs; skills with other evidence lose the user's part and are embedded
again without it. Dead letters are not parsed, so those containing the raw user id are removed. Model
versions trained on their data are reported: their weights cannot unlearn, rolling back or retraining can.
"""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import TYPE_CHECKING, Any

from daemon.interactions import load_interaction
from daemon.retention import vacuum
from storage.vectors.base import EXAMPLES, INTERACTIONS, RETIRED_SKILLS, SKILLS, point_id

if TYPE_CHECKING:
    from daemon.app import Skilld


def _rewrite_without(path: Path, keys: set[str]) -> int:
    """Drop the records of these interactions from a JSONL file (atomically); return how many.

    A line that does not parse (a torn last line) is kept as it is: forget removes, it never loses.
    """
    if not path.exists() or not keys:
        return 0
    kept: list[str] = []
    removed = 0
    with open(path, encoding="utf-8") as handle:
        for line in handle:
            try:
                key = json.loads(line).get("metadata", {}).get("interaction")
            except (ValueError, AttributeError):
                key = None
            if key is not None and str(key) in keys:
                removed += 1
            else:
                kept.append(line)
    if removed:
        partial = path.with_name(f".{path.name}.partial")
        fd = os.open(partial, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
        with os.fdopen(fd, "w", encoding="utf-8") as handle:
            handle.writelines(kept)
            handle.flush()
            os.fsync(handle.fileno())
        os.replace(partial, path)
    return removed


def forget_user(app: Skilld, user_id: str) -> dict[str, Any]:
    """Remove everything derived from `user_id`; return what was removed, with the affected model versions.

    Derived data goes first and the events last, so a forget that fails halfway (a vector store down)
    can simply be run again: the events still name the user's interactions.
    """
    user = app.privacy.hasher.hash(user_id)
    learner = app.learner
    with app.lock:
        conn = app.store.conn
        keys = {
            r[0]
            for r in conn.execute(
                "SELECT interaction_key FROM events WHERE user_hash = ? AND interaction_key IS NOT NULL "
                "UNION SELECT interaction_key FROM scores WHERE user_hash = ?",
                (user, user),
            )
        }
        queries = set()
        ids = [r[0] for r in conn.execute("SELECT id FROM events WHERE user_hash = ?", (user,))]
        for key in keys:
            interaction = load_interaction(app.store, app.registry, key)
            if interaction is not None and interaction.query:
                queries.add(interaction.query)
            ids.extend(r[0] for r in app.store.events_of(key))
        counts: dict[str, Any] = {"user": user, "interactions": len(keys)}
        derived = _forget_derived(app, keys, queries, user)
        marks = ",".join("?" * len(keys))
        with conn:
            conn.execute("BEGIN IMMEDIATE")
            for table, name in (("scores", "scores"), ("extraction_queue", "queued"), ("feedback", "feedback")):
                sql = f"DELETE FROM {table} WHERE interaction_key IN ({marks})"
                counts[name] = conn.execute(sql, sorted(keys)).rowcount if keys else 0
        needle = json.dumps(user_id, ensure_ascii=False)  # the raw id as a JSON string, as a line carries it
        letters = [r[0] for r in conn.execute("SELECT id FROM dead_letters WHERE instr(content, ?) > 0", (needle,))]
        counts["events"] = app.store.bury("events", sorted(set(ids)))
        counts["dead_letters"] = app.store.bury("dead_letters", letters)
        counts.update(derived)
        learner.remember_skill_count()
        vacuum(app.store, app.lock)  # deleted rows also leave the database file's free pages and the WAL
    return counts


def _forget_derived(app: Skilld, keys: set[str], queries: set[str], user: str) -> dict[str, Any]:
    """Vectors, skills (embedded again from what remains), dataset records and training copies."""
    learner = app.learner
    vectors = learner.vectors
    library, _ = learner.library, learner.datasets  # opens every collection touched below
    if keys:
        vectors.delete(INTERACTIONS, [point_id("interaction", k) for k in sorted(keys)])
        vectors.delete(EXAMPLES, [point_id("example", k) for k in sorted(keys)])
    owner = learner.learning.interaction_of_event  # the events are still there: they go last
    deleted_skills: list[str] = []
    updated_skills: list[str] = []
    for hit in list(library.all()):
        payload = hit.payload
        theirs = [k for k in payload.get("source_interactions", []) if k in keys]
        if not theirs and user not in payload.get("source_users", []):
            continue
        remaining = [k for k in payload.get("source_interactions", []) if k not in keys]
        if not remaining:
            vectors.delete(SKILLS, [hit.id])
            deleted_skills.append(hit.id)
            continue
        others = [q for q in payload.get("source_queries", []) if q not in queries]
        payload = {
            **payload,
            "source_interactions": remaining,
            "source_users": [u for u in payload.get("source_users", []) if u != user],
            "source_events": [e for e in payload.get("source_events", []) if owner(e) not in keys],
            "source_queries": others,
            "source_query": others[0] if others else "",
            "evidence_count": max(1, int(payload.get("evidence_count", 1)) - len(theirs)),
        }
        payload.pop("id", None)
        library._put(hit.id, payload)
        updated_skills.append(hit.id)
    for hit in list(library.retired()):  # never served again, but it still holds their words: it goes whole
        sources = hit.payload.get("source_interactions", [])
        if any(k in keys for k in sources) or user in hit.payload.get("source_users", []):
            vectors.delete(RETIRED_SKILLS, [hit.id])
            deleted_skills.append(hit.id)
    datasets = app.home / "datasets"
    removed = _rewrite_without(datasets / "finetune.jsonl", keys) if keys else 0
    preferences = _rewrite_without(datasets / "preferences.jsonl", keys) if keys else 0
    versions: list[int] = []
    for data in sorted((app.home / "models").glob("v*/data")):
        found = sum(_rewrite_without(data / name, keys) for name in ("train.jsonl", "validation.jsonl"))
        if found and data.parent.name[1:].isdigit():
            versions.append(int(data.parent.name[1:]))
    return {
        "skills_deleted": len(deleted_skills),
        "skills_updated": len(updated_skills),
        "dataset_examples": removed,
        "preference_pairs": preferences,
        "model_versions": sorted(versions),
    }
