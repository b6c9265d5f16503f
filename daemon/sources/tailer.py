"""Following telemetry files the way Filebeat does: one reader per file, identity by content, safe rotation.

A file is known by the fingerprint of its first line plus a generation (bumped when it is truncated in
place), so a rename, a restart, a copy or a compressed rotation resumes where its twin stopped, and new
content after a truncation is never mistaken for the old.
"""

from __future__ import annotations

import logging
import os
import time
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import BinaryIO

import orjson

from daemon.adapters.base import Adapter
from daemon.adapters.registry import AdapterRegistry
from daemon.faults import DISK_FULL
from daemon.interaction import FileState
from daemon.sources.files import (
    LineReader,
    RawLine,
    fingerprint,
    is_compressed,
    open_binary,
    tail_hash,
    tail_matches,
)
from storage.events import EventStore, FileRow

log = logging.getLogger(__name__)


def is_telemetry_file(name: str) -> bool:
    """`*.jsonl`, and its rotations `*.jsonl.1`, `*.jsonl-3`, `*.jsonl.gz`, `*.jsonl.2.gz`."""
    stem = name[:-3] if name.endswith(".gz") else name
    if stem.endswith(".jsonl"):
        return True
    base, sep, suffix = stem.rpartition(".jsonl")
    return bool(sep and base) and suffix[:1] in ".-" and suffix[1:].isdigit()


def find_files(paths: Iterable[Path], onerror: Callable[[OSError], None] | None = None) -> Iterator[Path]:
    """Telemetry files under the given files and directories, recursively, oldest first per directory;
    a folder that cannot be listed goes to `onerror`."""
    for path in paths:
        if path.is_file():
            yield path
            continue
        found: list[tuple[float, str, Path]] = []
        for root, dirs, names in os.walk(path, onerror=onerror):
            dirs[:] = [d for d in dirs if not d.startswith(".")]
            for name in names:
                if is_telemetry_file(name):
                    full = Path(root) / name
                    try:
                        found.append((full.stat().st_mtime, name, full))
                    except FileNotFoundError:
                        continue
        yield from (p for _, _, p in sorted(found))


@dataclass
class FollowedFile:
    """An open telemetry file: its registry row, its reader, and the adapter its name selects."""

    row: FileRow
    path: Path
    key: tuple[int, int]
    reader: LineReader
    adapter: Adapter | None
    hint: str | None
    compressed: bool
    seen_at: float = field(default_factory=time.monotonic)
    active_at: float = field(default_factory=time.monotonic)
    size: int = -1
    state: FileState = field(default_factory=dict)  # the adapter's, committed with the offset

    def close(self) -> None:
        self.reader.handle.close()


