"""A light daemon: no torch in its process, and the extraction model freed while there is no work."""

from __future__ import annotations

import json
from pathlib import Path

import httpx
import pytest

from tests.helpers import Daemon, skilld_json, wait_for

pytestmark = pytest.mark.slow

CSV = ("How do I read a CSV file into a pandas DataFrame?", "Use `pd.read_csv('data.csv')`; pass `sep=';'` if needed.")
GIT = ("How do I undo my last git commit but keep the changes?", "Run `git reset --soft HEAD~1`; the changes stay.")


def ask(telemetry: Path, question: str, answer: str) -> None:
    """Append one well-rated completion, a question worth learning from."""
    record = {"event_type": "completion", "extension": "ai", "success": True, "user_feedback": 1}
    record.update(prompt=question, completion=answer, timestamp="2026-11-20T09:20:00Z")
    with open(telemetry / "vscode-events.jsonl", "a") as handle:
        handle.write(json.dumps(record) + "\n")


def mapped(pid: int) -> str:
    """The files the process has mapped: every shared library it loaded and every model file it holds."""
    return Path(f"/proc/{pid}/maps").read_text()


def ended(daemon: Daemon) -> int:
    status = daemon.status()
    return int(status["extracted"] + status["rejected"] + status["no_skill"] + status["parked_extractions"])


def test_the_daemon_never_loads_torch_while_it_scores_searches_extracts_and_serves(home: Path, telemetry: Path) -> None:
    ask(telemetry, *CSV)
    with Daemon(home, telemetry) as daemon:
        assert daemon.process is not None
        wait_for(lambda: daemon.status()["extracted"] >= 1, 300, "an extraction")
        hits = skilld_json(home, "search", "load a csv with pandas", env=daemon.env)
        assert hits and hits[0]["source_query"].startswith("How do I read a CSV")
        token = (home / "api.token").read_text().strip()
        url = daemon.status()["api"]["url"]
        served = httpx.get(
            f"{url}/v1/search", params={"q": "csv into pandas"}, headers={"Authorization": f"Bearer {token}"}
        )
        assert served.status_code == 200 and served.json()
        block = skilld_json(home, "context", "read a csv file with pandas", env=daemon.env)
        assert block["skills"] and "read_csv" in block["markdown"], block
        maps = mapped(daemon.process.pid)
        status = daemon.status()
    assert "libonnxruntime" in maps  # the embedder ran in this process, on ONNX Runtime
    assert "libllama" in maps  # and so did the extraction model
    assert "libtorch" not in maps and "/torch/" not in maps
    assert status["models"]["embedder"] == {"loaded": True, "runtime": "onnx"}


def test_idle_models_are_freed_and_loaded_again_for_the_next_item(home: Path, telemetry: Path) -> None:
    ask(telemetry, *CSV)
    idle = {"SKILLD_LLM__IDLE_UNLOAD_SECONDS": "3", "SKILLD_EMBEDDING__IDLE_UNLOAD_SECONDS": "4"}
    with Daemon(home, telemetry, **idle) as daemon:
        assert daemon.process is not None
        wait_for(lambda: ended(daemon) >= 1, 300, "the first extraction")
        wait_for(lambda: not daemon.status()["models"]["extraction"]["loaded"], 60, "the model unloaded")
        status = daemon.status()
        assert status["models"]["extraction"]["unloaded_when_idle"] == 1
        assert ".gguf" not in mapped(daemon.process.pid)  # the model file is no longer mapped
        wait_for(lambda: not daemon.status()["models"]["embedder"]["loaded"], 60, "the embedder unloaded")
        ask(telemetry, *GIT)
        wait_for(lambda: ended(daemon) >= 2, 300, "the second extraction")
        status = daemon.status()
        assert status["extracted"] == 2, status  # the reloaded model did its work
        assert status["parked_extractions"] == 0
        skills = skilld_json(home, "search", "revert my last commit in git", env=daemon.env)
        assert skills and skills[0]["source_query"].startswith("How do I undo my last git commit")
        assert daemon.status()["models"]["embedder"]["loaded"]  # scoring and search loaded it again
