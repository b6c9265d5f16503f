"""Learned skills reach the assistant: the Claude Code hook, the MCP server over stdio and over HTTP, and
Agent Skills folders, all on real `skilld` processes; and a served skill learns from its session's outcome.

The skills are imported as another workstation's export would bring them (`skilld skills import`), so no
extraction model runs here; the transcripts and hook inputs are our own, in the shapes Claude Code writes.
"""

from __future__ import annotations

import asyncio
import json
import socket
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from skills_ref.validator import validate

from daemon import control, hook
from tests.helpers import ROOT, Daemon, cli_env, skilld, skilld_json, wait_for, write_lines

pytestmark = pytest.mark.slow

SKILLD_EXE = Path(sys.executable).parent / "skilld"  # the installed executable, as an editor runs it
SESSION = "3e1f0c9a-7b2d-4c5e-9f8a-1b2c3d4e5f60"
SKILLS = [
    {
        "id": "8b7f0a52-3c1e-5d9a-b8f7-2e4c6a1d9b01",
        "name": "Roll back a Kubernetes deployment to its previous version",
        "description": "Return a broken rollout to the revision that ran before it.",
        "prerequisites": ["kubectl configured for the cluster"],
        "steps": [
            "Run `kubectl rollout history deployment/shop-api` to see the revisions",
            "Run `kubectl rollout undo deployment/shop-api` to go back one revision",
            "Wait for it with `kubectl rollout status deployment/shop-api`",
        ],
        "tags": ["kubernetes"],
        "example": "kubectl rollout undo deployment/shop-api",
        "source_query": "how do I roll back a bad deployment in kubernetes?",
        "source_queries": ["how do I roll back a bad deployment in kubernetes?"],
        "source_interactions": ["continue:chat:k8s"],
        "evidence_count": 1,
    },
    {
        "id": "1c9e5b3a-7d2f-5e8a-9b6c-4f1a2e3d5c07",
        "name": "Make a Python script a systemd service that restarts",
        "description": "Keep a long-running script alive across crashes and reboots with a systemd unit.",
        "prerequisites": [],
        "steps": [
            "Write `/etc/systemd/system/worker.service` with `ExecStart=` and `Restart=on-failure`",
            "Run `sudo systemctl daemon-reload`",
            "Run `sudo systemctl enable --now worker.service`",
        ],
        "tags": ["linux"],
        "example": "sudo systemctl enable --now worker.service",
        "source_query": "how do I run my python script as a service that restarts when it crashes?",
        "source_queries": ["how do I run my python script as a service that restarts when it crashes?"],
        "source_interactions": ["continue:chat:systemd"],
        "evidence_count": 2,
    },
]
K8S, SYSTEMD = SKILLS[0]["id"], SKILLS[1]["id"]
PARAPHRASE = "the new version of my k8s app is broken, how do I get back to the one that was running before?"


def _import(home: Path, tmp_path: Path, env: dict[str, str] | None = None) -> None:
    export = tmp_path / "skills.jsonl"
    write_lines(export, SKILLS, mode="w")
    assert skilld_json(home, "skills", "import", str(export), env=env) == {"added": 2, "merged": 0, "unchanged": 0}


def _hook(home: Path, event: dict[str, Any] | str, *args: str) -> tuple[subprocess.CompletedProcess[str], float]:
    started = time.monotonic()
    result = subprocess.run(
        [str(SKILLD_EXE), "hook", "claude-code", *args],
        input=event if isinstance(event, str) else json.dumps(event),
        env=cli_env(home),
        capture_output=True,
        text=True,
        timeout=30,
        cwd=ROOT,
    )
    return result, time.monotonic() - started


def _prompt_event(prompt: str, session: str = SESSION) -> dict[str, Any]:
    return {
        "session_id": session,
        "transcript_path": f"/home/dev/.claude/projects/-home-dev-shop/{session}.jsonl",
        "cwd": "/home/dev/shop",
        "permission_mode": "default",
        "hook_event_name": "UserPromptSubmit",
        "prompt": prompt,
    }


@pytest.fixture
def daemon(home: Path, telemetry: Path, tmp_path: Path) -> Iterator[Daemon]:
    _import(home, tmp_path)
    with Daemon(home, telemetry) as running:
        yield running


