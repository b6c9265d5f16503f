"""The daemon owns the stores; commands reach it over its unix socket, or open the stores when none runs."""

from __future__ import annotations

import signal
import stat
import subprocess
from pathlib import Path

from tests.helpers import ROOT, SKILLD, Daemon, numbered, skilld, skilld_json, write_lines


def test_commands_go_through_the_running_daemon(home: Path, telemetry: Path, tmp_path: Path) -> None:
    elsewhere = tmp_path / "backfill"
    write_lines(elsewhere / "aidb-events.jsonl", numbered(30))
    write_lines(telemetry / "aidb-events.jsonl", numbered(10, start=100))
    with Daemon(home, telemetry, SKILLD_LOGGING__LEVEL="debug") as daemon:
        daemon.wait_events(10)
        socket = home / "skilld.sock"
        assert stat.S_IMODE(socket.stat().st_mode) == 0o600
        report = skilld_json(home, "ingest", "--no-learn", str(elsewhere), env=daemon.env)
        assert report["events"] == 30
        assert daemon.status()["events"] == 40
        assert skilld_json(home, "deadletters", "list", env=daemon.env) == []
        assert "command served command=ingest" in daemon.logs()
    assert daemon.process is not None and daemon.process.returncode == 0
    assert not (home / "skilld.sock").exists()


def test_a_stale_socket_of_a_killed_daemon_does_not_block_commands(home: Path, telemetry: Path) -> None:
    write_lines(telemetry / "aidb-events.jsonl", numbered(5))
    with Daemon(home, telemetry) as daemon:
        daemon.wait_events(5)
        assert daemon.process is not None
        daemon.process.send_signal(signal.SIGKILL)
        daemon.process.wait()
    assert (home / "skilld.sock").exists()
    write_lines(telemetry / "aidb-events.jsonl", numbered(5, start=5))
    assert skilld_json(home, "ingest", str(telemetry))["events"] == 5
    assert skilld_json(home, "status")["events"] == 10


def test_a_second_daemon_on_the_same_home_refuses_to_start(home: Path, telemetry: Path) -> None:
    with Daemon(home, telemetry) as daemon:
        second = subprocess.run([*SKILLD, "run"], env=daemon.env, cwd=ROOT, capture_output=True, text=True, timeout=60)
        assert second.returncode == 1
        assert second.stderr.strip().splitlines()[-1].startswith(f"skilld: a skilld daemon already runs on {home}")
        assert daemon.status()["events"] == 0


def test_json_output_is_one_document_on_stdout(home: Path, telemetry: Path) -> None:
    write_lines(telemetry / "aidb-events.jsonl", numbered(3))
    result = skilld(home, "ingest", "--json", str(telemetry))
    assert result.stdout.count("\n{") == 0 and result.stdout.strip().startswith("{")
    human = skilld(home, "status")
    assert human.stdout == "" and "events: 3" in human.stderr
