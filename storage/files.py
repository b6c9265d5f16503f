"""Writing skilld's files so that a crash leaves the old content or the new, never half of either.

A file is replaced through a temporary file beside it (same directory, so the rename is atomic), fsynced
before the rename and owner-only: it may hold what people asked. A JSON-lines file grows by fsynced appends.
"""

from __future__ import annotations

import contextlib
import os
import tempfile
from collections.abc import Iterable, Iterator
from pathlib import Path

PRIVATE_FILE = 0o600
PRIVATE_DIR = 0o700


@contextlib.contextmanager
def replacing(path: Path) -> Iterator[Path]:
    """A temporary path to write `path`'s new content to; when the block ends it replaces `path`.

    The temporary file is hidden, unique (two writers never write into the same one) and owner-only; it is
    fsynced and renamed over `path`. An error in the block removes it and leaves `path` as it was. For
    writers that open the file themselves (a GGUF writer); else `write_atomic`.
    """
    fd, name = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".partial")
    os.close(fd)
    partial = Path(name)
    try:
        yield partial
        with open(partial, "rb") as handle:
            os.fsync(handle.fileno())
        os.chmod(partial, PRIVATE_FILE)
        os.replace(partial, path)
    finally:
        partial.unlink(missing_ok=True)


def write_atomic(path: Path, content: bytes | Iterable[str]) -> None:
    """Replace a file's content with bytes, or with lines of text (UTF-8, each with its newline)."""
    with replacing(path) as partial:
        fd = os.open(partial, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, PRIVATE_FILE)
        with os.fdopen(fd, "wb") as handle:
            if isinstance(content, bytes):
                handle.write(content)
            else:
                for line in content:
                    handle.write(line.encode("utf-8"))


def append_line(path: Path, line: str) -> None:
    """Append one line (UTF-8, its newline added) and fsync it; the file and its folder are made owner-only."""
    path.parent.mkdir(parents=True, exist_ok=True, mode=PRIVATE_DIR)
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_APPEND, PRIVATE_FILE)
    with os.fdopen(fd, "ab") as handle:
        handle.write(line.encode("utf-8") + b"\n")
        handle.flush()
        os.fsync(handle.fileno())
