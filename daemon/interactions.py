"""Reading interactions back from the event store: every event of one key, re-read and folded."""

from __future__ import annotations

from pathlib import Path

import orjson

from daemon.adapters.paths import file_hint
from daemon.adapters.registry import AdapterRegistry
from daemon.interaction import Interaction, Reading, fold
from storage.events import EventStore


def load_interaction(store: EventStore, registry: AdapterRegistry, key: str) -> Interaction | None:
    """The interaction with this key, folded from its stored (redacted) events; None if it has none.

    Events linked to it (a person's next prompt) add what they say about it; the adapter of its source
    then finishes it (an agent turn's outcome is decided over all its signals).
    """
    readings: list[tuple[str, Reading]] = []
    own: list[bool] = []
    for event_id, source, path, record, is_own in store.evidence_of(key):
        adapter = registry.by_name(source)
        if adapter is None:
            continue
        readings.append((event_id, adapter.read(orjson.loads(record), file_hint(Path(path)))))
        own.append(is_own)
    if not readings:
        return None
    interaction = fold(key, readings, own)
    return registry.finish(interaction)
