"""One physical telemetry file: its identity (first-line fingerprint), and reading complete lines from it."""

from __future__ import annotations

import gzip
import hashlib
import os
from dataclasses import dataclass
from pathlib import Path
from typing import BinaryIO

# The first line identifies a file; a longer first line is identified by this many leading bytes.
FINGERPRINT_BYTES = 64 * 1024
# Bytes kept of a line that is too long, so its dead letter can show how it began.
LONG_LINE_HEAD = 16 * 1024
TAIL_BYTES = 64
_CHUNK = 1 << 20


def is_compressed(path: Path) -> bool:
    """Whether a telemetry file is a gzip-compressed rotation."""
    return path.name.endswith(".gz")


def open_binary(path: Path) -> BinaryIO:
    """Open a telemetry file for reading its (decompressed) bytes."""
    if is_compressed(path):
        return gzip.open(path, "rb")  # type: ignore[return-value]
    return open(path, "rb")


def tail_hash(tail: bytes) -> str:
    """Hash of the bytes just before an offset, to tell the same file from a rewritten one."""
    return hashlib.blake2b(tail, digest_size=12).hexdigest()


def fingerprint(handle: BinaryIO, compressed: bool) -> str | None:
    """The identity of a file's content: a hash of its first complete line (None until there is one)."""
    handle.seek(0)
    head = handle.readline(FINGERPRINT_BYTES)
    if not head or (not head.endswith(b"\n") and len(head) < FINGERPRINT_BYTES and not compressed):
        return None
    return hashlib.blake2b(head, digest_size=12).hexdigest()


def tail_matches(handle: BinaryIO, offset: int, expected: str | None, length: int, compressed: bool) -> bool:
    """Whether the bytes before offset are those a previous read ended on."""
    if offset == 0:
        return True
    if expected is None or length <= 0 or length > offset:
        return False
    if not compressed and os.fstat(handle.fileno()).st_size < offset:
        return False
    try:
        handle.seek(offset - length)
        data = handle.read(length)
    except (OSError, EOFError):
        return False
    return len(data) == length and tail_hash(data) == expected


@dataclass(slots=True)
class RawLine:
    """One complete line: where it is, its bytes (the head only when too long), its hash when too long."""

    offset: int
    end: int
    data: bytes
    length: int
    too_long: bool = False
    digest: bytes = b""


class LineReader:
    """Reads complete lines from an open handle, from a position, never consuming half a line."""

    def __init__(self, handle: BinaryIO, position: int, compressed: bool, max_line_bytes: int) -> None:
        self.handle = handle
        self.position = position
        self.compressed = compressed
        self.max_line_bytes = max_line_bytes
        self.tail = b""
        self.pending = 0  # bytes of an unterminated last line, left for the writer to finish

    def read(self, max_lines: int) -> list[RawLine]:
        """Up to max_lines complete lines after the position; the position moves past them."""
        handle = self.handle
        handle.seek(self.position)
        lines: list[RawLine] = []
        limit = self.max_line_bytes + 1
        self.pending = 0
        while len(lines) < max_lines:
            start = self.position
            data = handle.readline(limit)
            if not data:
                break
            if data.endswith(b"\n"):
                self.position += len(data)
                lines.append(RawLine(start, self.position, data[:-1], len(data) - 1))
                continue
            if len(data) >= limit:
                long_line = self._finish_long_line(start, data)
                if long_line is None:
                    break
                lines.append(long_line)
                continue
            if self.compressed:  # a finished rotation: its last line is complete even without a newline
                self.position += len(data)
                lines.append(RawLine(start, self.position, data, len(data)))
                continue
            self.pending = len(data)
            break
        if lines:
            last = lines[-1]
            terminated = last.end == last.offset + last.length + 1
            self.tail = (last.data + b"\n")[-TAIL_BYTES:] if terminated and not last.too_long else self._read_tail()
        return lines

    def _read_tail(self) -> bytes:
        size = min(TAIL_BYTES, self.position)
        self.handle.seek(self.position - size)
        data = self.handle.read(size)
        self.handle.seek(self.position)
        return data

    def _finish_long_line(self, start: int, head: bytes) -> RawLine | None:
        """Stream past a line longer than the limit, hashing it; None if it has no newline yet."""
        digest = hashlib.blake2b(head, digest_size=16)
        length = len(head)
        terminated = False
        while chunk := self.handle.read(_CHUNK):
            newline = chunk.find(b"\n")
            if newline >= 0:
                digest.update(chunk[:newline])
                length += newline
                terminated = True
                break
            digest.update(chunk)
            length += len(chunk)
        if not terminated and not self.compressed:
            self.pending = length
            return None
        self.position = start + length + int(terminated)
        self.handle.seek(self.position)
        return RawLine(start, self.position, head[:LONG_LINE_HEAD], length, True, digest.digest())
