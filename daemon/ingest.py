"""Turning lines into stored events: parse, redact, adapt, and commit with the offsets they came from."""

from __future__ import annotations

import hashlib
import logging
import time
from collections.abc import Callable
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

import orjson

from daemon.adapters.base import Adapter, AdapterError
from daemon.adapters.registry import AdapterRegistry, unknown_reading
from daemon.interaction import OWN_KEY, FileState, Reading, as_utc
from daemon.privacy import Privacy, unescape_json_text
from daemon.sources.files import RawLine, open_binary, tail_hash
from daemon.sources.tailer import FollowedFile, Tailer
from storage.events import Batch, DeadLetterRow, EventRow, EventStore, FileRow, LinkRow, Progress

log = logging.getLogger(__name__)

# How much of a file's beginning shows what a file of broken lines really is.
FORMAT_WINDOW = 16384
_JSON_KINDS = {list: "an array", str: "a string", int: "a number", float: "a number", bool: "a boolean"}


@dataclass
class IngestReport:
    """What one ingestion run did."""

    files: int = 0
    lines: int = 0
    events: int = 0
    duplicates: int = 0
    dead_letters: int = 0
    pending_bytes: int = 0

    def as_dict(self) -> dict[str, int]:
        return asdict(self)

    def add(self, other: IngestReport) -> None:
        """Add another run's counts to this one."""
        for name, value in asdict(other).items():
            setattr(self, name, getattr(self, name) + value)


@dataclass(slots=True)
class Interpreted:
    """A line read as an event, and the other interactions it informs."""

    event: EventRow
    links: list[LinkRow]


def event_id(row: FileRow, line: RawLine) -> str:
    """A stable id for the line at one offset of one file identity (the same in a copy of the file).

    File identity and offset come first, so ids of one file grow with its offset and SQLite's unique
    index on them is appended to rather than written at random (measured: 2.5x faster inserts); a
    hash of the line's bytes follows, so different content at a reused offset is a different event.
    """
    content = hashlib.blake2b(line.digest if line.too_long else line.data, digest_size=5).hexdigest()
    return f"{row.fingerprint[:12]}{row.generation:04x}{line.offset:012x}{content}"


