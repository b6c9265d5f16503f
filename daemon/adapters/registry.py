"""Choosing the adapter for a record: by the file's name first, then by the record's shape.

Each adapter declares the files it claims (`claims`) and the records it recognizes (`recognizes`); this is
the one table of them, in the order they are tried.
"""

from __future__ import annotations

import fnmatch
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import PurePath
from typing import Any

from daemon.adapters.aidb import AidbAdapter
from daemon.adapters.base import Adapter, SessionAdapter
from daemon.adapters.claude_code import ClaudeCodeAdapter
from daemon.adapters.codex import CodexAdapter
from daemon.adapters.continue_dev import ContinueAdapter
from daemon.adapters.generic import GenericAdapter
from daemon.adapters.hybrid import HybridAdapter
from daemon.adapters.otel_genai import OtelGenAiAdapter, console_exporter_hint
from daemon.adapters.paths import base_name, file_hint
from daemon.adapters.ralph import RalphAdapter
from daemon.adapters.vscode import VscodeAdapter
from daemon.config import GenericStream
from daemon.interaction import Interaction, Reading

UNKNOWN = "unknown"


@dataclass(frozen=True)
class Stream:
    """One known telemetry format: its adapter, the files its name selects, and the records it recognizes."""

    adapter: Adapter
    names: Callable[[PurePath], bool]
    shape: Callable[[dict[str, Any]], bool] | None
    # Whether a record of this shape is surely of this stream, so that what its adapter cannot read is a
    # dead letter (an OTLP `resourceSpans` object), not an object of an unknown stream.
    certain: bool = False
    # What a file of this tool that is not JSON lines is, told from its first bytes (None: not one of ours).
    diagnose: Callable[[bytes], str | None] | None = None


class AdapterRegistry:
    """Knows every adapter; picks one per file (by name) or per record (by shape)."""

    def __init__(self, generic: list[GenericStream]) -> None:
        # The one table of formats, each adapter's own claims on file names and record shapes; in this order
        # (a name prefix wins over a folder layout: `ralph-events.jsonl` in dev_data/ is Ralph's).
        self.streams: list[Stream] = [
            Stream(RalphAdapter(), RalphAdapter.claims, RalphAdapter.recognizes),
            Stream(VscodeAdapter(), VscodeAdapter.claims, VscodeAdapter.recognizes),
            Stream(AidbAdapter(), AidbAdapter.claims, AidbAdapter.recognizes),
            Stream(HybridAdapter(), HybridAdapter.claims, HybridAdapter.recognizes),
            Stream(CodexAdapter(), CodexAdapter.claims, CodexAdapter.recognizes),
            Stream(ContinueAdapter(), ContinueAdapter.claims, ContinueAdapter.recognizes),
            Stream(ClaudeCodeAdapter(), ClaudeCodeAdapter.claims, ClaudeCodeAdapter.recognizes),
            Stream(
                OtelGenAiAdapter(),
                OtelGenAiAdapter.claims,
                OtelGenAiAdapter.recognizes,
                certain=True,
                diagnose=console_exporter_hint,
            ),
        ]
        self.generic = [(g.match, GenericAdapter(g)) for g in generic]
        self._named: dict[str, Adapter] = {s.adapter.name: s.adapter for s in self.streams}
        self._named.update((adapter.name, adapter) for _, adapter in self.generic)

    def for_file(self, path: PurePath) -> tuple[Adapter | None, str]:
        """The adapter a file's name selects (or None), and the hint its name gives (Continue's event name)."""
        name = base_name(path)
        for pattern, generic in self.generic:
            if fnmatch.fnmatch(name, pattern):
                return generic, file_hint(path)
        for stream in self.streams:
            if stream.names(path):
                return stream.adapter, file_hint(path)
        return None, file_hint(path)

    def by_name(self, name: str) -> Adapter | None:
        """The adapter that stored events of a source name."""
        return self._named.get(name)

    def by_shape(self, record: dict[str, Any]) -> Stream | None:
        """The stream a record looks like, for files whose name says nothing."""
        for stream in self.streams:
            if stream.shape is not None and stream.shape(record):
                return stream
        return None

    def diagnose(self, head: bytes) -> tuple[str, str] | None:
        """The stream a file that is not JSON lines belongs to, and what it is, from its first bytes."""
        for stream in self.streams:
            found = stream.diagnose(head) if stream.diagnose is not None else None
            if found is not None:
                return stream.adapter.name, found
        return None

    def finish(self, interaction: Interaction) -> Interaction:
        """An interaction finished by its source's adapter, where the adapter decides over whole turns."""
        adapter = self._named.get(interaction.source)
        return adapter.finish(interaction) if isinstance(adapter, SessionAdapter) else interaction


def unknown_reading(record: dict[str, Any]) -> Reading:
    """An object of an unrecognized stream: stored and counted by its type, nothing learned."""
    kind = next(
        (record[k] for k in ("eventName", "event", "event_type", "type") if isinstance(record.get(k), str)), None
    )
    return Reading(UNKNOWN, kind or "object")
