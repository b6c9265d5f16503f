"""Faults of the machine, not of skilld: told apart from bugs, each said in one line with what to do.

A full disk or an exceeded quota, a database locked by another process, a telemetry folder that cannot be
read or has gone, a model file that cannot be loaded, an LLM endpoint or a Qdrant server that does not
answer: the stage that met one pauses and retries (`daemon/health.py`); a command prints the line and exits
1. Anything else is a bug of ours and keeps its traceback.
"""

from __future__ import annotations

import errno
import os
import shutil
import sqlite3
from dataclasses import dataclass
from pathlib import Path

# What a stage asks for before it can go on after a full disk: a batch of events with its WAL, the vectors
# and the dataset lines it writes (measured batches stay well under this).
NEEDED_MB = 64
DATABASE = "skilld.db"  # in the home (storage/events.py)
DISK_FULL = (errno.ENOSPC, errno.EDQUOT)  # the OSError numbers of a full filesystem or an exceeded quota


@dataclass(frozen=True)
class Fault:
    """An environmental fault: its kind, the error as one line, and what the user should do."""

    kind: str  # disk_full, locked, unreadable, unwritable, missing, model, endpoint, vector_store
    error: str
    action: str
    path: str = ""  # the file or folder it happened on, when one is known


def internal(exc: BaseException) -> Fault:
    """A failure that is none of the above: a bug of ours (its traceback is in the log); the stage retries."""
    text = str(exc).splitlines()[0] if str(exc) else ""
    error = f"{type(exc).__name__}: {text}"[:300]
    return Fault("internal", error, "see the daemon's log and report it; skilld retries")


def command_line(fault: Fault) -> str:
    """The one line a command prints for a fault (after `skilld: `); it exits 1."""
    if fault.kind == "disk_full":
        return f"disk full writing {fault.path}: free space and run the command again (nothing was lost)"
    return f"{fault.error}: {fault.action}"


def mount_point(path: Path) -> Path:
    """The mount point of the filesystem holding `path` (or its nearest existing parent)."""
    path = path.absolute()
    while not path.exists() and path != path.parent:
        path = path.parent
    while not os.path.ismount(path) and path != path.parent:
        path = path.parent
    return path


def disk_full(where: Path) -> Fault:
    """The fault of a full filesystem under `where`, saying how much is free there now."""
    mount = mount_point(where)
    try:
        free = shutil.disk_usage(mount).free // 2**20
    except OSError:
        free = 0
    return Fault(
        "disk_full",
        f"disk full writing {where} ({free} MB free on {mount})",
        f"free space on {mount} (skilld needs {NEEDED_MB} MB); nothing was lost, skilld goes on by itself",
        str(where),
    )


def classify(exc: BaseException, where: Path) -> Fault | None:
    """The environmental fault `exc` is, met while working on `where` (a file or folder), or None for a bug."""
    from extractors.base import BackendError
    from storage.embeddings import EmbeddingError

    text = str(exc).splitlines()[0] if str(exc) else type(exc).__name__
    if isinstance(exc, sqlite3.OperationalError):
        lowered = text.lower()
        if "disk is full" in lowered or "disk i/o error" in lowered:
            return disk_full(where / DATABASE if where.is_dir() else where)
        if "locked" in lowered or "busy" in lowered:
            return Fault(
                "locked",
                f"the database {where} is locked by another process",
                "let the other process (a backup tool?) finish; skilld retries by itself",
            )
        return None
    if isinstance(exc, OSError) and exc.errno in DISK_FULL:
        return disk_full(Path(exc.filename) if exc.filename else where)
    if any(m in str(e) for e in _chain(exc) for m in ("No space left on device", "Disk quota exceeded")):
        return disk_full(where)  # the same fault from a library in Rust or C++ (Qdrant Edge, ONNX Runtime)
    if isinstance(exc, PermissionError):
        path = exc.filename or where
        return Fault("unreadable", f"cannot read {path}: permission denied", f"make {path} readable by its user")
    if isinstance(exc, (FileNotFoundError, NotADirectoryError)):
        path = exc.filename or where
        return Fault("missing", f"{path} is gone", f"restore or remount {path}, or remove it from the configuration")
    if isinstance(exc, EmbeddingError):
        return Fault("model", text, "check embedding.model_path (the model folder or its export is damaged)")
    if isinstance(exc, BackendError) and text.startswith("cannot load"):
        return Fault("model", text, "check llm.model_path (missing, truncated or not a GGUF model); items park")
    if isinstance(exc, BackendError):
        return Fault("endpoint", text, "check that llm.endpoint answers; queued items retry and then park")
    if _is_vector_store_down(exc):
        return Fault("vector_store", f"the Qdrant server does not answer: {text}", "start Qdrant or fix qdrant.url")
    return None


def _is_vector_store_down(exc: BaseException) -> bool:
    """A connection to a Qdrant server refused, reset or timed out (qdrant-client wraps httpx's errors)."""
    names = {type(e).__name__ for e in _chain(exc)}
    return bool(names & {"ConnectError", "ConnectTimeout", "ReadTimeout", "ResponseHandlingException"})


def _chain(exc: BaseException) -> list[BaseException]:
    seen: list[BaseException] = []
    current: BaseException | None = exc
    while current is not None and current not in seen:
        seen.append(current)
        current = current.__cause__ or current.__context__
    return seen
