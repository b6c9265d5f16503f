"""`skilld init`: find the telemetry directories of known tools on this machine and write them into the config."""

from __future__ import annotations

import tomllib
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import tomli_w

from storage.files import write_atomic

# Where each tool keeps its telemetry, relative to the home directory.
KNOWN_TOOLS: tuple[tuple[str, str], ...] = (
    ("continue", ".continue/dev_data"),
    ("claude-code", ".claude/projects"),
    ("codex", ".codex/sessions"),
)


@dataclass(frozen=True)
class Found:
    """A tool's telemetry directory that exists here, and how many JSONL files it holds now."""

    tool: str
    path: Path
    files: int


def discover(home: Path) -> list[Found]:
    """The known tools' telemetry directories that exist under a home directory."""
    found = []
    for tool, relative in KNOWN_TOOLS:
        path = home / relative
        if path.is_dir():
            found.append(Found(tool, path, sum(1 for _ in path.rglob("*.jsonl"))))
    return found


class ConfigExists(Exception):
    """The configuration file exists and --force was not given."""


def write_paths(config: Path, paths: list[Path], force: bool) -> list[str]:
    """Write telemetry paths into a configuration file; return the paths it now lists.

    An existing file is changed only with force, and then only its `telemetry.paths` (the paths it had
    are kept, the found ones added); every other setting stays as it was.
    """
    settings: dict[str, Any] = {}
    if config.exists():
        if not force:
            raise ConfigExists(f"{config} exists; run `skilld init --force` to add the found paths to it")
        with open(config, "rb") as handle:
            settings = tomllib.load(handle)
    telemetry = settings.setdefault("telemetry", {})
    listed = [str(p) for p in telemetry.get("paths", [])]
    listed += [str(p) for p in paths if str(p) not in listed]
    telemetry["paths"] = listed
    config.parent.mkdir(parents=True, exist_ok=True, mode=0o700)
    header = b"# Written by `skilld init`; every key is documented in skilld's README.\n"
    write_atomic(config, header + tomli_w.dumps(settings).encode())
    return listed
