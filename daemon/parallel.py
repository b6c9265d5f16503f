"""Ingest shared among forked processes: for the CLI with no daemon, on a multi-core machine.

Files are grouped by size; the first group is read here, each other one in a forked child that opens its own
stores, commits its own batches and dies with its parent (a killed `skilld ingest` leaves no writer behind).
Only a process without threads may fork, so the daemon never does this.
"""

from __future__ import annotations

import logging
import multiprocessing
import os
import signal
from collections.abc import Callable
from multiprocessing.connection import Connection
from pathlib import Path

from daemon.ingest import IngestReport

log = logging.getLogger(__name__)

# Below this many bytes a second process costs more than it saves.
PARALLEL_MIN_BYTES = 8 * 1024 * 1024

Work = Callable[[list[Path]], IngestReport]


def share_by_size(files: list[Path], workers: int) -> list[list[Path]]:
    """Split files into at most `workers` groups of similar total size, keeping each group oldest first."""
    sizes = {path: path.stat().st_size for path in files if path.exists()}
    if workers <= 1 or len(sizes) < 2 or sum(sizes.values()) < PARALLEL_MIN_BYTES:
        return [files]
    groups: list[list[Path]] = [[] for _ in range(min(workers, len(sizes)))]
    totals = [0] * len(groups)
    for path in sorted(sizes, key=sizes.__getitem__, reverse=True):
        smallest = totals.index(min(totals))
        groups[smallest].append(path)
        totals[smallest] += sizes[path]
    order = {path: i for i, path in enumerate(files)}
    return [sorted(group, key=order.__getitem__) for group in groups]


def ingest_in_parallel(groups: list[list[Path]], here: Work, in_child: Work) -> IngestReport:
    """Read the first group with `here` and every other one in a forked child running `in_child`."""
    context = multiprocessing.get_context("fork")
    children = []
    for group in groups[1:]:
        receiver, sender = context.Pipe(duplex=False)
        child = context.Process(target=_child, args=(in_child, group, sender), daemon=True)
        child.start()
        sender.close()
        children.append((child, receiver))
    report = here(groups[0])
    for child, receiver in children:
        try:
            outcome = receiver.recv()
        except EOFError:
            outcome = f"ingest worker {child.pid} died"
        child.join()
        if isinstance(outcome, str):
            raise RuntimeError(outcome)
        report.add(outcome)
    return report


def _die_with_parent() -> None:
    try:
        import ctypes

        libc = ctypes.CDLL(None, use_errno=True)
        libc.prctl(1, signal.SIGKILL)  # PR_SET_PDEATHSIG
    except (OSError, AttributeError):
        pass
    if os.getppid() == 1:
        os._exit(1)


def _child(work: Work, files: list[Path], sender: Connection) -> None:
    _die_with_parent()
    try:
        sender.send(work(files))
    except Exception as exc:
        log.exception("ingest worker failed")
        sender.send(f"ingest worker failed: {exc}")
    finally:
        sender.close()
