"""Helpers shared by the tests: running the real CLI, writing telemetry, reading the store."""

from __future__ import annotations

import json
import os
import sqlite3
import subprocess
import sys
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
SKILLD = [sys.executable, "-m", "daemon.cli"]


def cli_env(home: Path, **extra: str) -> dict[str, str]:
    """An environment for running skilld on a test home, isolated from the user's config."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("SKILLD_")}
    # Any free port for the API's TCP listener, so that daemons of parallel tests never collide.
    env.update(SKILLD_HOME=str(home), XDG_CONFIG_HOME=str(home.parent / "xdg-config"), SKILLD_API__PORT="0")
    env.update(extra)
    return env


def skilld(
    home: Path, *args: str, env: dict[str, str] | None = None, check: bool = True, timeout: float = 300
) -> subprocess.CompletedProcess[str]:
    """Run the real `skilld` command line on a home."""
    result = subprocess.run(
        [*SKILLD, *args], env=env or cli_env(home), capture_output=True, text=True, timeout=timeout, cwd=ROOT
    )
    if check and result.returncode != 0:
        raise AssertionError(f"skilld {' '.join(args)} exited {result.returncode}: {result.stderr}")
    return result


def skilld_json(home: Path, *args: str, env: dict[str, str] | None = None) -> Any:
    """Run a `--json` command and parse its one JSON document."""
    return json.loads(skilld(home, *args, "--json", env=env).stdout)


def write_lines(path: Path, records: list[Any], mode: str = "a") -> None:
    """Append JSON records (or raw strings) as lines."""
    path.parent.mkdir(parents=True, exist_ok=True)
    with open(path, mode, encoding="utf-8") as handle:
        for record in records:
            handle.write((record if isinstance(record, str) else json.dumps(record)) + "\n")


def rows(home: Path, sql: str, params: tuple[Any, ...] = ()) -> list[tuple[Any, ...]]:
    """Rows of a query on a home's database (read-only)."""
    conn = sqlite3.connect(f"file:{home / 'skilld.db'}?mode=ro", uri=True)
    try:
        return conn.execute(sql, params).fetchall()
    finally:
        conn.close()


def wait_for(condition: Callable[[], bool], timeout: float = 60, what: str = "condition") -> None:
    """Poll until condition() is true."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if condition():
            return
        time.sleep(0.1)
    raise AssertionError(f"timed out waiting for {what}")


def ralph(task: str, event: str, **fields: Any) -> dict[str, Any]:
    """One ralph event."""
    return {"event": event, "task_id": task, "timestamp": "2026-11-01T10:00:00Z", **fields}


def numbered(n: int, start: int = 0, stream: str = "aidb") -> list[dict[str, Any]]:
    """n distinct aidb-style records."""
    return [
        {
            "event_type": "query",
            "query": f"question {i}",
            "response": f"answer {i}",
            "llm_used": "local",
            "success": True,
            "timestamp": "2026-11-01T10:00:00Z",
        }
        for i in range(start, start + n)
    ]


def continue_chat(session: str, prompt: str, completion: str, user: str | None = None) -> dict[str, Any]:
    """A Continue 0.2.0 `chatInteraction` record."""
    record = {
        "eventName": "chatInteraction",
        "schema": "0.2.0",
        "sessionId": session,
        "timestamp": "2026-11-01T10:00:00Z",
        "prompt": prompt,
        "completion": completion,
    }
    return {**record, "userId": user} if user is not None else record


class Daemon:
    """A real `skilld run` process on a test home, stopped with SIGTERM."""

    def __init__(self, home: Path, telemetry: Path, prefix: tuple[str, ...] = (), **env: str) -> None:
        self.home = home
        self.prefix = prefix  # a command the daemon runs under (setpriv, to drop a capability)
        self.env = cli_env(
            home,
            SKILLD_TELEMETRY__PATHS=json.dumps([str(telemetry)]),
            SKILLD_TELEMETRY__POLL_INTERVAL="0.1",
            **env,
        )
        self.process: subprocess.Popen[str] | None = None

    def __enter__(self) -> Daemon:
        self.log = open(self.home.parent / f"daemon-{id(self)}.log", "w")
        self.process = subprocess.Popen(
            [*self.prefix, *SKILLD, "run"], env=self.env, cwd=ROOT, stdout=self.log, stderr=self.log
        )
        wait_for(self.ready, 60, "the daemon's socket")
        return self

    def ready(self) -> bool:
        assert self.process is not None
        if self.process.poll() is not None:
            raise AssertionError(f"daemon exited {self.process.returncode}: {self.logs()}")
        return (self.home / "skilld.sock").exists()

    def logs(self) -> str:
        if not self.log.closed:
            self.log.flush()
        return (self.home.parent / f"daemon-{id(self)}.log").read_text()

    def status(self) -> Any:
        return skilld_json(self.home, "status", env=self.env)

    def wait_events(self, n: int, timeout: float = 60) -> Any:
        wait_for(lambda: self.status()["events"] >= n, timeout, f"{n} events")
        time.sleep(0.5)  # and nothing more arrives
        return self.status()

    def __exit__(self, *exc: object) -> None:
        assert self.process is not None
        if self.process.poll() is None:
            self.process.terminate()
            self.process.wait(timeout=30)
        self.log.close()


def run_writer(script: str, *args: str) -> subprocess.Popen[str]:
    """Start a second process that writes telemetry (a Python snippet; args in sys.argv[1:])."""
    return subprocess.Popen([sys.executable, "-c", script, *args], text=True)
