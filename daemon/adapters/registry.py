"""Choosing the adapter for a record: by the file's name first, then by the record's shape."""

from __future__ import annotations

import fnmatch
import re
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
from daemon.adapters.ralph import RalphAdapter
from daemon.adapters.vscode import VscodeAdapter
from daemon.config import GenericStream
from daemon.interaction import Interaction, Reading

UNKNOWN = "unknown"
_ROTATION = re.compile(r"(\.jsonl)(?:[.-]\d+)?(?:\.gz)?$")
_CONTINUE_DIR = re.compile(r"^\d+\.\d+\.\d+$")
_UUID_NAME = re.compile(r"^(?:agent-)?[0-9a-f]{8}(?:-?[0-9a-f]{4}){3}-?[0-9a-f]{12}\.jsonl$|^agent-[0-9a-f]+\.jsonl$")


def base_name(path: PurePath) -> str:
    """A telemetry file's name without rotation suffixes: `ralph-events.jsonl.2.gz` -> `ralph-events.jsonl`."""
    return _ROTATION.sub(r"\1", path.name)


def file_hint(path: PurePath) -> str:
    """What a file's name tells its adapter: the name without `.jsonl` and rotation suffixes."""
    return base_name(path).removesuffix(".jsonl")


def _is_continue(path: PurePath) -> bool:
    """`dev_data/<schema>/<event>.jsonl`, or a pre-0.1.0 file at the root of `dev_data/`."""
    parent = path.parent
    return parent.name == "dev_data" or (
        _CONTINUE_DIR.match(parent.name) is not None and parent.parent.name == "dev_data"
    )


def _is_claude_code(path: PurePath) -> bool:
    """`~/.claude/projects/<project>/<session>.jsonl` (and its subagents' `agent-*.jsonl`)."""
    name = base_name(path)
    return path.parent.parent.name == "projects" and _UUID_NAME.match(name) is not None


def _is_codex(path: PurePath) -> bool:
    """`~/.codex/sessions/YYYY/MM/DD/rollout-<time>-<session id>.jsonl`."""
    return base_name(path).startswith("rollout-")


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


def _prefix(prefix: str) -> Callable[[PurePath], bool]:
    return lambda path: base_name(path).startswith(prefix)


class AdapterRegistry:
    """Knows every adapter; picks one per file (by name) or per record (by shape)."""

    def __init__(self, generic: list[GenericStream]) -> None:
        # The one table of formats: names by prefix first, then by folder layout (a prefix wins in dev_data/).
        self.streams: list[Stream] = [
            Stream(RalphAdapter(), _prefix("ralph-events"), RalphAdapter.recognizes),
            Stream(VscodeAdapter(), _prefix("vscode-events"), VscodeAdapter.recognizes),
            Stream(AidbAdapter(), _prefix("aidb-events"), AidbAdapter.recognizes),
            Stream(HybridAdapter(), _prefix("hybrid-events"), HybridAdapter.recognizes),
            Stream(CodexAdapter(), _is_codex, CodexAdapter.recognizes),
            Stream(ContinueAdapter(), _is_continue, ContinueAdapter.recognizes),
            Stream(ClaudeCodeAdapter(), _is_claude_code, ClaudeCodeAdapter.recognizes),
            Stream(
                OtelGenAiAdapter(),
                lambda path: False,
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
