"""Scheduled upkeep: expire old raw events, compress telemetry files skilld has fully read, vacuum SQLite."""

from __future__ import annotations

import gzip
import logging
import os
import shutil
import threading
import time
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

from daemon.config import RetentionConfig
from storage.events import EventStore

log = logging.getLogger(__name__)

DAY = 86400.0


def expire(
    store: EventStore, config: RetentionConfig, lock: threading.RLock, scored_seq: int, stop: Callable[[], bool]
) -> dict[str, int]:
    """Delete raw events older than `retention.events_days` (skills, scores and the dataset stay).

    Whole interactions only, and only those already scored and not waiting for extraction. Their ids
    stay as tombstones, so reading the same lines again (a copy, a compressed rotation) adds nothing.
    """
    cutoff = (datetime.now(UTC) - timedelta(days=config.events_days)).isoformat()
    with lock:
        events, dead = store.expirable(cutoff, scored_seq)
    counts = {"events": 0, "dead_letters": 0}
    for table, ids, name in (("events", events, "events"), ("dead_letters", dead, "dead_letters")):
        for start in range(0, len(ids), 5000):
            if stop():
                return counts
            with lock:  # a chunk at a time: ingestion and requests go on in between
                counts[name] += store.bury(table, ids[start : start + 5000])
    return counts


def _open_elsewhere(path: Path) -> bool:
    """Whether another process we can see has the file open (a writer that would lose its appends)."""
    try:
        target = os.stat(path)
    except OSError:
        return False
    me = str(os.getpid())
    for pid in os.listdir("/proc"):
        if not pid.isdigit() or pid == me:
            continue
        try:
            descriptors = os.scandir(f"/proc/{pid}/fd")
        except OSError:
            continue
        with descriptors:
            for entry in descriptors:
                try:
                    st = os.stat(entry.path)
                except OSError:
                    continue
                if (st.st_dev, st.st_ino) == (target.st_dev, target.st_ino):
                    return True
    return False


def compress(
    store: EventStore, config: RetentionConfig, lock: threading.RLock, stop: Callable[[], bool]
) -> dict[str, int]:
    """Gzip telemetry files read to their end and untouched for `retention.compress_after_days`.

    Only with `retention.manage_telemetry = true`. The file is first renamed to a free rotation name
    (`x.jsonl.N`), so a writer that opens it by name from then on starts a new file; a writer that kept it
    open and appended meanwhile leaves it uncompressed, to be read as a rotation. The compressed file keeps
    its identity (first line and bytes), so the tailer knows it as read and never reads it again.
    """
    result = {"compressed": 0, "bytes_saved": 0, "failed": 0}
    if not config.manage_telemetry:
        return result
    cutoff = time.time() - config.compress_after_days * DAY
    with lock:
        rows = [r for r in store.all_files() if not r.compressed and r.dev is not None]
    for row in rows:
        if stop():
            break
        path = Path(row.path)
        try:
            saved = _compress_one(path, (row.dev, row.inode), row.offset, cutoff)
        except OSError as exc:  # a read-only or full filesystem: this file stays as it is
            result["failed"] += 1
            log.warning("cannot compress a telemetry file", extra={"path": str(path), "error": str(exc)})
            continue
        if saved is not None:
            result["compressed"] += 1
            result["bytes_saved"] += saved
    return result


def _free_rotation(path: Path) -> Path:
    number = 1
    while path.with_name(f"{path.name}.{number}").exists() or path.with_name(f"{path.name}.{number}.gz").exists():
        number += 1
    return path.with_name(f"{path.name}.{number}")


def _compress_one(path: Path, identity: tuple[int | None, int | None], offset: int, cutoff: float) -> int | None:
    """Compress one file if it is fully read and idle; return the bytes saved, or None if left alone."""
    try:
        st = path.stat()
    except OSError:
        return None
    if (st.st_dev, st.st_ino) != identity or st.st_size != offset or st.st_mtime > cutoff:
        return None  # replaced, not fully read, or written lately
    if _open_elsewhere(path):
        return None
    rotated = _free_rotation(path)
    os.rename(path, rotated)
    target = rotated.with_name(rotated.name + ".gz")
    # Not storage/files.py: the compressed file keeps the telemetry file's own mode and times (it is the
    # user's tool's file, not skilld's), and a file that changes meanwhile abandons the replacement.
    partial = rotated.with_name(f".{rotated.name}.gz.partial")
    try:
        with open(rotated, "rb") as source, gzip.open(partial, "wb") as sink:
            shutil.copyfileobj(source, sink, 1 << 20)
        with open(partial, "rb") as handle:
            os.fsync(handle.fileno())
        os.chmod(partial, st.st_mode & 0o777)
        os.utime(partial, ns=(st.st_atime_ns, st.st_mtime_ns))
        after = rotated.stat()
        if after.st_size != st.st_size or after.st_mtime_ns != st.st_mtime_ns:
            return None  # appended through an open descriptor: it stays a plain rotation, read as usual
        os.replace(partial, target)
    finally:
        partial.unlink(missing_ok=True)
    rotated.unlink()
    log.info("telemetry file compressed", extra={"path": str(path), "into": target.name, "bytes": st.st_size})
    return st.st_size - target.stat().st_size


def vacuum(store: EventStore, lock: threading.RLock) -> dict[str, Any]:
    """Give deleted pages back to the filesystem and refresh the query planner's statistics."""
    with lock:
        before = store.database_bytes()
        store.vacuum()
        return {"database_bytes_before": before, "database_bytes": store.database_bytes()}