def test_the_hook_adds_relevant_skills_only_through_a_running_daemon(home: Path, tmp_path: Path) -> None:
    assert SKILLD_EXE.exists(), "the skilld executable is installed next to the interpreter"
    # No daemon: nothing, at once, exit 0 (the prompt goes on untouched).
    result, _ = _hook(home, _prompt_event(PARAPHRASE))
    assert (result.returncode, result.stdout, result.stderr) == (0, "", "")
    # A daemon that accepts and never answers: nothing, exit 0, within the deadline.
    home.mkdir(parents=True, exist_ok=True)
    mute = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    mute.bind(str(home / "skilld.sock"))
    (home / "api.token").write_text("a-token\n")
    mute.listen(8)
    held: list[socket.socket] = []
    threading.Thread(target=lambda: held.append(mute.accept()[0]), daemon=True).start()
    try:
        result, seconds = _hook(home, _prompt_event(PARAPHRASE), "--deadline", "0.5")
    finally:
        mute.close()
        (home / "skilld.sock").unlink()
        (home / "api.token").unlink()
    assert (result.returncode, result.stdout) == (0, "") and held, result.stderr
    assert 0.5 <= seconds < 0.5 + 2.0, seconds  # it waited out the deadline, plus its own start and exit
    # Light: what the hook process imports, with the daemon's own client's names for its socket and token.
    traced = subprocess.run(
        [str(SKILLD_EXE), "hook", "claude-code"],
        input=json.dumps(_prompt_event(PARAPHRASE)),
        env={**cli_env(home), "PYTHONPROFILEIMPORTTIME": "1"},
        capture_output=True,
        text=True,
        timeout=30,
    )
    imported = {line.split("|")[-1].strip() for line in traced.stderr.splitlines() if line.startswith("import time")}
    assert "daemon.hook" in imported and traced.stdout == ""
    heavy = {"click", "pydantic", "numpy", "torch", "sqlite3", "http.client", "daemon.config", "daemon.control"}
    assert not heavy & imported, heavy & imported
    assert (hook.SOCKET_NAME, hook.TOKEN_NAME) == (control.SOCKET_NAME, control.TOKEN_NAME)
    # A deadline that is no number: nothing, exit 0, no traceback.
    result, _ = _hook(home, _prompt_event(PARAPHRASE), "--deadline", "nan")
    assert (result.returncode, result.stdout, result.stderr) == (0, "", "")


def test_the_hook_serves_skills_and_a_session_outcome_judges_them(daemon: Daemon, telemetry: Path) -> None:
    home = daemon.home
    wait_for(lambda: daemon.status()["serving"]["ready"], 60, "the daemon's library loaded")
    result, _ = _hook(home, _prompt_event(PARAPHRASE))
    assert result.returncode == 0 and result.stderr == ""
    output = json.loads(result.stdout)
    context = output["hookSpecificOutput"]
    assert context["hookEventName"] == "UserPromptSubmit"
    assert "kubectl rollout undo deployment/shop-api" in context["additionalContext"]
    assert "systemctl" not in context["additionalContext"]  # relevant skills only
    assert len(context["additionalContext"]) <= 2500
    unrelated, _ = _hook(home, _prompt_event("write a limerick about my cat", session="other"))
    assert (unrelated.returncode, unrelated.stdout) == (0, "")
    # With the daemon answering: input that is not JSON, and an event that is not a prompt, add nothing.
    for odd in ("{not json", json.dumps({**_prompt_event(PARAPHRASE), "hook_event_name": "Stop"})):
        result, _ = _hook(home, odd)
        assert (result.returncode, result.stdout, result.stderr) == (0, "", "")
    # Session start: no skill has helped yet, so there is nothing to list.
    start = {k: v for k, v in _prompt_event("").items() if k != "prompt"} | {"hook_event_name": "SessionStart"}
    assert _hook(home, {**start, "source": "startup"})[0].stdout == ""

    shown = skilld_json(home, "skills", "show", K8S, env=daemon.env)
    assert shown["usage_count"] == 1 and shown["history"][0]["client"] == "claude-code"
    # The session's transcript: the prompt the hook saw, the answer, then the person confirms it worked.
    transcript = telemetry / "projects" / "-home-dev-shop" / f"{SESSION}.jsonl"
    write_lines(transcript, _turn("p1", PARAPHRASE, "`kubectl rollout undo deployment/shop-api` took it back."))
    write_lines(transcript, _turn("p2", "perfect, thanks, it's back up", "Good to hear."))
    wait_for(lambda: skilld_json(home, "skills", "show", K8S, env=daemon.env)["helped"] == 1, 60, "helped evidence")
    judged = skilld_json(home, "skills", "show", K8S, env=daemon.env)
    assert (judged["helped"], judged["not_helped"], judged["usefulness"]) == (1, 0, pytest.approx(2 / 3, abs=1e-3))
    assert skilld_json(home, "skills", "show", SYSTEMD, env=daemon.env)["helped"] == 0
    # Another session: the hook serves the systemd skill, and the person corrects the answer.
    other = "9a8b7c6d-5e4f-4a3b-8c2d-1e0f9a8b7c6d"
    ask = "my worker script dies at night, how do I keep it running and restart it when it crashes?"
    served = json.loads(_hook(home, _prompt_event(ask, session=other))[0].stdout)["hookSpecificOutput"]
    assert "systemctl enable --now worker.service" in served["additionalContext"]
    transcript = telemetry / "projects" / "-home-dev-shop" / f"{other}.jsonl"
    write_lines(transcript, _turn("q1", ask, "Add `@reboot python worker.py` to your crontab.", other))
    write_lines(transcript, _turn("q2", "no, that doesn't restart it when it crashes", "Use a systemd unit.", other))
    wait_for(lambda: skilld_json(home, "skills", "show", SYSTEMD, env=daemon.env)["not_helped"] == 1, 60, "evidence")
    assert skilld_json(home, "skills", "show", K8S, env=daemon.env)["not_helped"] == 0  # not served there
    # Now that one helped, a session starts with it listed by name.
    index = json.loads(_hook(home, {**start, "source": "startup"})[0].stdout)["hookSpecificOutput"]
    assert index["hookEventName"] == "SessionStart" and SKILLS[0]["name"] in index["additionalContext"]


