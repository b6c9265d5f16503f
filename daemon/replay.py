"""`skilld deadletters replay`: read dead-lettered lines again from their files, through today's adapters."""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING

from daemon.ingest import Interpreted
from daemon.sources.files import LineReader, fingerprint, open_binary
from storage.events import EventStore

if TYPE_CHECKING:
    from daemon.ingest import Ingestor


def replay_dead_letters(store: EventStore, ingestor: Ingestor) -> dict[str, int]:
    """Re-read every dead letter's line from its file; those that now read become events."""
    counts = {"replayed": 0, "recovered": 0, "still_failing": 0, "source_gone": 0}
    for letter in store.dead_letters():
        counts["replayed"] += 1
        row = store.file(letter["file_id"])
        path = Path(letter["path"])
        try:
            handle = open_binary(path)
        except OSError:
            counts["source_gone"] += 1
            continue
        with handle:
            compressed = path.name.endswith(".gz")
            if row is None or fingerprint(handle, compressed) != row.fingerprint:
                counts["source_gone"] += 1
                continue
            reader = LineReader(handle, letter["offset"], compressed, ingestor.max_line_bytes)
            lines = reader.read(1)
        if not lines:
            counts["source_gone"] += 1
            continue
        adapter, hint = ingestor.registry.for_file(path)
        result = ingestor.interpret(row, adapter, hint, lines[0])
        if result is None:
            store.resolve_dead_letter(letter["id"], [])
            counts["recovered"] += 1
        elif isinstance(result, Interpreted):
            store.resolve_dead_letter(letter["id"], [result.event])
            counts["recovered"] += 1
        else:
            store.update_dead_letter(letter["id"], result.reason)
            counts["still_failing"] += 1
    return counts
