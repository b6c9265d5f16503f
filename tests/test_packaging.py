"""skilld's generic package names are its own, and the store-only path never loads the ML stack."""

from __future__ import annotations

import importlib
import importlib.metadata
import subprocess
import sys
from pathlib import Path

from tests.helpers import ROOT

OURS = ("daemon", "extractors", "storage")


def test_imported_packages_are_this_checkouts() -> None:
    for name in OURS:
        module = importlib.import_module(name)
        assert module.__file__ is not None
        assert Path(module.__file__).resolve().is_relative_to(ROOT), f"{name} comes from {module.__file__}"


def test_no_dependency_ships_a_top_level_module_named_like_ours() -> None:
    clashes = []
    for dist in importlib.metadata.distributions():
        if dist.metadata["Name"] == "skilld":
            continue
        tops = {
            str(f).split("/")[0].removesuffix(".py")
            for f in dist.files or []
            if "/" in str(f) or str(f).endswith(".py")
        }
        top_level = dist.read_text("top_level.txt") or ""
        tops |= set(top_level.split())
        clashes += [f"{dist.metadata['Name']} ships {name}" for name in OURS if name in tops]
    assert clashes == []


def test_store_only_commands_never_import_the_ml_stack(tmp_path: Path) -> None:
    telemetry = tmp_path / "t"
    telemetry.mkdir()
    (telemetry / "aidb-events.jsonl").write_text('{"event_type": "query", "query": "q", "success": true}\n')
    script = f"""
import sys
from daemon.cli import cli
for args in (["ingest", "--no-learn", "--json", "{telemetry}"], ["status", "--json"]):
    try:
        cli.main(["--home", "{tmp_path / "home"}", *args], standalone_mode=False)
    except SystemExit:
        pass
heavy = sorted(m for m in ("torch", "sentence_transformers", "transformers", "llama_cpp", "qdrant_client")
               if m in sys.modules)
print("HEAVY", heavy)
"""
    out = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, cwd=ROOT, check=True).stdout
    assert "HEAVY []" in out
