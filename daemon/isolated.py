"""Heavy statistics in a short-lived child process, so the daemon never keeps their libraries resident.

Importing scipy.stats and scikit-learn costs a process about 120 MB that it never gives back (measured:
`import sklearn.cluster` 130 MB RSS against 10 MB for a bare interpreter). Drift checks run hourly and the
failure and gap analyses on request; in the daemon each of them is a pure function of data the daemon has
already read, handed to a fresh interpreter (spawn, never fork: the daemon has threads) that exits after.
"""

from __future__ import annotations

import multiprocessing
from collections.abc import Callable
from concurrent.futures import ProcessPoolExecutor
from typing import Any, TypeVar

T = TypeVar("T")


def in_child(function: Callable[..., T], *args: Any, **kwargs: Any) -> T:
    """`function(*args, **kwargs)` in a fresh interpreter; its result or its exception comes back."""
    with ProcessPoolExecutor(max_workers=1, mp_context=multiprocessing.get_context("spawn")) as pool:
        return pool.submit(function, *args, **kwargs).result()
