"""What a telemetry file's name says, for the adapters that claim files by name and for the registry."""

from __future__ import annotations

import re
from collections.abc import Callable
from pathlib import PurePath

_ROTATION = re.compile(r"(\.jsonl)(?:[.-]\d+)?(?:\.gz)?$")


def base_name(path: PurePath) -> str:
    """A telemetry file's name without rotation suffixes: `ralph-events.jsonl.2.gz` -> `ralph-events.jsonl`."""
    return _ROTATION.sub(r"\1", path.name)


def file_hint(path: PurePath) -> str:
    """What a file's name tells its adapter: the name without `.jsonl` and rotation suffixes."""
    return base_name(path).removesuffix(".jsonl")


def named(prefix: str) -> Callable[[PurePath], bool]:
    """A claim on the files whose name starts with a prefix (`ralph-events.jsonl`, rotated or not)."""
    return lambda path: base_name(path).startswith(prefix)


def nothing(path: PurePath) -> bool:
    """No claim by name (a format told only by its records' shape)."""
    return False
