"""The command registry: one definition per command, for the CLI, the daemon's API and a later MCP server."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

from daemon.app import Skilld
from daemon.commands import COMMANDS, run
from tests.helpers import ROOT, continue_chat, write_lines


def test_every_command_the_cli_sends_is_in_the_registry_and_every_entry_is_reachable() -> None:
    cli = (ROOT / "daemon" / "cli.py").read_text()
    sent = set(re.findall(r'dispatch\(\s*ctx,\s*f?"([\w.{}]+)"', cli))
    skills = {"skills." + a for a in ("show", "import", "delete", "recheck", "restore")}
    sent = (sent - {"skills.{action}"}) | skills
    # The MCP server's tools and resources call the registry too (the same commands, by name).
    served = set(re.findall(r'run_command\(\s*"([\w.]+)"', (ROOT / "daemon" / "mcp_server.py").read_text()))
    assert served == {"search", "skills.get", "skills.rate", "skills.list"}
    sent |= served
    assert sent <= set(COMMANDS), sent - set(COMMANDS)
    assert set(COMMANDS) - sent == {"ping"}  # the daemon's liveness check, used by the CLI's control path


def test_a_request_is_checked_against_its_model_and_named_in_the_error(app: Skilld) -> None:
    with pytest.raises(ValueError, match=r"search: query: String should have at least 1 character"):
        run(app, "search", {"query": ""})
    with pytest.raises(ValueError, match=r"feedback: value"):
        run(app, "feedback", {"event_id": "x", "value": 2})
    with pytest.raises(ValueError, match=r"status: .*Extra inputs are not permitted"):
        run(app, "status", {"verbose": True})
    with pytest.raises(LookupError, match="unknown command 'nope'"):
        run(app, "nope")


def test_the_registry_runs_a_command_as_the_application_does(app: Skilld, telemetry: Path) -> None:
    write_lines(telemetry / "dev_data" / "0.2.0" / "chatInteraction.jsonl", [continue_chat("s1", "hi", "hello")])
    report = run(app, "ingest", {"paths": [str(telemetry)], "learn": False})
    assert report["events"] == 1 and report["files"] == 1
    assert run(app, "status")["events"] == app.status()["events"] == 1
    assert [r["query"] for r in run(app, "interactions", {"limit": 5})] == ["hi"]
    reads = {"status", "interactions", "ping", "deadletters.list", "finetune.state", "experiments.list"}  # no lock
    assert {n for n, c in COMMANDS.items() if not c.exclusive} == reads


def test_the_readme_names_every_command_the_api_answers() -> None:
    readme = (ROOT / "README.md").read_text()
    route = next(line for line in readme.splitlines() if line.startswith("| `POST /v1/commands/{command}`"))
    assert set(re.findall(r"`([\w.]+)`", route)) >= set(COMMANDS)