def _turn(uuid: str, prompt: str, answer: str, session: str = SESSION) -> list[dict[str, Any]]:
    base = {"sessionId": session, "cwd": "/home/dev/shop", "version": "2.0.14", "isSidechain": False}
    stamp = f"2026-11-20T10:{len(uuid) * 7 % 60:02d}:00.000Z"
    return [
        {
            **base,
            "type": "user",
            "uuid": f"{uuid}u",
            "timestamp": stamp,
            "message": {"role": "user", "content": prompt},
        },
        {
            **base,
            "type": "assistant",
            "uuid": f"{uuid}a",
            "timestamp": stamp,
            "message": {
                "id": f"m{uuid}",
                "role": "assistant",
                "model": "claude-sonnet-4-5",
                "content": [{"type": "text", "text": answer}],
            },
        },
    ]


async def _mcp_session(client: Any) -> dict[str, Any]:
    """List the tools, find the k8s skill by a paraphrase, rate it, read it as a resource."""
    tools = {t.name: t for t in (await client.list_tools()).tools}
    assert set(tools) == {"search_skills", "get_skill", "rate_skill"}
    assert tools["search_skills"].input_schema["required"] == ["query"]
    found = await client.call_tool("search_skills", {"query": PARAPHRASE, "limit": 2})
    assert not found.is_error, found.content
    best = found.structured_content["result"][0]
    assert best["id"] == K8S and "kubectl rollout undo deployment/shop-api" in " ".join(best["steps"])
    assert best["source_queries"] and best["score"] > 0
    rated = await client.call_tool("rate_skill", {"id": K8S, "helped": True, "note": "got the old pods back"})
    assert not rated.is_error, rated.content
    missing = await client.call_tool("get_skill", {"id": "no-such-skill"})
    assert missing.is_error and "no skill no-such-skill" in missing.content[0].text
    listed = {str(r.uri) for r in (await client.list_resources()).resources}
    assert listed == {f"skill://{K8S}", f"skill://{SYSTEMD}"}
    document = (await client.read_resource(f"skill://{K8S}")).contents[0].text
    assert document.startswith(f"# {SKILLS[0]['name']}") and "kubectl rollout status" in document
    return dict(rated.structured_content)


