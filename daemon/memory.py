"""Giving memory back to the system once work is done, so an idle daemon stays small.

glibc keeps freed heap in its arenas (one per thread that allocated); a long batch of embeddings or a freed
model leaves hundreds of MB resident that no one uses. `malloc_trim(0)` returns it (measured: an encoder that
held +350 MB after a batch of long texts went back to +110 MB, its weights). Elsewhere than glibc, a no-op.
"""

from __future__ import annotations

import ctypes
import ctypes.util
import functools
import gc
from collections.abc import Callable


@functools.cache
def _malloc_trim() -> Callable[[int], int] | None:
    name = ctypes.util.find_library("c")
    try:
        libc = ctypes.CDLL(name) if name else None
    except OSError:
        return None
    trim = getattr(libc, "malloc_trim", None)
    return trim if callable(trim) else None


def release_free_memory() -> None:
    """Collect unreachable cycles (a closed model's objects among them), then hand free pages back."""
    gc.collect()
    trim = _malloc_trim()
    if trim is not None:
        trim(0)
