"""Scheduled upkeep: expire old raw events, compress telemetry files skilld has fully read, vacuum SQLite."""

from __future__ import annotations

import gzip
import logging
import os
import shutil
import threading
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

from daemon.config import RetentionConfig
from storage.events import EventStore

log = logging.getLogger(__name__)

DAY = 86400.0


def expire(store: EventStore, config: RetentionConfig, lock: threading.RLock) -> dict[str, int]:
    """Delete raw events older than `retention.events_days` (skills, scores and the dataset stay)."""
    cutoff = (datetime.now(UTC) - timedelta(days=config.events_days)).isoformat()
    with lock:
        return store.expire(cutoff)


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


def compress(store: EventStore, config: RetentionConfig, lock: threading.RLock) -> dict[str, int]:
    """Gzip telemetry files read to their end and untouched for `retention.compress_after_days`.

    Only with `retention.manage_telemetry = true`. The compressed file keeps its identity (the same first
    line and bytes), so the tailer knows it as read and never reads it again.
    """
    if not config.manage_telemetry:
        return {"compressed": 0, "bytes_saved": 0}
    cutoff = time.time() - config.compress_after_days * DAY
    with lock:
        rows = [r for r in store.all_files() if not r.compressed and r.dev is not None]
    compressed = saved = 0
    for row in rows:
        path = Path(row.path)
        try:
            st = path.stat()
        except OSError:
            continue
        if (st.st_dev, st.st_ino) != (row.dev, row.inode) or st.st_size != row.offset or st.st_mtime > cutoff:
            continue  # replaced, not fully read, or written lately
        target = path.with_name(path.name + ".gz")
        if target.exists() or _open_elsewhere(path):
            continue
        partial = path.with_name(f".{path.name}.gz.partial")
        with open(path, "rb") as source, gzip.open(partial, "wb") as sink:
            shutil.copyfileobj(source, sink, 1 << 20)
        with open(partial, "rb") as handle:
            os.fsync(handle.fileno())
        os.chmod(partial, st.st_mode & 0o777)
        os.utime(partial, ns=(st.st_atime_ns, st.st_mtime_ns))
        if path.stat().st_mtime_ns != st.st_mtime_ns or path.stat().st_size != st.st_size:
            partial.unlink()  # written while we compressed: leave it for another day
            continue
        os.replace(partial, target)
        path.unlink()
        compressed += 1
        saved += st.st_size - target.stat().st_size
        log.info("telemetry file compressed", extra={"path": str(path), "bytes": st.st_size})
    return {"compressed": compressed, "bytes_saved": saved}


def vacuum(store: EventStore, lock: threading.RLock) -> dict[str, Any]:
    """Give deleted pages back to the filesystem and refresh the query planner's statistics."""

    def size() -> int:
        return int(store.conn.execute("PRAGMA page_count").fetchone()[0]) * int(
            store.conn.execute("PRAGMA page_size").fetchone()[0]
        )

    with lock:
        before = size()
        store.conn.execute("VACUUM")
        store.conn.execute("PRAGMA wal_checkpoint(TRUNCATE)")
        store.conn.execute("PRAGMA optimize")
        return {"database_bytes_before": before, "database_bytes": size()}
