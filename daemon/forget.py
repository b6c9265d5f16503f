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
from typing import TYPE_CHECKING, Any

from daemon.interactions import load_interaction
from daemon.retention import vacuum
from storage.datasets import Datasets
from storage.vectors.base import INTERACTIONS, point_id

if TYPE_CHECKING:
    from daemon.app import Skilld


def forget_user(app: Skilld, user_id: str) -> dict[str, Any]:
    """Remove everything derived from `user_id`; return what was removed, with the affected model versions.

    Derived data goes first and the events last, so a forget that fails halfway (a vector store down)
    can simply be run again: the events still name the user's interactions.
    """
    user = app.privacy.hasher.hash(user_id)
    learner = app.learner
    with app.lock:
        keys = app.store.interactions_of_user(user)
        queries = set()
        ids = app.store.events_of_user(user)
        for key in keys:
            interaction = load_interaction(app.store, app.registry, key)
            if interaction is not None and interaction.query:
                queries.add(interaction.query)
            ids.extend(r[0] for r in app.store.events_of(key))
        counts: dict[str, Any] = {"user": user, "interactions": len(keys)}
        derived = _forget_derived(app, keys, queries, user)
        counts.update(learner.learning.forget_interactions(keys))
        needle = json.dumps(user_id, ensure_ascii=False)  # the raw id as a JSON string, as a line carries it
        letters = app.store.dead_letters_containing(needle)
        counts["events"] = app.store.bury("events", sorted(set(ids)))
        counts["dead_letters"] = app.store.bury("dead_letters", letters)
        counts.update(derived)
        learner.remember_skill_count()
        vacuum(app.store, app.lock)  # deleted rows also leave the database file's free pages and the WAL
    return counts


def _forget_derived(app: Skilld, keys: set[str], queries: set[str], user: str) -> dict[str, Any]:
    """Vectors, skills (embedded again from what remains), dataset records and training copies."""
    learner = app.learner
    if keys:
        learner.vectors.delete(INTERACTIONS, [point_id("interaction", k) for k in sorted(keys)])
    # The events are still there (they go last): they tell which of a skill's events were the user's.
    sessions = {i.session for i in map(learner.interaction, sorted(keys)) if i is not None and i.session}
    skills = learner.library.forget(keys, user, queries, learner.learning.interaction_of_event)
    usage = learner.usage.forget(skills.deleted, keys, sessions)
    removed = learner.datasets.forget(keys)
    versions: list[int] = []
    for data in sorted((app.home / "models").glob("v*/data")):
        found = Datasets.remove_from_export(data, keys)
        if found and data.parent.name[1:].isdigit():
            versions.append(int(data.parent.name[1:]))
    return {
        "skills_deleted": len(skills.deleted),
        "skills_updated": len(skills.updated),
        "usage_records": usage,
        "dataset_examples": removed.examples,
        "preference_pairs": removed.preferences,
        "model_versions": sorted(versions),
    }
