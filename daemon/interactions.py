"""Reading interactions back from the event store: every event of one key, re-read and folded."""

from __future__ import annotations

from pathlib import Path

import orjson

from daemon.adapters.registry import AdapterRegistry, base_name
from daemon.interaction import Interaction, Reading, fold
from storage.events import EventStore


def load_interaction(store: EventStore, registry: AdapterRegistry, key: str) -> Interaction | None:
    """The interaction with this key, folded from its stored (redacted) events; None if it has none."""
    readings: list[tuple[str, Reading]] = []
    for event_id, source, path, record in store.events_of(key):
        adapter = registry.by_name(source)
        if adapter is None:
            continue
        hint = base_name(Path(path)).removesuffix(".jsonl") if source == "continue" else None
        readings.append((event_id, adapter.read(orjson.loads(record), hint)))
    return fold(key, readings) if readings else None
