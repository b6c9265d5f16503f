"""`skilld status`: counts and health of every stage, read from the stores."""

from __future__ import annotations

import os
from pathlib import Path, PurePosixPath
from typing import Any

from storage.db import schema_version
from storage.events import EventStore


def _lag(path: str, dev: int | None, inode: int | None, offset: int, compressed: bool) -> int:
    """Bytes of a file not read yet (0 for a file gone, replaced, or compressed and read)."""
    if compressed or dev is None:
        return 0
    try:
        st = os.stat(path)
    except OSError:
        return 0
    if (st.st_dev, st.st_ino) != (dev, inode):
        return 0
    return max(0, st.st_size - offset)


def dataset_examples(home: Path) -> int:
    """Records in the fine-tuning dataset that may be trained on (retired ones left out)."""
    path = home / "datasets" / "finetune.jsonl"
    if not path.exists():
        return 0
    with open(path, "rb") as handle:
        # The encoder writes this key with bare quotes; inside a string value its quotes would be escaped.
        return sum(1 for line in handle if line.strip() and b'"retired": {' not in line)


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

    for row in store.grouped('SELECT f.stream, COUNT(*), SUM(f."offset"), SUM(f.lines) FROM files f GROUP BY f.stream'):
        entry = source(row[0])
        entry["files"], entry["bytes_read"], entry["lines"] = row[1], row[2] or 0, row[3] or 0
    for path, dev, inode, offset, compressed, stream in store.grouped(
        'SELECT path, dev, inode, "offset", compressed, stream FROM files'
    ):
        source(stream)["lag_bytes"] += _lag(path, dev, inode, offset, bool(compressed))
    for stream, count in store.grouped(
        "SELECT f.stream, COUNT(*) FROM dead_letters d JOIN files f ON f.id = d.file_id GROUP BY f.stream"
    ):
        source(stream)["dead_letters"] = count
    for stream, kind, count in store.grouped(
        "SELECT f.stream, e.type, COUNT(*) FROM events e JOIN files f ON f.id = e.file_id GROUP BY f.stream, e.type"
    ):
        entry = source(stream)
        entry["events"] += count
        entry["types"][kind] = count
    return {
        "home": str(home),
        "schema_version": schema_version(store.conn),
        "events": store.scalar("SELECT COUNT(*) FROM events"),
        "interactions": store.scalar(
            "SELECT COUNT(DISTINCT interaction_key) FROM events WHERE interaction_key IS NOT NULL"
        ),
        "dead_letters": store.scalar("SELECT COUNT(*) FROM dead_letters"),
        "dataset_examples": dataset_examples(home),
        "lag_bytes": sum(s["lag_bytes"] for s in sources.values()),
        "acceptance": acceptance(store),
        "sources": sorted(sources.values(), key=lambda s: str(s["name"])),
    }