class Tailer:
    """Follows every telemetry file under some paths; hands out complete lines, oldest files first."""

    def __init__(
        self, store: EventStore, registry: AdapterRegistry, max_line_bytes: int, close_inactive: float = 300.0
    ) -> None:
        self.store = store
        self.registry = registry
        self.max_line_bytes = max_line_bytes
        self.close_inactive = close_inactive
        self.files: dict[tuple[int, int], FollowedFile] = {}
        self._finished: set[tuple[int, int, int, int]] = set()  # compressed files read to their end
        # Files and folders that cannot be read now, with why: said once in the log, shown in health.
        self.unreadable: dict[Path, str] = {}
        self._said: dict[Path, str] = {}  # what the previous scan found unreadable (and the log said)

    # -- discovering ---------------------------------------------------------------------------------------
    def scan(self, paths: Iterable[Path]) -> list[FollowedFile]:
        """Follow every telemetry file under paths (new ones, renamed ones); return those found."""
        found: list[FollowedFile] = []
        now = time.monotonic()
        self._said, self.unreadable = self.unreadable, {}  # found again by this scan, or readable now
        for path in find_files(paths, lambda exc: self._cannot_read(Path(exc.filename or "?"), exc)):
            followed = self.follow(path)
            if followed is not None:
                followed.seen_at = now
                found.append(followed)
        return found

    def follow(self, path: Path) -> FollowedFile | None:
        """Start (or keep) following one file; None if it cannot be identified yet or was read already."""
        try:
            st = path.stat()
        except (FileNotFoundError, NotADirectoryError):
            return None
        key = (st.st_dev, st.st_ino)
        followed = self.files.get(key)
        if followed is not None:
            if followed.path != path:
                log.info("file renamed", extra={"from": str(followed.path), "to": str(path)})
                followed.path = path
                self.store.move_file(followed.row.id, str(path))
            return followed
        compressed = is_compressed(path)
        if compressed and (*key, st.st_size, st.st_mtime_ns) in self._finished:
            return None
        try:
            handle = open_binary(path)
        except OSError as exc:
            self._cannot_read(path, exc)
            return None
        try:
            row = self._identify(handle, path, key, compressed)
        except (OSError, EOFError) as exc:
            handle.close()
            if isinstance(exc, OSError) and exc.errno in DISK_FULL:
                raise  # a full disk or a locked database: the stage pauses (daemon/loop.py)
            self._cannot_read(path, exc)
            return None
        self.unreadable.pop(path, None)
        if row is None:
            handle.close()
            return None
        adapter, hint = self.registry.for_file(path)
        reader = LineReader(handle, row.offset, compressed, self.max_line_bytes)
        followed = FollowedFile(row, path, key, reader, adapter, hint, compressed)
        if row.state:
            followed.state = orjson.loads(row.state)
        self.files[key] = followed
        return followed

    def _identify(self, h: BinaryIO, path: Path, key: tuple[int, int], compressed: bool) -> FileRow | None:
        """The registry row for an opened file: its own, its twin's (a copy), or a new one."""
        fp = fingerprint(h, compressed)
        if fp is None:
            return None
        dev, inode = key
        own = self.store.file_by_inode(dev, inode)
        if own is not None and own.fingerprint == fp:
            if tail_matches(h, own.offset, own.tail_hash, own.tail_len, compressed):
                if own.path != str(path):
                    self.store.move_file(own.id, str(path))
                    own.path = str(path)
                return own
            # Truncated in place (copytruncate) and maybe written again: what follows is new content.
            generation = self.store.max_generation(fp) + 1
            log.info("file truncated; reading it again as new content", extra={"path": str(path)})
            return self.store.add_file(fp, generation, str(path), dev, inode, compressed, own.stream)
        twins = sorted(self.store.files_by_fingerprint(fp), key=lambda r: (r.offset, r.generation), reverse=True)
        for twin in twins:
            if twin.offset > 0 and tail_matches(h, twin.offset, twin.tail_hash, twin.tail_len, compressed):
                return self.store.add_file(
                    fp,
                    twin.generation,
                    str(path),
                    dev,
                    inode,
                    compressed,
                    twin.stream,
                    twin.offset,
                    twin.tail_hash,
                    twin.tail_len,
                    twin.state,
                )
        generation = max((t.generation for t in twins), default=0)
        return self.store.add_file(fp, generation, str(path), dev, inode, compressed, None)

    def _cannot_read(self, path: Path, exc: BaseException) -> None:
        """Note a file or folder that cannot be read; the log says it once, not at every rescan.

        A folder that is gone is not noted here: the configured paths are checked on their own."""
        if isinstance(exc, FileNotFoundError):
            return
        error = getattr(exc, "strerror", None) or str(exc)
        if error not in (self._said.get(path), self.unreadable.get(path)):
            log.warning("cannot read telemetry", extra={"path": str(path), "error": error})
        self.unreadable[path] = error

    # -- reading ---------------------------------------------------------------------------------------------
    def changed_identity(self, followed: FollowedFile) -> bool:
        """Whether an open file was truncated or rewritten under its reader (then it is re-identified)."""
        if followed.compressed:
            return False
        try:
            size = os.fstat(followed.reader.handle.fileno()).st_size
        except OSError:
            return False
        reader = followed.reader
        if size == followed.size:
            return False
        followed.size = size
        if size < reader.position:
            return True
        if reader.position and reader.tail:
            return not tail_matches(reader.handle, reader.position, tail_hash(reader.tail), len(reader.tail), False)
        return False

    def reidentify(self, followed: FollowedFile) -> FollowedFile | None:
        """Drop a truncated file's reader and follow the file again from its new identity."""
        self.forget(followed)
        return self.follow(followed.path) if followed.path.exists() else None

    def forget(self, followed: FollowedFile) -> None:
        """Stop following a file."""
        followed.close()
        self.files.pop(followed.key, None)

    def read(self, followed: FollowedFile, max_lines: int) -> list[RawLine]:
        """The next complete lines of one file."""
        lines = followed.reader.read(max_lines)
        if lines:
            followed.active_at = time.monotonic()
        return lines

    def ordered(self) -> list[FollowedFile]:
        """Files to read, rotated-away ones first so an old file is read to its end before its successor."""
        latest = self._last_scan_floor()
        return sorted(self.files.values(), key=lambda f: (f.seen_at >= latest, f.row.id))

    def _last_scan_floor(self) -> float:
        return max((f.seen_at for f in self.files.values()), default=0.0)

    def retire(self, followed: FollowedFile) -> None:
        """Close files that are done: compressed ones read to the end, deleted ones drained, idle orphans."""
        if followed.reader.pending:
            return
        if followed.compressed:
            st = os.fstat(followed.reader.handle.fileno()) if hasattr(followed.reader.handle, "fileno") else None
            if st is not None:
                self._finished.add((*followed.key, st.st_size, st.st_mtime_ns))
            self.forget(followed)
            return
        try:
            links = os.fstat(followed.reader.handle.fileno()).st_nlink
        except OSError:
            links = 0
        idle = time.monotonic() - followed.active_at
        orphaned = followed.seen_at < self._last_scan_floor()
        if links == 0 or (orphaned and idle > self.close_inactive):
            self.forget(followed)

    def close(self) -> None:
        """Close every open file."""
        for followed in list(self.files.values()):
            followed.close()
        self.files.clear()
