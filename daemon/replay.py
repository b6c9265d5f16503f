"""`skilld deadletters replay`: read dead-lettered lines again from their files, through today's adapters."""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING, BinaryIO

from daemon.adapters.base import Adapter, SessionAdapter
from daemon.ingest import Interpreted
from daemon.interaction import FileState
from daemon.sources.files import LineReader, fingerprint, open_binary
from storage.events import EventStore, FileRow

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
            adapter, hint = ingestor.registry.for_file(path)
            state = _state_before(ingestor, row, adapter, hint, handle, letter["offset"], compressed)
            reader = LineReader(handle, letter["offset"], compressed, ingestor.max_line_bytes)
            lines = reader.read(1)
        if not lines:
            counts["source_gone"] += 1
            continue
        result = ingestor.interpret(row, adapter, hint, lines[0], state)
        if result is None:
            store.resolve_dead_letter(letter["id"], [])
            counts["recovered"] += 1
        elif isinstance(result, Interpreted):
            store.resolve_dead_letter(letter["id"], [result.event], result.links)
            counts["recovered"] += 1
        else:
            store.update_dead_letter(letter["id"], result.reason)
            counts["still_failing"] += 1
    return counts


def _state_before(
    ingestor: Ingestor,
    row: FileRow,
    adapter: Adapter | None,
    hint: str,
    handle: BinaryIO,
    offset: int,
    compressed: bool,
) -> FileState | None:
    """The adapter state a session file had just before an offset, rebuilt by reading the lines before it.

    Only session streams (Claude Code, Codex) keep state; a line of theirs read alone would not know the
    turn it belongs to.
    """
    stream = adapter or (ingestor.registry.by_name(row.stream) if row.stream else None)
    if not isinstance(stream, SessionAdapter):
        return None
    state: FileState = {}
    reader = LineReader(handle, 0, compressed, ingestor.max_line_bytes)
    while reader.position < offset and (lines := reader.read(2000)):
        for line in lines:
            if line.offset >= offset:
                return state
            ingestor.interpret(row, adapter, hint, line, state)
    return state
