"""Choosing the adapter for a record: by the file's name first, then by the record's shape."""

from __future__ import annotations

import fnmatch
import re
from pathlib import PurePath
from typing import Any

from daemon.adapters.aidb import AidbAdapter
from daemon.adapters.base import Adapter
from daemon.adapters.continue_dev import ContinueAdapter
from daemon.adapters.generic import GenericAdapter
from daemon.adapters.hybrid import HybridAdapter
from daemon.adapters.ralph import RalphAdapter
from daemon.adapters.vscode import VscodeAdapter
from daemon.config import GenericStream
from daemon.interaction import Reading

UNKNOWN = "unknown"
_ROTATION = re.compile(r"(\.jsonl)(?:[.-]\d+)?(?:\.gz)?$")
_CONTINUE_DIR = re.compile(r"^\d+\.\d+\.\d+$")


def base_name(path: PurePath) -> str:
    """A telemetry file's name without rotation suffixes: `ralph-events.jsonl.2.gz` -> `ralph-events.jsonl`."""
    return _ROTATION.sub(r"\1", path.name)


class AdapterRegistry:
    """Knows every adapter; picks one per file (by name) or per record (by shape)."""

    def __init__(self, generic: list[GenericStream]) -> None:
        self.ralph, self.aidb, self.hybrid = RalphAdapter(), AidbAdapter(), HybridAdapter()
        self.vscode, self.continue_dev = VscodeAdapter(), ContinueAdapter()
        self.generic = [(g.match, GenericAdapter(g)) for g in generic]
        self._by_prefix: list[tuple[str, Adapter]] = [
            ("ralph-events", self.ralph),
            ("aidb-events", self.aidb),
            ("hybrid-events", self.hybrid),
            ("vscode-events", self.vscode),
        ]
        self._by_shape: list[tuple[Any, Adapter]] = [
            (ContinueAdapter.recognizes, self.continue_dev),
            (RalphAdapter.recognizes, self.ralph),
            (VscodeAdapter.recognizes, self.vscode),
            (AidbAdapter.recognizes, self.aidb),
            (HybridAdapter.recognizes, self.hybrid),
        ]

    def for_file(self, path: PurePath) -> tuple[Adapter | None, str | None]:
        """The adapter a file's name selects (or None), and the hint its name gives (Continue's event name)."""
        name = base_name(path)
        for pattern, generic in self.generic:
            if fnmatch.fnmatch(name, pattern):
                return generic, None
        for prefix, adapter in self._by_prefix:
            if name.startswith(prefix):
                return adapter, None
        parent = path.parent
        if _CONTINUE_DIR.match(parent.name) and parent.parent.name == "dev_data":
            return self.continue_dev, name.removesuffix(".jsonl")
        return None, None

    def by_name(self, name: str) -> Adapter | None:
        """The adapter that stored events of a source name."""
        named: list[Adapter] = [self.ralph, self.aidb, self.hybrid, self.vscode, self.continue_dev]
        named += [adapter for _, adapter in self.generic]
        return next((adapter for adapter in named if adapter.name == name), None)

    def by_shape(self, record: dict[str, Any]) -> Adapter | None:
        """The adapter whose stream a record looks like, for files whose name says nothing."""
        for recognizes, adapter in self._by_shape:
            if recognizes(record):
                return adapter
        return None


def unknown_reading(record: dict[str, Any]) -> Reading:
    """An object of an unrecognized stream: stored and counted by its type, nothing learned."""
    kind = next(
        (record[k] for k in ("eventName", "event", "event_type", "type") if isinstance(record.get(k), str)), None
    )
    return Reading(UNKNOWN, kind or "object")