class Ingestor:
    """Reads followed files in bounded batches and commits each batch with its offsets in one transaction."""

    def __init__(
        self,
        store: EventStore,
        tailer: Tailer,
        privacy: Privacy,
        registry: AdapterRegistry,
        dead_letter_bytes: int,
        max_line_bytes: int,
    ) -> None:
        self.store = store
        self.tailer = tailer
        self.privacy = privacy
        self.registry = registry
        self.dead_letter_bytes = dead_letter_bytes
        self.max_line_bytes = max_line_bytes
        self._formats: dict[int, str | None] = {}  # per file id: what a file of broken lines really is

    # -- one line ------------------------------------------------------------------------------------------
    def dead_letter(self, row: FileRow, line: RawLine, eid: str, reason: str) -> DeadLetterRow:
        """A dead-letter row: where the line was, why, and its redacted, capped beginning."""
        window = unescape_json_text(line.data[: self.dead_letter_bytes * 2].decode("utf-8", "replace"))
        content = self.privacy.redactor.text(window)[: self.dead_letter_bytes]
        return DeadLetterRow(eid, row.id, line.offset, line.length, reason, content)

    def interpret(
        self, row: FileRow, adapter: Adapter | None, hint: str | None, line: RawLine, state: FileState | None = None
    ) -> Interpreted | DeadLetterRow | None:
        """The event (with its links) or the dead letter one line of a file becomes, or None for a blank line.

        `state` is the file's adapter state when its lines are read in order (None when one line is
        read alone, as `deadletters replay` does).
        """
        eid = event_id(row, line)
        if line.too_long:
            return self.dead_letter(
                row, line, eid, f"line of {line.length} bytes is longer than telemetry.max_line_bytes"
            )
        try:
            text = line.data.decode("utf-8")
        except UnicodeDecodeError as exc:
            return self.dead_letter(row, line, eid, f"invalid UTF-8 at byte {exc.start}")
        if not text.strip():
            return None
        try:
            obj = orjson.loads(line.data)
        except orjson.JSONDecodeError as exc:
            reason = f"invalid JSON at byte {exc.pos}: {exc.msg}"
            known = self.known_format(row)
            return self.dead_letter(row, line, eid, f"{reason}; {known}" if known else reason)
        if not isinstance(obj, dict):
            kind = "null" if obj is None else _JSON_KINDS.get(type(obj), type(obj).__name__)
            return self.dead_letter(row, line, eid, f"not a JSON object but {kind}")
        try:
            record, user, changed = self.privacy.record(obj, line.data)
            reading = self._read(adapter, hint, record, state)
        except AdapterError as exc:
            return self.dead_letter(row, line, eid, str(exc))
        except RecursionError:
            return self.dead_letter(row, line, eid, "nesting too deep to read")
        key = reading.key
        if key == OWN_KEY:
            key = f"{reading.source}:{eid}"
        stamp = as_utc(reading.timestamp).isoformat() if reading.timestamp is not None else None
        stored = orjson.dumps(record).decode() if changed else text
        event = EventRow(eid, row.id, line.offset, reading.source, reading.type, key, user, stamp, stored)
        return Interpreted(event, [LinkRow(eid, link) for link in reading.links if link != key])

    def known_format(self, row: FileRow) -> str | None:
        """What a file that is not JSON lines turns out to be (pretty-printed OpenTelemetry spans), once per file."""
        if row.id not in self._formats:
            try:
                with open_binary(Path(row.path)) as handle:
                    head = handle.read(FORMAT_WINDOW)
            except OSError:
                head = b""
            diagnosis = self.registry.diagnose(head)
            self._formats[row.id] = diagnosis[1] if diagnosis else None
            if diagnosis is not None:
                log.warning("telemetry file is not JSON lines", extra={"path": row.path, "reason": diagnosis[1]})
                if row.stream is None:
                    row.stream = diagnosis[0]
                    self.store.set_stream(row.id, row.stream)
        return self._formats[row.id]

    def _read(
        self, adapter: Adapter | None, hint: str | None, record: dict[str, Any], state: FileState | None
    ) -> Reading:
        if adapter is not None:
            return adapter.read(record, hint, state)
        stream = self.registry.by_shape(record)
        if stream is not None:
            try:
                return stream.adapter.read(record, hint, state)
            except AdapterError:
                if stream.certain:
                    raise
                # looks like a known stream but is not one: an object of an unknown stream
        return unknown_reading(record)

    # -- batches -------------------------------------------------------------------------------------------
    def fill(self, batch: Batch, followed: FollowedFile, max_lines: int) -> int:
        """Read up to max_lines lines of one file into a batch; return how many were read."""
        lines = self.tailer.read(followed, max_lines)
        if not lines:
            return 0
        stream: str | None = None
        for line in lines:
            try:
                result = self.interpret(followed.row, followed.adapter, followed.hint, line, followed.state)
            except Exception as exc:  # a bug of ours must not stop ingestion or lose the line
                log.exception("internal error reading a line", extra={"path": str(followed.path)})
                eid = event_id(followed.row, line)
                result = self.dead_letter(followed.row, line, eid, f"internal error: {type(exc).__name__}")
            if result is None:
                continue
            if isinstance(result, Interpreted):
                batch.events.append(result.event)
                batch.links.extend(result.links)
                stream = result.event.source
            else:
                batch.dead_letters.append(result)
        reader = followed.reader
        progress = batch.progress.get(followed.row.id)
        count = len(lines) + (progress.lines if progress else 0)
        state = orjson.dumps(followed.state).decode() if followed.state else None
        batch.progress[followed.row.id] = Progress(
            reader.position, tail_hash(reader.tail), len(reader.tail), count, state
        )
        batch.lines += len(lines)
        if followed.row.stream is None:
            # A file is counted under the stream its name selects, else the one its first records show.
            stream = followed.adapter.name if followed.adapter is not None else stream
            if stream is not None:
                followed.row.stream = stream
                self.store.set_stream(followed.row.id, stream)
        return len(lines)

    def commit(self, batch: Batch, report: IngestReport) -> None:
        """Commit a batch and count what it added."""
        if not batch.progress:
            return
        added = self.store.commit(batch)
        report.lines += batch.lines
        report.events += added
        report.duplicates += len(batch.events) - added
        report.dead_letters += len(batch.dead_letters)

    def pump(
        self,
        files: list[FollowedFile],
        max_lines: int,
        max_seconds: float,
        report: IngestReport,
        keep_going: Callable[[], bool] | None = None,
    ) -> int:
        """Read the given files into batches bounded in lines and time, committing each; return lines read.

        `keep_going` is asked after each commit; when it says no (the daemon is stopping) the pump returns
        with everything read so far committed.
        """
        total = 0
        batch = Batch()
        deadline = time.monotonic() + max_seconds
        for followed in files:
            if self.tailer.changed_identity(followed):
                replacement = self.tailer.reidentify(followed)
                if replacement is None:
                    continue
                followed = replacement
            while True:
                room = max_lines - batch.lines
                got = self.fill(batch, followed, min(room, 2000))
                total += got
                if batch.lines >= max_lines or time.monotonic() >= deadline:
                    self.commit(batch, report)
                    batch = Batch()
                    deadline = time.monotonic() + max_seconds
                    if keep_going is not None and not keep_going():
                        return total
                if got == 0:
                    break
        self.commit(batch, report)
        return total
