"""`skilld status`: counts and health of every stage, read from the stores."""

from __future__ import annotations

import os
from pathlib import Path, PurePosixPath
from typing import Any

from storage.events import EventStore, FileRow


def _lag(row: FileRow) -> int:
    """Bytes of a file not read yet (0 for a file gone, replaced, or compressed and read)."""
    if row.compressed or row.dev is None:
        return 0
    try:
        st = os.stat(row.path)
    except OSError:
        return 0
    if (st.st_dev, st.st_ino) != (row.dev, row.inode):
        return 0
    return max(0, st.st_size - row.offset)


def dataset_examples(home: Path) -> int:
    """Records in the fine-tuning dataset that may be trained on (retired ones left out)."""
    from storage.datasets import Datasets  # its files only: no vector store, no model

    return Datasets.count_examples(home)


# Continue's acceptance signals: an editor suggestion shown, and whether the person kept it.
ACCEPTANCE_EVENTS = ("autocomplete", "editOutcome", "nextEditOutcome", "toolUsage")


def acceptance(store: EventStore) -> list[dict[str, Any]]:
    """Acceptance rate per signal, model and file type, the most shown first."""
    totals: dict[tuple[str, str, str], list[int]] = {}
    for kind, model, path, shown, accepted in store.acceptance_counts(ACCEPTANCE_EVENTS):
        suffix = PurePosixPath(path.replace("\\", "/")).suffix.lower() if path else ""
        counts = totals.setdefault((kind, model or "unknown", suffix or "none"), [0, 0])
        counts[0] += shown
        counts[1] += accepted
    rows = [
        {"signal": k, "model": m, "file_type": t, "shown": n, "accepted": a, "rate": round(a / n, 3)}
        for (k, m, t), (n, a) in totals.items()
    ]
    return sorted(rows, key=lambda r: (-r["shown"], r["signal"], r["model"], r["file_type"]))


def status_report(store: EventStore, home: Path) -> dict[str, Any]:
    """Every stage's counts, and per source: files, bytes read, lines, events, dead letters, lag."""
    sources: dict[str, dict[str, Any]] = {}

    def source(name: str | None) -> dict[str, Any]:
        key = name or "unidentified"
        return sources.setdefault(
            key,
            {
                "name": key,
                "files": 0,
                "bytes_read": 0,
                "lines": 0,
                "events": 0,
                "dead_letters": 0,
                "lag_bytes": 0,
                "types": {},
            },
        )

    for files in store.source_file_stats():
        entry = source(files.stream)
        entry["files"], entry["bytes_read"], entry["lines"] = files.files, files.bytes_read, files.lines
    for row in store.all_files():
        source(row.stream)["lag_bytes"] += _lag(row)
    for stream, count in store.dead_letters_by_stream().items():
        source(stream)["dead_letters"] = count
    for types in store.event_types_by_stream():
        entry = source(types.stream)
        entry["events"] += types.events
        entry["types"][types.type] = types.events
    return {
        "home": str(home),
        "schema_version": store.schema_version(),
        "events": store.count_events(),
        "interactions": store.count_interactions(),
        "dead_letters": store.count_dead_letters(),
        "dataset_examples": dataset_examples(home),
        "lag_bytes": sum(s["lag_bytes"] for s in sources.values()),
        "acceptance": acceptance(store),
        "sources": sorted(sources.values(), key=lambda s: str(s["name"])),
    }