def test_mcp_over_stdio_and_http_finds_rates_and_shows(daemon: Daemon, tmp_path: Path) -> None:
    import httpx2
    from mcp import Client
    from mcp.client.stdio import StdioServerParameters
    from mcp.client.streamable_http import streamable_http_client

    home = daemon.home
    stdio = StdioServerParameters(command=str(SKILLD_EXE), args=["mcp"], env=cli_env(home))

    async def over_stdio() -> dict[str, Any]:
        async with Client(stdio) as client:
            return await _mcp_session(client)

    rated = asyncio.run(over_stdio())
    assert rated["helped"] == 1
    assert skilld_json(home, "skills", "show", K8S, env=daemon.env)["history"][0]["client"] == "mcp:mcp"

    url = daemon.status()["api"]["url"] + "/mcp"
    token = (home / "api.token").read_text().strip()

    async def over_http(headers: dict[str, str]) -> dict[str, Any]:
        async with (
            httpx2.AsyncClient(headers=headers) as http,
            Client(streamable_http_client(url, http_client=http)) as c,
        ):
            return await _mcp_session(c)

    assert asyncio.run(over_http({"Authorization": f"Bearer {token}"}))["helped"] == 2
    shown = skilld_json(home, "skills", "show", K8S, env=daemon.env)
    assert (shown["helped"], shown["not_helped"]) == (2, 0)
    rated = [row for row in shown["history"] if row["kind"] == "rated"]
    assert [row["note"] for row in rated] == ["got the old pods back"] * 2
    # Each session served it twice, by search and by the resource read; the 401 below serves nothing.
    assert shown["usage_count"] == 4
    refused = httpx2.post(url, json={"jsonrpc": "2.0", "id": 1, "method": "tools/list"})
    assert refused.status_code == 401


def test_mcp_over_stdio_works_on_the_stores_with_no_daemon(home: Path, tmp_path: Path) -> None:
    from mcp import Client
    from mcp.client.stdio import StdioServerParameters

    _import(home, tmp_path)

    async def search() -> Any:
        async with Client(StdioServerParameters(command=str(SKILLD_EXE), args=["mcp"], env=cli_env(home))) as c:
            return await c.call_tool("search_skills", {"query": "keep my worker running after it crashes"})

    found = asyncio.run(search())
    assert not found.is_error and found.structured_content["result"][0]["id"] == SYSTEMD


def test_agent_skills_export_and_the_daemons_published_folder(home: Path, telemetry: Path, tmp_path: Path) -> None:
    exported = tmp_path / "exported"
    _import(home, tmp_path)
    assert skilld_json(home, "skills", "export", "--format", "agent-skills", str(exported))["exported"] == 2
    folders = sorted(p for p in exported.iterdir() if p.is_dir())
    assert [p.name for p in folders] == [
        "make-a-python-script-a-systemd-service-that-restarts",
        "roll-back-a-kubernetes-deployment-to-its-previous-version",
    ]
    for folder in folders:
        assert validate(folder) == [], folder
    cli = subprocess.run(
        [str(Path(sys.executable).parent / "agentskills"), "validate", str(folders[1])], capture_output=True, text=True
    )
    assert cli.returncode == 0, cli.stdout + cli.stderr

    published = tmp_path / "claude-skills"
    own = published / "my-own-skill"
    own.mkdir(parents=True)
    (own / "SKILL.md").write_text("---\nname: my-own-skill\ndescription: Mine.\n---\nMine.\n")
    with Daemon(home, telemetry, SKILLD_SKILLS__PUBLISH_DIR=str(published)) as daemon:
        names = lambda: sorted(p.name for p in published.iterdir())  # noqa: E731
        wait_for(lambda: len(names()) == 3, 60, "the published skills")
        for n in range(5):  # the systemd skill does not help: retired, and its folder goes
            skilld_json(home, "skills", "rate", SYSTEMD, "--not-helped", "--note", f"wrong unit {n}", env=daemon.env)
        wait_for(lambda: len(names()) == 2, 60, "the retired skill's folder removed")
        assert names() == ["my-own-skill", "roll-back-a-kubernetes-deployment-to-its-previous-version"]
        assert (own / "SKILL.md").read_text().startswith("---\nname: my-own-skill")  # never touched
        retired = skilld_json(home, "skills", "list", "--retired", env=daemon.env)
        assert [s["id"] for s in retired] == [SYSTEMD] and retired[0]["retired"]["by"] == "usefulness"
        assert daemon.status()["publish"]["dir"] == str(published)
        skilld_json(home, "skills", "restore", SYSTEMD, env=daemon.env)
        wait_for(lambda: len(names()) == 3, 60, "the restored skill published again")
    assert validate(published / "make-a-python-script-a-systemd-service-that-restarts") == []


def test_skills_rate_needs_a_verdict(home: Path) -> None:
    result = skilld(home, "skills", "rate", SYSTEMD, check=False)
    assert result.returncode == 2 and "--helped or --not-helped" in result.stderr
